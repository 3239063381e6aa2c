//! An in-memory disk that keeps written bytes apart from synced bytes, for crash tests and
//! the simulator. `crash` applies the fault model written in `disk.rs`: unsynced bytes are
//! lost or torn, unsynced directory changes are undone. It can also run out of space and
//! fail syncs on demand.

use super::disk::{Capacity, Disk, DiskFile};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct MemoryDiskOptions {
    /// Appends past this many bytes in total fail with ENOSPC (after writing what fits).
    pub capacity_bytes: Option<u64>,
    /// The next this-many syncs fail with an I/O error.
    pub failing_syncs: u32,
    /// Syncs succeed without making anything durable (what `--unsafe-no-fsync` does to a
    /// real disk): a crash then loses everything written since the file was created.
    pub ignore_syncs: bool,
    /// Simulated time every sync takes, charged through `io::charge_latency`; the synced
    /// bytes become durable only once that time has passed (`io::after_charged_latency`),
    /// so a crash during a slow fsync loses them.
    pub sync_latency_ms: u64,
}

#[derive(Debug, Default)]
struct FileData {
    data: Vec<u8>,
    synced_len: usize,
}

#[derive(Debug, Default)]
struct State {
    /// The namespace as programs see it now.
    names: BTreeMap<PathBuf, u64>,
    /// The namespace as it would be after a crash (changed by `sync_dir`).
    durable_names: BTreeMap<PathBuf, u64>,
    files: BTreeMap<u64, FileData>,
    next_file: u64,
    options: MemoryDiskOptions,
}

impl State {
    fn used_bytes(&self) -> u64 {
        self.names
            .values()
            .map(|id| self.files[id].data.len() as u64)
            .sum()
    }

    fn file(&mut self, path: &Path) -> io::Result<&mut FileData> {
        let id = *self.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(self
            .files
            .get_mut(&id)
            .expect("every name points at a file"))
    }

    fn create(&mut self, path: &Path) -> u64 {
        let id = self.next_file;
        self.next_file += 1;
        self.files.insert(id, FileData::default());
        self.names.insert(path.to_path_buf(), id);
        id
    }

    /// Appends what fits under the capacity; ENOSPC if not everything did.
    fn append(&mut self, id: u64, data: &[u8]) -> io::Result<()> {
        let room = match self.options.capacity_bytes {
            Some(capacity) => capacity.saturating_sub(self.used_bytes()) as usize,
            None => usize::MAX,
        };
        let fits = data.len().min(room);
        self.files
            .get_mut(&id)
            .expect("open file exists")
            .data
            .extend_from_slice(&data[..fits]);
        if fits < data.len() {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device (simulated)",
            ));
        }
        Ok(())
    }

    /// Starts an fsync of file `id`: returns the length it will make durable (None when
    /// syncs are ignored). The caller makes it durable through `MemoryDisk::settle`.
    fn sync(&mut self, id: u64) -> io::Result<Option<usize>> {
        super::charge_latency(std::time::Duration::from_millis(
            self.options.sync_latency_ms,
        ));
        if self.options.failing_syncs > 0 {
            self.options.failing_syncs -= 1;
            return Err(io::Error::other("fsync failed (simulated)"));
        }
        if self.options.ignore_syncs {
            return Ok(None);
        }
        Ok(Some(
            self.files.get(&id).expect("open file exists").data.len(),
        ))
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

/// Cheap to clone; clones share the same disk.
#[derive(Debug, Clone, Default)]
pub struct MemoryDisk {
    state: Arc<Mutex<State>>,
}

impl MemoryDisk {
    pub fn new(options: MemoryDiskOptions) -> Self {
        let disk = MemoryDisk::default();
        disk.state.lock().unwrap().options = options;
        disk
    }

    pub fn set_options(&self, options: MemoryDiskOptions) {
        self.state.lock().unwrap().options = options;
    }

    pub fn options(&self) -> MemoryDiskOptions {
        self.state.lock().unwrap().options.clone()
    }

    /// Bytes held by all files now (written, synced or not).
    pub fn used_bytes_total(&self) -> u64 {
        self.state.lock().unwrap().used_bytes()
    }

    /// Simulates power loss. For each file that survives (its name was made durable), keeps
    /// the synced bytes plus a `seed`-chosen prefix of the unsynced ones, whose last bytes
    /// may be garbage (a torn write).
    pub fn crash(&self, seed: u64) {
        let mut state = self.state.lock().unwrap();
        let mut random = SplitMix(seed);
        state.names = state.durable_names.clone();
        let live: Vec<u64> = state.names.values().copied().collect();
        state.files.retain(|id, _| live.contains(id));
        for file in state.files.values_mut() {
            let unsynced = file.data.len() - file.synced_len;
            let kept = if unsynced == 0 {
                0
            } else {
                (random.next() % (unsynced as u64 + 1)) as usize
            };
            file.data.truncate(file.synced_len + kept);
            if kept > 0 && random.next() % 2 == 0 {
                let torn = kept.min(1 + (random.next() % 8) as usize);
                let len = file.data.len();
                for byte in &mut file.data[len - torn..] {
                    *byte = random.next() as u8;
                }
            }
            file.synced_len = file.data.len();
        }
    }

    /// Replaces the disk's contents with nothing, as a new machine's blank disk (options
    /// such as capacity stay).
    pub fn wipe(&self) {
        let mut state = self.state.lock().unwrap();
        state.names.clear();
        state.durable_names.clear();
        state.files.clear();
    }

    /// Makes `synced_len` bytes of file `id` durable once the fsync's latency has passed.
    fn settle(&self, id: u64, synced_len: Option<usize>) {
        let Some(synced_len) = synced_len else { return };
        let state = self.state.clone();
        super::after_charged_latency(Box::new(move || {
            let mut state = state.lock().unwrap();
            // The file may have been truncated meanwhile, or lost in a crash.
            if let Some(file) = state.files.get_mut(&id) {
                file.synced_len = file.synced_len.max(synced_len.min(file.data.len()));
            }
        }));
    }

    /// Flips one byte of a file (for corruption tests).
    pub fn corrupt(&self, path: &Path, offset: usize) {
        let mut state = self.state.lock().unwrap();
        let file = state.file(path).expect("corrupt an existing file");
        file.data[offset] ^= 0xff;
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Disk for MemoryDisk {
    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock().unwrap();
        Ok(state
            .names
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| {
                path.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        self.state.lock().unwrap().names.contains_key(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        Ok(self.state.lock().unwrap().file(path)?.data.clone())
    }

    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>> {
        let mut state = self.state.lock().unwrap();
        let data = &state.file(path)?.data;
        let start = (offset as usize).min(data.len());
        let end = start.saturating_add(length).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let mut state = self.state.lock().unwrap();
        let id = match state.names.get(path) {
            Some(id) => *id,
            None => state.create(path),
        };
        Ok(Box::new(MemoryFile {
            disk: self.clone(),
            id,
            path: path.to_path_buf(),
        }))
    }

    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let (id, synced_len) = {
            let mut state = self.state.lock().unwrap();
            let id = state.create(path);
            state.append(id, data)?;
            (id, state.sync(id)?)
        };
        self.settle(id, synced_len);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        let id = state.names.remove(from).ok_or_else(|| not_found(from))?;
        state.names.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        state.names.remove(path).ok_or_else(|| not_found(path))?;
        Ok(())
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        let file = state.file(path)?;
        file.data.resize(len as usize, 0);
        file.synced_len = file.synced_len.min(file.data.len());
        Ok(())
    }

    fn allocate(&self, path: &Path, len: u64) -> io::Result<()> {
        let zeros = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
        self.write_synced(path, &zeros)
    }

    fn capacity_bytes(&self, _dir: &Path) -> io::Result<Capacity> {
        let state = self.state.lock().unwrap();
        Ok(match state.options.capacity_bytes {
            Some(total_bytes) => Capacity {
                total_bytes,
                available_bytes: total_bytes.saturating_sub(state.used_bytes()),
            },
            None => Capacity {
                total_bytes: u64::MAX,
                available_bytes: u64::MAX,
            },
        })
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(self.state.lock().unwrap().file(path)?.data.len() as u64)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let entries: Vec<(PathBuf, u64)> = {
            let state = self.state.lock().unwrap();
            if state.options.ignore_syncs {
                return Ok(());
            }
            state
                .names
                .iter()
                .filter(|(path, _)| path.parent() == Some(dir))
                .map(|(path, id)| (path.clone(), *id))
                .collect()
        };
        // The directory as it is now becomes durable in order with the fsyncs before it: a
        // rename made after a slow fsync must not survive a crash that the fsync did not.
        let (state, dir) = (self.state.clone(), dir.to_path_buf());
        super::after_charged_latency(Box::new(move || {
            let mut state = state.lock().unwrap();
            state
                .durable_names
                .retain(|path, _| path.parent() != Some(dir.as_path()));
            state.durable_names.extend(entries);
        }));
        Ok(())
    }
}

struct MemoryFile {
    disk: MemoryDisk,
    id: u64,
    path: PathBuf,
}

impl DiskFile for MemoryFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.disk.state.lock().unwrap().append(self.id, data)
    }

    fn sync(&mut self) -> io::Result<()> {
        let synced_len = self.disk.state.lock().unwrap().sync(self.id)?;
        self.disk.settle(self.id, synced_len);
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        self.disk
            .state
            .lock()
            .unwrap()
            .files
            .get(&self.id)
            .map_or(0, |file| file.data.len() as u64)
    }

    fn path(&self) -> PathBuf {
        self.path.clone()
    }
}

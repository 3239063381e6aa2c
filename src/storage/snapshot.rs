//! Snapshot files.
//!
//! On-disk format (codec::FORMAT_VERSION 1): `snap/<last index>-<last term>.snap`, both 16
//! hex digits, holding `magic "CAIRNSNP" | format version u32 LE | payload length u64 LE |
//! crc32 u32 LE | payload`. Written to a `.tmp` file, fsynced, renamed, directory fsynced:
//! a crash leaves either the old snapshot or the new one, never half of one. The newest two
//! are kept.

use super::codec::FORMAT_VERSION;
use super::StorageError;
use crate::io::Disk;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"CAIRNSNP";
const HEADER_BYTES: usize = 8 + 4 + 8 + 4;
const SNAPSHOTS_KEPT: usize = 2;

pub struct SnapshotStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
}

impl SnapshotStore {
    pub fn open(disk: Arc<dyn Disk>, dir: &Path) -> Result<SnapshotStore, StorageError> {
        disk.create_dir_all(dir)
            .map_err(StorageError::io("create directory", dir))?;
        for name in disk.list(dir).map_err(StorageError::io("list", dir))? {
            if name.ends_with(".tmp") {
                // A snapshot that was being written when the member stopped.
                let path = dir.join(&name);
                disk.remove(&path)
                    .map_err(StorageError::io("remove", &path))?;
            }
        }
        Ok(SnapshotStore {
            disk,
            dir: dir.to_path_buf(),
        })
    }

    /// Writes a snapshot atomically and removes all but the newest `SNAPSHOTS_KEPT`.
    pub fn save(
        &self,
        last_index: u64,
        last_term: u64,
        payload: &[u8],
    ) -> Result<PathBuf, StorageError> {
        let name = format!("{last_index:016x}-{last_term:016x}.snap");
        let path = self.dir.join(&name);
        let temporary = self.dir.join(format!("{name}.tmp"));
        let mut file = Vec::with_capacity(HEADER_BYTES + payload.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        file.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        file.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        file.extend_from_slice(payload);
        self.disk
            .write_synced(&temporary, &file)
            .map_err(StorageError::io("write", &temporary))?;
        self.disk
            .rename(&temporary, &path)
            .map_err(StorageError::io("rename", &temporary))?;
        self.disk
            .sync_dir(&self.dir)
            .map_err(StorageError::io("sync directory", &self.dir))?;
        let names = self.snapshot_names()?;
        for old in names.iter().rev().skip(SNAPSHOTS_KEPT) {
            let old_path = self.dir.join(old);
            self.disk
                .remove(&old_path)
                .map_err(StorageError::io("remove", &old_path))?;
        }
        Ok(path)
    }

    fn snapshot_names(&self) -> Result<Vec<String>, StorageError> {
        let mut names = self
            .disk
            .list(&self.dir)
            .map_err(StorageError::io("list", &self.dir))?;
        names.retain(|name| name.ends_with(".snap"));
        // Fixed-width hex names sort by index.
        names.sort();
        Ok(names)
    }

    /// The newest snapshot's payload. A damaged newest snapshot is an error naming the file
    /// and offset: falling back to an older one could lose log entries already purged.
    pub fn load_latest(&self) -> Result<Option<(PathBuf, Vec<u8>)>, StorageError> {
        let Some(name) = self.snapshot_names()?.pop() else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        let data = self
            .disk
            .read(&path)
            .map_err(StorageError::io("read", &path))?;
        let corrupt = |offset: usize, reason: &str| StorageError::Corrupt {
            what: "snapshot",
            path: path.clone(),
            offset: offset as u64,
            reason: reason.to_string(),
        };
        if data.len() < HEADER_BYTES || &data[..8] != MAGIC {
            return Err(corrupt(0, "missing snapshot header"));
        }
        let version = u32::from_le_bytes(data[8..12].try_into().unwrap());
        if version != FORMAT_VERSION {
            return Err(corrupt(8, &format!("unsupported format version {version}")));
        }
        let length = u64::from_le_bytes(data[12..20].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(data[20..24].try_into().unwrap());
        let payload = &data[HEADER_BYTES..];
        if payload.len() != length {
            return Err(corrupt(
                12,
                &format!("payload is {} bytes, header says {length}", payload.len()),
            ));
        }
        if crc32fast::hash(payload) != crc {
            return Err(corrupt(HEADER_BYTES, "CRC mismatch"));
        }
        Ok(Some((path, payload.to_vec())))
    }

    pub fn used_bytes(&self) -> u64 {
        self.disk.used_bytes(&self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemoryDisk;

    #[test]
    fn keeps_newest_and_detects_damage() {
        let disk = MemoryDisk::default();
        let dir = Path::new("/data/snap");
        let store = SnapshotStore::open(Arc::new(disk.clone()), dir).unwrap();
        assert!(store.load_latest().unwrap().is_none());
        for index in 1..=4u64 {
            store.save(index, 1, &index.to_le_bytes()).unwrap();
        }
        let (path, payload) = store.load_latest().unwrap().unwrap();
        assert_eq!(payload, 4u64.to_le_bytes());
        assert_eq!(disk.list(dir).unwrap().len(), SNAPSHOTS_KEPT);
        disk.crash(7);
        assert_eq!(
            store.load_latest().unwrap().unwrap().1,
            4u64.to_le_bytes(),
            "a synced snapshot survives a crash"
        );
        disk.corrupt(&path, HEADER_BYTES + 2);
        let error = store.load_latest().unwrap_err().to_string();
        assert!(
            error.contains("0000000000000004-0000000000000001.snap") && error.contains("offset 24"),
            "{error}"
        );
    }
}

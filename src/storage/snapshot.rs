//! Snapshot files, encoded, checked and read in bounded pieces: a snapshot is never held
//! whole in memory as bytes (only as the state it decodes into, which is the state machine).
//!
//! On-disk format (version 4; versions 1 to 3 are still read, see `FORMAT_VERSIONS_READ`):
//! `snap/<last index>-<last term>.snap`, both 16 hex digits, holding
//! `magic "CAIRNSNP" | format version u32 LE | payload | payload length u64 LE |
//! crc32 of payload u32 LE | magic "CAIRNEND"`. Length and CRC trail the payload because the
//! payload is written as a stream. A snapshot is written to a `.tmp` file, fsynced, renamed,
//! directory fsynced: a crash leaves either the old snapshot or the new one, never half of
//! one. The newest two are kept. A follower receives a leader's snapshot file byte for byte
//! into a `.tmp` file and adopts it the same way once its CRC checks out.

use super::codec;
use super::StorageError;
use crate::io::{Disk, DiskFile};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The format version this code writes. Bumped on any change to a snapshot's layout,
/// including the layout of the payload the raft layer puts in it.
pub const FORMAT_VERSION: u32 = 4;
/// Versions this code reads; the payload's decoder is told which one a file has.
/// Versions 1 to 3 differ only in their payload (version 3's state machine had no alarms,
/// version 2's no auth store either; version 1's also held two local flags).
pub const FORMAT_VERSIONS_READ: [u32; 4] = [1, 2, 3, 4];
const MAGIC: &[u8; 8] = b"CAIRNSNP";
const END_MAGIC: &[u8; 8] = b"CAIRNEND";
const HEADER_BYTES: u64 = 8 + 4;
const TRAILER_BYTES: u64 = 8 + 4 + 8;
const SNAPSHOTS_KEPT: usize = 2;
/// Bytes buffered between disk appends, and the most read from the disk at once.
pub const PIECE_BYTES: usize = 256 * 1024;

pub struct SnapshotStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    /// Names temporary files apart: a snapshot may be built while another is received.
    next_temporary: AtomicU64,
    /// Snapshot files being read (sent to a follower), with their reader counts: pruning
    /// leaves them alone, or a transfer slower than two snapshot intervals would fail.
    pinned: Arc<Mutex<BTreeMap<PathBuf, usize>>>,
}

/// Keeps a snapshot file from being pruned while it is held.
#[derive(Debug)]
pub struct SnapshotPin {
    pinned: Arc<Mutex<BTreeMap<PathBuf, usize>>>,
    path: PathBuf,
}

impl SnapshotPin {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SnapshotPin {
    fn drop(&mut self) {
        let mut pinned = self.pinned.lock().unwrap();
        if let Some(readers) = pinned.get_mut(&self.path) {
            *readers -= 1;
            if *readers == 0 {
                pinned.remove(&self.path);
            }
        }
    }
}

impl SnapshotStore {
    pub fn open(disk: Arc<dyn Disk>, dir: &Path) -> Result<SnapshotStore, StorageError> {
        disk.create_dir_all(dir)
            .map_err(StorageError::io("create directory", dir))?;
        for name in disk.list(dir).map_err(StorageError::io("list", dir))? {
            if name.ends_with(".tmp") {
                // A snapshot that was being written or received when the member stopped.
                let path = dir.join(&name);
                disk.remove(&path)
                    .map_err(StorageError::io("remove", &path))?;
            }
        }
        Ok(SnapshotStore {
            disk,
            dir: dir.to_path_buf(),
            next_temporary: AtomicU64::new(0),
            pinned: Arc::default(),
        })
    }

    pub fn disk(&self) -> &Arc<dyn Disk> {
        &self.disk
    }

    /// A fresh temporary file name for a snapshot being built or received.
    pub fn temporary_path(&self, purpose: &str) -> PathBuf {
        let number = self.next_temporary.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{purpose}-{number}.tmp"))
    }

    /// Encodes `value` as the snapshot at (`last_index`, `last_term`), atomically, and
    /// removes all but the newest `SNAPSHOTS_KEPT`.
    pub fn save<T: Serialize>(
        &self,
        last_index: u64,
        last_term: u64,
        value: &T,
    ) -> Result<SnapshotPin, StorageError> {
        let temporary = self.temporary_path("build");
        let saved = self
            .write_file(&temporary, value)
            .and_then(|()| self.adopt(&temporary, last_index, last_term));
        if saved.is_err() {
            let _ = self.disk.remove(&temporary);
        }
        saved
    }

    fn write_file<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), StorageError> {
        let mut file = self
            .disk
            .open_append(path)
            .map_err(StorageError::io("create", path))?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        file.append(&header)
            .map_err(StorageError::io("write", path))?;
        let mut writer = PayloadWriter {
            file,
            buffer: Vec::with_capacity(PIECE_BYTES),
            crc: crc32fast::Hasher::new(),
            payload_bytes: 0,
        };
        codec::encode_into(&mut writer, value).map_err(StorageError::io("write", path))?;
        writer.finish().map_err(StorageError::io("write", path))
    }

    /// Checks the received file at `temporary` and makes it the snapshot at (`last_index`,
    /// `last_term`), returning what it decodes to.
    pub fn adopt_received<T: DeserializeOwned>(
        &self,
        temporary: &Path,
        last_index: u64,
        last_term: u64,
    ) -> Result<T, StorageError> {
        self.adopt_received_with(temporary, last_index, last_term, decode_current)
    }

    /// `adopt_received`, decoding the payload with `decode` (given the file's version).
    pub fn adopt_received_with<T>(
        &self,
        temporary: &Path,
        last_index: u64,
        last_term: u64,
        decode: impl FnOnce(u32, &mut dyn Read, u64) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let adopted = self
            .disk
            .open_append(temporary)
            .and_then(|mut file| file.sync())
            .map_err(StorageError::io("sync", temporary))
            .and_then(|()| self.load_with(temporary, decode))
            .and_then(|value| {
                self.adopt(temporary, last_index, last_term)?;
                Ok(value)
            });
        if adopted.is_err() {
            let _ = self.disk.remove(temporary);
        }
        adopted
    }

    /// Renames a complete, synced temporary file into place and drops old snapshots; the
    /// new one comes back pinned, so a caller that reads it is never pruned under.
    fn adopt(
        &self,
        temporary: &Path,
        last_index: u64,
        last_term: u64,
    ) -> Result<SnapshotPin, StorageError> {
        let path = self
            .dir
            .join(format!("{last_index:016x}-{last_term:016x}.snap"));
        self.disk
            .rename(temporary, &path)
            .map_err(StorageError::io("rename", temporary))?;
        self.disk
            .sync_dir(&self.dir)
            .map_err(StorageError::io("sync directory", &self.dir))?;
        let mut pinned = self.pinned.lock().unwrap();
        let pin = self.pin_locked(&mut pinned, path);
        let names = self.snapshot_names()?;
        for old in names.iter().rev().skip(SNAPSHOTS_KEPT) {
            let old_path = self.dir.join(old);
            if pinned.contains_key(&old_path) {
                continue;
            }
            self.disk
                .remove(&old_path)
                .map_err(StorageError::io("remove", &old_path))?;
        }
        Ok(pin)
    }

    fn pin_locked(&self, pinned: &mut BTreeMap<PathBuf, usize>, path: PathBuf) -> SnapshotPin {
        *pinned.entry(path.clone()).or_default() += 1;
        SnapshotPin {
            pinned: self.pinned.clone(),
            path,
        }
    }

    /// The newest snapshot file, pinned for reading: finding and pinning it happen under
    /// the lock pruning takes, so it cannot vanish in between.
    pub fn latest_pinned(&self) -> Result<Option<SnapshotPin>, StorageError> {
        let mut pinned = self.pinned.lock().unwrap();
        Ok(self
            .latest()?
            .map(|path| self.pin_locked(&mut pinned, path)))
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

    /// The newest snapshot file.
    pub fn latest(&self) -> Result<Option<PathBuf>, StorageError> {
        Ok(self.snapshot_names()?.pop().map(|name| self.dir.join(name)))
    }

    /// Every snapshot file with the last log index it covers, newest first.
    pub fn newest_first(&self) -> Result<Vec<(PathBuf, u64)>, StorageError> {
        let mut found = Vec::new();
        for name in self.snapshot_names()?.into_iter().rev() {
            let index = name
                .split('-')
                .next()
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            match index {
                Some(index) => found.push((self.dir.join(name), index)),
                None => {
                    tracing::warn!(file = %self.dir.join(&name).display(), "ignoring a snapshot file whose name is not <index>-<term>.snap")
                }
            }
        }
        Ok(found)
    }

    /// Moves a damaged snapshot out of the way (renamed to `<name>.damaged`, kept for
    /// inspection), so it is never loaded or sent again.
    pub fn set_aside(&self, path: &Path) -> Result<PathBuf, StorageError> {
        let mut damaged = path.as_os_str().to_owned();
        damaged.push(".damaged");
        let damaged = PathBuf::from(damaged);
        self.disk
            .rename(path, &damaged)
            .map_err(StorageError::io("rename", path))?;
        self.disk
            .sync_dir(&self.dir)
            .map_err(StorageError::io("sync", &self.dir))?;
        Ok(damaged)
    }

    /// The first value encoded in the payload of `path` (metadata written in front of the
    /// state), without reading or checking the rest.
    pub fn load_prefix<T: DeserializeOwned>(&self, path: &Path) -> Result<T, StorageError> {
        let (length, _version) = self.check_header(path)?;
        let reader = self.payload_reader(path, length - HEADER_BYTES);
        codec::decode_from("snapshot", reader, length)
    }

    /// The payload of `path`, decoded as it streams past and checked against its CRC; any
    /// damage is an error naming the file and offset.
    pub fn load<T: DeserializeOwned>(&self, path: &Path) -> Result<T, StorageError> {
        self.load_with(path, decode_current)
    }

    /// `load`, decoding the payload with `decode`, which is given the file's format version
    /// (one of `FORMAT_VERSIONS_READ`), a reader of the payload and its length.
    pub fn load_with<T>(
        &self,
        path: &Path,
        decode: impl FnOnce(u32, &mut dyn Read, u64) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let corrupt = |offset: u64, reason: String| corrupt(path, offset, reason);
        let (length, version) = self.check_header(path)?;
        if length < HEADER_BYTES + TRAILER_BYTES {
            return Err(corrupt(length, "missing snapshot trailer".into()));
        }
        let trailer_offset = length - TRAILER_BYTES;
        let trailer = self
            .disk
            .read_at(path, trailer_offset, TRAILER_BYTES as usize)
            .map_err(StorageError::io("read", path))?;
        if &trailer[12..] != END_MAGIC {
            return Err(corrupt(
                trailer_offset + 12,
                "missing snapshot trailer (a torn or truncated file)".into(),
            ));
        }
        let payload_bytes = u64::from_le_bytes(trailer[..8].try_into().unwrap());
        let expected_crc = u32::from_le_bytes(trailer[8..12].try_into().unwrap());
        if payload_bytes != trailer_offset - HEADER_BYTES {
            return Err(corrupt(
                trailer_offset,
                format!(
                    "payload is {} bytes, trailer says {payload_bytes}",
                    trailer_offset - HEADER_BYTES
                ),
            ));
        }
        let mut reader = Hashing {
            inner: self.payload_reader(path, payload_bytes),
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        };
        let decoded = decode(version, &mut reader, payload_bytes);
        let decoded_bytes = reader.bytes;
        // Hash what the decoder left so damage is reported as such, not as a decode error.
        io::copy(&mut reader, &mut io::sink()).map_err(StorageError::io("read", path))?;
        if reader.crc.finalize() != expected_crc {
            return Err(corrupt(HEADER_BYTES, "CRC mismatch".into()));
        }
        let value =
            decoded.map_err(|error| corrupt(HEADER_BYTES + decoded_bytes, error.to_string()))?;
        if decoded_bytes != payload_bytes {
            return Err(corrupt(
                HEADER_BYTES + decoded_bytes,
                format!(
                    "{} bytes follow the snapshot",
                    payload_bytes - decoded_bytes
                ),
            ));
        }
        Ok(value)
    }

    /// Checks magic and version; returns the file's length and format version.
    fn check_header(&self, path: &Path) -> Result<(u64, u32), StorageError> {
        let corrupt = |offset: u64, reason: String| corrupt(path, offset, reason);
        let length = self
            .disk
            .len(path)
            .map_err(StorageError::io("read", path))?;
        let header = self
            .disk
            .read_at(path, 0, HEADER_BYTES as usize)
            .map_err(StorageError::io("read", path))?;
        if header.len() < HEADER_BYTES as usize || &header[..8] != MAGIC {
            return Err(corrupt(0, "missing snapshot header".into()));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().unwrap());
        if !FORMAT_VERSIONS_READ.contains(&version) {
            return Err(corrupt(8, format!("unsupported format version {version}")));
        }
        Ok((length, version))
    }

    fn payload_reader(&self, path: &Path, payload_bytes: u64) -> impl Read + '_ {
        BufReader::with_capacity(
            PIECE_BYTES,
            FileReader {
                disk: self.disk.as_ref(),
                path: path.to_path_buf(),
                position: HEADER_BYTES,
                end: HEADER_BYTES + payload_bytes,
            },
        )
    }

    pub fn used_bytes(&self) -> u64 {
        self.disk.used_bytes(&self.dir)
    }
}

fn corrupt(path: &Path, offset: u64, reason: String) -> StorageError {
    StorageError::Corrupt {
        what: "snapshot",
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

/// Buffers the encoder's many small writes into `PIECE_BYTES` appends, hashing the payload.
struct PayloadWriter {
    file: Box<dyn DiskFile>,
    buffer: Vec<u8>,
    crc: crc32fast::Hasher,
    payload_bytes: u64,
}

impl PayloadWriter {
    fn drain(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.file.append(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.drain()?;
        let mut trailer = self.payload_bytes.to_le_bytes().to_vec();
        trailer.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
        trailer.extend_from_slice(END_MAGIC);
        self.file.append(&trailer)?;
        self.file.sync()
    }
}

impl Write for PayloadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.crc.update(data);
        self.payload_bytes += data.len() as u64;
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= PIECE_BYTES {
            self.drain()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()
    }
}

/// Reads `position..end` of a file through `Disk::read_at`.
struct FileReader<'a> {
    disk: &'a dyn Disk,
    path: PathBuf,
    position: u64,
    end: u64,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let wanted = buffer.len().min((self.end - self.position) as usize);
        if wanted == 0 {
            return Ok(0);
        }
        let data = self.disk.read_at(&self.path, self.position, wanted)?;
        if data.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "snapshot file shrank while being read",
            ));
        }
        buffer[..data.len()].copy_from_slice(&data);
        self.position += data.len() as u64;
        Ok(data.len())
    }
}

/// Counts and hashes the bytes read through it.
struct Hashing<R> {
    inner: R,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.crc.update(&buffer[..count]);
        self.bytes += count as u64;
        Ok(count)
    }
}

/// Decodes a payload written in the current format version as `T`.
fn decode_current<T: DeserializeOwned>(
    version: u32,
    reader: &mut dyn Read,
    payload_bytes: u64,
) -> Result<T, StorageError> {
    if version != FORMAT_VERSION {
        return Err(StorageError::Decode {
            what: "snapshot",
            reason: format!("format version {version} has no reader for this payload"),
        });
    }
    codec::decode_from("snapshot", reader, payload_bytes)
}

#[cfg(test)]
mod tests;

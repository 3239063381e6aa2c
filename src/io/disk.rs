//! Cairn's narrow disk interface. Storage code uses nothing else, so the simulator can hand
//! in a disk that loses unsynced bytes on a crash, fills up, or fails I/O.
//!
//! Fault model the storage code must survive: bytes written but not synced may be lost or
//! torn (a prefix kept, then garbage) on a crash; directory changes (create, rename, remove)
//! are durable only after `sync_dir`; any call may fail (e.g. ENOSPC), after which the file
//! holds an unknown prefix of what was written.

use std::io;
use std::path::{Path, PathBuf};

pub trait Disk: Send + Sync + 'static {
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn exists(&self, path: &Path) -> bool;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Up to `length` bytes of `path` from `offset` (fewer only at the end of the file), so
    /// large files (snapshots) are read in bounded pieces.
    fn read_at(&self, path: &Path, offset: u64, length: usize) -> io::Result<Vec<u8>>;
    /// Opens `path` for appending, creating it if missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Creates or replaces `path` with `data` and syncs it (not the directory).
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()>;
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Makes creates, renames and removes in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Total bytes of all files, for `dbSize`.
    fn used_bytes(&self, dir: &Path) -> u64 {
        self.list(dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|name| self.len(&dir.join(name)).ok())
            .sum()
    }
}

/// A file open for appending.
pub trait DiskFile: Send + 'static {
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
    fn size_bytes(&self) -> u64;
    fn path(&self) -> PathBuf;
}

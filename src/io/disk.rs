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
    /// Creates or replaces `path` with `len` bytes that really take room on the disk (not a
    /// sparse file), synced (not the directory). On failure the file may exist, partly.
    fn allocate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// The size of the file system holding `dir`, and the bytes free on it for this
    /// process (`u64::MAX` for both when it has no fixed size).
    fn capacity_bytes(&self, dir: &Path) -> io::Result<Capacity>;
    /// Total bytes of all files, for `dbSize`.
    fn used_bytes(&self, dir: &Path) -> u64 {
        self.list(dir)
            .unwrap_or_default()
            .iter()
            .filter_map(|name| self.len(&dir.join(name)).ok())
            .sum()
    }
}

/// A file system's size and free room, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// A file open for appending.
pub trait DiskFile: Send + 'static {
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
    fn size_bytes(&self) -> u64;
    fn path(&self) -> PathBuf;
}

/// The contract every `Disk` keeps, run on the OS disk (real files, real fsync) and on the
/// simulator's memory disk alike, so the two halves of the seam cannot drift apart.
#[cfg(all(test, not(madsim)))]
mod contract {
    use super::*;
    use crate::io::{MemoryDisk, MemoryDiskOptions, OsDisk};

    fn exercise(disk: &dyn Disk, root: &Path) {
        let dir = root.join("member");
        disk.create_dir_all(&dir).unwrap();
        let log = dir.join("b.log");
        let mut file = disk.open_append(&log).unwrap();
        file.append(b"hello ").unwrap();
        file.append(b"world").unwrap();
        file.sync().unwrap();
        assert_eq!(file.size_bytes(), 11);
        assert_eq!(file.path(), log);
        drop(file);
        let mut reopened = disk.open_append(&log).unwrap();
        reopened.append(b"!").unwrap();
        reopened.sync().unwrap();
        assert_eq!(disk.read(&log).unwrap(), b"hello world!");
        assert_eq!(disk.read_at(&log, 6, 5).unwrap(), b"world");
        assert_eq!(
            disk.read_at(&log, 10, 100).unwrap(),
            b"d!",
            "short only at the end"
        );
        assert!(disk.read_at(&log, 100, 4).unwrap().is_empty());
        disk.set_len(&log, 5).unwrap();
        assert_eq!(disk.len(&log).unwrap(), 5);
        disk.write_synced(&dir.join("a.tmp"), b"state").unwrap();
        disk.rename(&dir.join("a.tmp"), &dir.join("a.snap"))
            .unwrap();
        disk.sync_dir(&dir).unwrap();
        assert_eq!(
            disk.list(&dir).unwrap(),
            vec!["a.snap", "b.log"],
            "names, sorted"
        );
        assert!(disk.exists(&dir.join("a.snap")) && !disk.exists(&dir.join("a.tmp")));
        assert_eq!(disk.used_bytes(&dir), 5 + 5);
        disk.remove(&dir.join("a.snap")).unwrap();
        disk.sync_dir(&dir).unwrap();
        assert_eq!(disk.list(&dir).unwrap(), vec!["b.log"]);
        let capacity = disk.capacity_bytes(&dir).unwrap();
        assert!(capacity.available_bytes <= capacity.total_bytes);
        let reserve = dir.join("reserve");
        disk.allocate(&reserve, 100_000).unwrap();
        assert_eq!(disk.len(&reserve).unwrap(), 100_000);
        disk.remove(&reserve).unwrap();
        let missing = dir.join("missing");
        assert_eq!(
            disk.read(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            disk.len(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            disk.rename(&missing, &dir.join("x")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn the_os_disk_keeps_the_contract_on_real_files() {
        let root = tempfile::tempdir().unwrap();
        exercise(&OsDisk::default(), root.path());
        // What the OS disk wrote is on the real file system, not in a cache of its own.
        assert_eq!(
            std::fs::read(root.path().join("member/b.log")).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn the_memory_disk_keeps_the_same_contract() {
        exercise(
            &MemoryDisk::new(MemoryDiskOptions::default()),
            Path::new("/data"),
        );
    }

    #[test]
    fn synced_bytes_and_directory_entries_survive_a_memory_disk_crash() {
        let disk = MemoryDisk::new(MemoryDiskOptions::default());
        let dir = Path::new("/data");
        let mut file = disk.open_append(&dir.join("wal")).unwrap();
        file.append(b"durable").unwrap();
        file.sync().unwrap();
        file.append(b" lost").unwrap();
        disk.sync_dir(dir).unwrap();
        disk.write_synced(&dir.join("unnamed"), b"x").unwrap();
        disk.crash(7);
        let kept = disk.read(&dir.join("wal")).unwrap();
        assert!(kept.starts_with(b"durable") && kept.len() <= b"durable lost".len());
        assert!(
            !disk.exists(&dir.join("unnamed")),
            "created after the last sync_dir"
        );
    }
}

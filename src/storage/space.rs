//! Whether this member's disk is full, and the reserve that keeps raft going when it is.
//!
//! At start a member sets aside a reserve file (`--disk-reserve-bytes`, at most a twentieth
//! of its file system). When a write of the WAL finds the disk full, the reserve is deleted
//! and the write tried again at once: raft keeps appending (votes, commit points, deletes,
//! compactions, lease revokes), so the member keeps its role and serves reads, while it
//! refuses writes that add data with NOSPACE. Once a fresh reserve fits again, the disk has
//! room and writes resume by themselves. If even the reserve is used up, writers wait and
//! retry (`wait`): nothing is acknowledged before it is durable, and nothing is lost.

use crate::io::coverage::{self, MemberState};
use crate::io::Disk;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// First pause between retries of a write the disk refused for space; it doubles up to
/// `RETRY_INTERVAL_MAX`.
pub const RETRY_INTERVAL_MIN: Duration = Duration::from_millis(50);
pub const RETRY_INTERVAL_MAX: Duration = Duration::from_secs(1);
/// The reserve takes at most this share of the file system (as 1/N).
const RESERVE_SHARE_OF_DISK_MAX: u64 = 20;

#[derive(Clone, Default)]
pub struct DiskSpace {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Writers now waiting for space.
    waiting_writers: AtomicUsize,
    /// Whether the reserve is released for a full disk: read on every proposal, so an
    /// atomic; changed only while `reserve` is locked, with the file operations.
    released: AtomicBool,
    reserve: Mutex<Option<Reserve>>,
}

struct Reserve {
    disk: Arc<dyn Disk>,
    path: PathBuf,
    bytes: u64,
}

impl Reserve {
    fn create(&mut self) -> std::io::Result<()> {
        let created = self.disk.allocate(&self.path, self.bytes).and_then(|()| {
            let dir = self.path.parent().unwrap_or(Path::new("."));
            self.disk.sync_dir(dir)
        });
        if created.is_err() {
            let _ = self.disk.remove(&self.path);
        }
        created
    }
}

impl DiskSpace {
    /// Space with a reserve of `bytes` (capped at a twentieth of the file system) at `path`,
    /// created now; a disk with no room for it starts out full. `bytes` 0: no reserve.
    pub fn with_reserve(disk: Arc<dyn Disk>, path: PathBuf, bytes: u64) -> DiskSpace {
        let space = DiskSpace::default();
        if bytes == 0 {
            return space;
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let disk_bytes = disk.capacity_bytes(dir).map_or(u64::MAX, |c| c.total_bytes);
        let bytes = bytes.min(disk_bytes / RESERVE_SHARE_OF_DISK_MAX);
        let mut reserve = Reserve { disk, path, bytes };
        let mut slot = space.inner.reserve.lock().unwrap();
        if let Err(error) = reserve.create() {
            space.inner.released.store(true, Ordering::Release);
            coverage::note(MemberState::NoSpace, true);
            tracing::error!(
                %error,
                path = %reserve.path.display(),
                bytes,
                "no room for the disk space reserve: writes that add data are refused with \
                 NOSPACE until it fits"
            );
        }
        *slot = Some(reserve);
        drop(slot);
        space
    }

    /// True while a writer waits for room or the reserve is released.
    pub fn is_full(&self) -> bool {
        self.inner.waiting_writers.load(Ordering::Acquire) > 0 || self.reserve_released()
    }

    pub fn reserve_released(&self) -> bool {
        self.inner.released.load(Ordering::Acquire)
    }

    /// Deletes the reserve, if held, so a write the disk refused can be tried again at
    /// once; true if it freed room. Blocking (file system calls).
    pub fn release_reserve(&self) -> bool {
        let mut reserve = self.inner.reserve.lock().unwrap();
        let Some(reserve) = reserve.as_mut().filter(|_| !self.reserve_released()) else {
            return false;
        };
        self.inner.released.store(true, Ordering::Release);
        coverage::note(MemberState::NoSpace, true);
        let dir = reserve.path.parent().unwrap_or(Path::new("."));
        let removed = reserve
            .disk
            .remove(&reserve.path)
            .and_then(|()| reserve.disk.sync_dir(dir));
        match removed {
            Ok(()) => {
                tracing::error!(
                    bytes = reserve.bytes,
                    "the disk is full: released the disk space reserve so raft keeps going; \
                     writes that add data are refused with NOSPACE until the disk has room"
                );
                true
            }
            Err(error) => {
                tracing::error!(%error, "the disk is full and releasing the reserve failed");
                false
            }
        }
    }

    /// Creates the reserve again if it was released and the disk has room for it twice
    /// over (so the log has a reserve's worth left after it, and the member does not swing
    /// between full and not); true if the disk has room again. Blocking (file system
    /// calls).
    pub fn restore_reserve(&self) -> bool {
        let mut reserve = self.inner.reserve.lock().unwrap();
        let Some(reserve) = reserve.as_mut().filter(|_| self.reserve_released()) else {
            return false;
        };
        let dir = reserve.path.parent().unwrap_or(Path::new("."));
        let available = reserve
            .disk
            .capacity_bytes(dir)
            .map_or(0, |capacity| capacity.available_bytes);
        if available < reserve.bytes.saturating_mul(2) {
            return false;
        }
        if reserve.create().is_err() {
            return false;
        }
        self.inner.released.store(false, Ordering::Release);
        coverage::note(MemberState::NoSpace, false);
        tracing::warn!(
            bytes = reserve.bytes,
            "the disk has room again: the reserve is back and writes resume"
        );
        true
    }

    /// Marks one writer as waiting for space until the returned guard is dropped.
    pub fn wait(&self) -> SpaceWait {
        self.inner.waiting_writers.fetch_add(1, Ordering::AcqRel);
        SpaceWait {
            space: self.clone(),
        }
    }
}

/// One writer waiting for space; dropping it (the write fitted, or was given up) ends the
/// wait.
pub struct SpaceWait {
    space: DiskSpace,
}

impl Drop for SpaceWait {
    fn drop(&mut self) {
        self.space
            .inner
            .waiting_writers
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// The pause before the next retry after `previous` (`None`: the first retry).
pub fn next_retry_interval(previous: Option<Duration>) -> Duration {
    previous.map_or(RETRY_INTERVAL_MIN, |previous| {
        (previous * 2).min(RETRY_INTERVAL_MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{MemoryDisk, MemoryDiskOptions};

    #[test]
    fn the_reserve_is_released_for_a_full_disk_and_restored_once_it_fits() {
        let disk = MemoryDisk::new(MemoryDiskOptions {
            capacity_bytes: Some(100_000),
            ..MemoryDiskOptions::default()
        });
        disk.create_dir_all(Path::new("/d")).unwrap();
        let path = PathBuf::from("/d/reserve");
        let space = DiskSpace::with_reserve(Arc::new(disk.clone()), path.clone(), 1 << 30);
        assert_eq!(
            disk.len(&path).unwrap(),
            5_000,
            "capped at a twentieth of the disk"
        );
        assert!(!space.is_full());
        disk.write_synced(Path::new("/d/ballast"), &[1; 95_000])
            .unwrap();
        assert!(space.release_reserve());
        assert!(space.is_full() && !disk.exists(&path));
        assert!(!space.release_reserve(), "released once");
        // The log takes some of the room the reserve left.
        disk.write_synced(Path::new("/d/log"), &[2; 1_000]).unwrap();
        assert!(!space.restore_reserve(), "no room yet");
        disk.remove(Path::new("/d/log")).unwrap();
        assert!(
            !space.restore_reserve(),
            "room for the reserve, but none left beside it"
        );
        assert!(
            space.is_full() && !disk.exists(&path),
            "a failed restore leaves nothing"
        );
        disk.remove(Path::new("/d/ballast")).unwrap();
        assert!(space.restore_reserve());
        assert!(!space.is_full());
        let waiting = space.wait();
        assert!(space.is_full());
        drop(waiting);
        assert!(!space.is_full());
    }

    #[test]
    fn a_disk_without_room_for_the_reserve_starts_full() {
        let disk = MemoryDisk::new(MemoryDiskOptions {
            capacity_bytes: Some(100_000),
            ..MemoryDiskOptions::default()
        });
        disk.create_dir_all(Path::new("/d")).unwrap();
        disk.write_synced(Path::new("/d/ballast"), &[1; 99_000])
            .unwrap();
        let space = DiskSpace::with_reserve(Arc::new(disk.clone()), "/d/reserve".into(), 4096);
        assert!(space.is_full());
        disk.remove(Path::new("/d/ballast")).unwrap();
        assert!(space.restore_reserve());
        assert!(!space.is_full());
    }
}

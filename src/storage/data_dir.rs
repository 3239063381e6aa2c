//! The layout of a member's data directory, written once: everything a member persists
//! lives under `<data-dir>/member/`, as in etcd.
//!
//! ```text
//! <data-dir>/member/wal/       WAL segments (storage::wal)
//! <data-dir>/member/snap/      snapshot files (storage::snapshot)
//! <data-dir>/member/identity   cluster and member IDs, name, token (server::identity)
//! ```

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// The directory the operator named (`--data-dir`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything this member persists.
    pub fn member(&self) -> PathBuf {
        self.root.join("member")
    }

    pub fn wal(&self) -> PathBuf {
        self.member().join("wal")
    }

    pub fn snapshots(&self) -> PathBuf {
        self.member().join("snap")
    }

    /// Room set aside for when the disk fills (see `storage::DiskSpace`).
    pub fn space_reserve(&self) -> PathBuf {
        self.member().join("space-reserve")
    }

    pub fn identity(&self) -> PathBuf {
        self.member().join("identity")
    }
}

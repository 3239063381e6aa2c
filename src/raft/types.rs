//! Cairn's openraft type configuration and the storage error openraft expects.

use super::members::MemberNode;
use super::snapshot_data::SnapshotData;
use crate::apply::{Applied, Command};
use crate::io::runtime::CairnRuntime;

openraft::declare_raft_types!(
    /// Cairn's raft types: commands and outcomes from `apply`, u64 member IDs.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = MemberNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotData,
        AsyncRuntime = CairnRuntime,
);

pub type StorageResult<T> = Result<T, openraft::StorageError<u64>>;

/// Wraps a storage failure for openraft, which stops the raft node on it.
pub fn storage_error(
    subject: openraft::ErrorSubject<u64>,
    verb: openraft::ErrorVerb,
    error: impl std::fmt::Display,
) -> openraft::StorageError<u64> {
    let source =
        openraft::StorageIOError::new(subject, verb, openraft::AnyError::error(error.to_string()));
    openraft::StorageError::IO { source }
}

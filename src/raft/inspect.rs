//! Reading persisted raft data without running raft: what tools (and the fuzz targets)
//! need to check a data directory's files.

use super::persisted;
use crate::storage::snapshot::SnapshotStore;
use crate::storage::StorageError;
use std::path::Path;

/// What a snapshot file holds, in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub last_log_index: Option<u64>,
    pub revision: i64,
    pub keys: usize,
    pub leases: usize,
}

/// Loads and checks the snapshot at `path` (any readable format version).
pub fn snapshot(snapshots: &SnapshotStore, path: &Path) -> Result<SnapshotSummary, StorageError> {
    let file = snapshots.load_with(path, persisted::decode_snapshot)?;
    Ok(SnapshotSummary {
        last_log_index: file.last_applied.map(|id| id.index),
        revision: file.machine.store().current_revision(),
        keys: file.machine.store().key_count(),
        leases: file.machine.leases().iter().count(),
    })
}

/// Decodes a WAL `Entry` record's payload; returns its log index.
pub fn log_entry(payload: &[u8]) -> Result<u64, StorageError> {
    Ok(persisted::decode_entry(payload)?.log_id.index)
}

/// The index of the first entry the log holds once the WAL's `records` are replayed (purge
/// and truncate points applied), as a member starting on them sees it; `None`: no entries.
pub fn first_log_index(
    records: Vec<crate::storage::wal::Record>,
) -> Result<Option<u64>, StorageError> {
    Ok(super::log_store::replay(records)?
        .entries
        .keys()
        .next()
        .copied())
}

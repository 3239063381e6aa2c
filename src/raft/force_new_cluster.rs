//! `--force-new-cluster`, etcd's disaster recovery when quorum is lost for good: this
//! member's data becomes a one-member cluster. Offline, before raft starts: the newest
//! snapshot, plus every committed entry the WAL holds after it, is applied and saved as a
//! snapshot whose membership is this member alone; the WAL's entries are dropped (a
//! truncate and a purge record; the vote stays, so terms only grow). Entries never
//! committed are discarded, as etcd discards them. Running it again changes nothing more.

use super::log_store::replay;
use super::members::MemberNode;
use super::persisted::{DiskLogId, SnapshotFile};
use super::state_machine::{load_newest_usable, AppliedState};
use crate::apply::StateMachine;
use crate::base::MemberId;
use crate::io::Disk;
use crate::storage::snapshot::SnapshotStore;
use crate::storage::wal::{RecordKind, Wal};
use crate::storage::{codec, DataDir, StorageError};
use openraft::{EntryPayload, Membership, StoredMembership};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Limits from local flags the replayed entries are applied with.
pub struct ApplyLimits {
    pub lease_ttl_seconds_min: i64,
    pub backend_bytes_quota: u64,
}

/// Rewrites `data_dir` as a one-member cluster of `member_id`. Returns the members dropped.
pub fn force_new_cluster(
    disk: Arc<dyn Disk>,
    data_dir: &DataDir,
    member_id: MemberId,
    wal_segment_bytes_max: u64,
    limits: ApplyLimits,
) -> Result<Vec<MemberId>, StorageError> {
    let (mut wal, records) = Wal::open(disk.clone(), &data_dir.wal(), wal_segment_bytes_max)?;
    let log = replay(records)?;
    let snapshots = SnapshotStore::open(disk, &data_dir.snapshots())?;
    let first_index = log.entries.keys().next().copied();
    let mut state = match load_newest_usable(&snapshots, first_index)? {
        Some(file) => AppliedState::from_file(file),
        None => AppliedState {
            machine: StateMachine::new(0, 0),
            last_applied: None,
            membership: StoredMembership::default(),
        },
    };
    state
        .machine
        .set_limits(limits.lease_ttl_seconds_min, limits.backend_bytes_quota);
    let applied_index = state.last_applied.map_or(0, |id| id.index);
    let committed_index = log.committed.map_or(0, |id| id.index);
    for (index, entry) in log.entries.range(applied_index + 1..=committed_index) {
        match &entry.payload {
            EntryPayload::Normal(command) => {
                state.machine.apply(*index, command);
            }
            EntryPayload::Membership(membership) => {
                state.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
            }
            EntryPayload::Blank => {}
        }
        state.last_applied = Some(entry.log_id);
    }
    let Some(last_applied) = state.last_applied else {
        return Err(StorageError::Decode {
            what: "data directory for --force-new-cluster",
            reason: "it holds nothing applied: there is no cluster to recover".to_string(),
        });
    };
    let membership = state.membership.membership();
    let dropped: Vec<MemberId> = membership
        .nodes()
        .map(|(id, _)| *id)
        .filter(|id| *id != member_id)
        .collect();
    let node: MemberNode =
        membership
            .get_node(&member_id)
            .cloned()
            .ok_or_else(|| StorageError::Decode {
                what: "data directory for --force-new-cluster",
                reason: format!("member {member_id:x} is not in its own stored membership"),
            })?;
    state.membership = StoredMembership::new(
        Some(last_applied),
        Membership::new(
            vec![BTreeSet::from([member_id])],
            BTreeMap::from([(member_id, node)]),
        ),
    );
    let meta = openraft::SnapshotMeta {
        last_log_id: Some(last_applied),
        last_membership: state.membership.clone(),
        snapshot_id: format!(
            "{}-{}-forced",
            last_applied.index, last_applied.leader_id.term
        ),
    };
    let file: SnapshotFile = state.to_file(&meta);
    snapshots.save(last_applied.index, last_applied.leader_id.term, &file)?;
    // The snapshot is durable; now the log may lose what it covers and what never committed.
    wal.append(
        RecordKind::Truncate,
        &codec::encode(&(last_applied.index + 1)),
    )?;
    wal.append(
        RecordKind::Purge,
        &codec::encode(&DiskLogId::from(last_applied)),
    )?;
    wal.sync()?;
    Ok(dropped)
}

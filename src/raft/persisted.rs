//! Every raft value that reaches disk, as Cairn's own types: openraft's types never go to
//! disk directly, so an openraft upgrade that changes their serde layout cannot change
//! Cairn's formats. Each type here mirrors the layout the version-1 formats were written
//! with (bincode: structs as their fields in order, enums as a u32 variant index), so data
//! written before these types existed reads back unchanged; `format_tests` pins the bytes.
//!
//! Persisted where:
//! - WAL records (`storage::wal`, format version 1): `DiskEntry` (Entry), `DiskVote` (Vote),
//!   `Option<DiskLogId>` (Committed), `u64` (Truncate), `DiskLogId` (Purge).
//! - Snapshot files (`storage::snapshot`, format version 4): `SnapshotFile`; version 3 files
//!   (a state machine without alarms) are read as `SnapshotFileV3`, version 2 files
//!   (a state machine without the auth store) are read as `SnapshotFileV2`, version 1 files
//!   (which also held two local flags inside the state machine) as `SnapshotFileV1`.

use super::members::MemberNode;
use super::types::TypeConfig;
use crate::apply::{Command, StateMachine};
use crate::auth::AuthStore;
use crate::lease::LeaseTable;
use crate::mvcc::Store;
use openraft::{Entry, EntryPayload, LeaderId, LogId, Membership, StoredMembership, Vote};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A log position: the leader that proposed it (term, member) and its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskLogId {
    pub term: u64,
    pub node_id: u64,
    pub index: u64,
}

impl From<LogId<u64>> for DiskLogId {
    fn from(id: LogId<u64>) -> Self {
        DiskLogId {
            term: id.leader_id.term,
            node_id: id.leader_id.node_id,
            index: id.index,
        }
    }
}

impl From<DiskLogId> for LogId<u64> {
    fn from(id: DiskLogId) -> Self {
        LogId {
            leader_id: LeaderId {
                term: id.term,
                node_id: id.node_id,
            },
            index: id.index,
        }
    }
}

/// The vote a member granted (or its own, as candidate or leader).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskVote {
    pub term: u64,
    pub node_id: u64,
    pub committed: bool,
}

impl From<&Vote<u64>> for DiskVote {
    fn from(vote: &Vote<u64>) -> Self {
        DiskVote {
            term: vote.leader_id.term,
            node_id: vote.leader_id.node_id,
            committed: vote.committed,
        }
    }
}

impl From<DiskVote> for Vote<u64> {
    fn from(vote: DiskVote) -> Self {
        Vote {
            leader_id: LeaderId {
                term: vote.term,
                node_id: vote.node_id,
            },
            committed: vote.committed,
        }
    }
}

/// A member configuration: one voter set, or two during a joint change; `nodes` holds every
/// member, learners being those in no voter set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskMembership {
    pub configs: Vec<BTreeSet<u64>>,
    pub nodes: BTreeMap<u64, MemberNode>,
}

impl From<&Membership<u64, MemberNode>> for DiskMembership {
    fn from(membership: &Membership<u64, MemberNode>) -> Self {
        DiskMembership {
            configs: membership.get_joint_config().clone(),
            nodes: membership
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect(),
        }
    }
}

impl From<DiskMembership> for Membership<u64, MemberNode> {
    fn from(membership: DiskMembership) -> Self {
        Membership::new(membership.configs, membership.nodes)
    }
}

/// A configuration and the log position that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskStoredMembership {
    pub log_id: Option<DiskLogId>,
    pub membership: DiskMembership,
}

impl From<&StoredMembership<u64, MemberNode>> for DiskStoredMembership {
    fn from(stored: &StoredMembership<u64, MemberNode>) -> Self {
        DiskStoredMembership {
            log_id: stored.log_id().map(DiskLogId::from),
            membership: stored.membership().into(),
        }
    }
}

impl From<DiskStoredMembership> for StoredMembership<u64, MemberNode> {
    fn from(stored: DiskStoredMembership) -> Self {
        StoredMembership::new(stored.log_id.map(LogId::from), stored.membership.into())
    }
}

/// A log entry's payload, borrowed for writing (a command may be megabytes: never copied).
#[derive(Serialize)]
enum DiskPayloadRef<'a> {
    Blank,
    Normal(&'a Command),
    Membership(DiskMembership),
}

/// A log entry's payload as read back.
#[derive(Deserialize)]
enum DiskPayload {
    Blank,
    Normal(Command),
    Membership(DiskMembership),
}

#[derive(Serialize)]
struct DiskEntryRef<'a> {
    log_id: DiskLogId,
    payload: DiskPayloadRef<'a>,
}

#[derive(Deserialize)]
struct DiskEntry {
    log_id: DiskLogId,
    payload: DiskPayload,
}

/// The bytes of a WAL `Entry` record.
pub fn encode_entry(entry: &Entry<TypeConfig>) -> Vec<u8> {
    let payload = match &entry.payload {
        EntryPayload::Blank => DiskPayloadRef::Blank,
        EntryPayload::Normal(command) => DiskPayloadRef::Normal(command),
        EntryPayload::Membership(membership) => DiskPayloadRef::Membership(membership.into()),
    };
    crate::storage::codec::encode(&DiskEntryRef {
        log_id: entry.log_id.into(),
        payload,
    })
}

pub fn decode_entry(bytes: &[u8]) -> Result<Entry<TypeConfig>, crate::storage::StorageError> {
    let entry: DiskEntry = crate::storage::codec::decode("log entry", bytes)?;
    Ok(Entry {
        log_id: entry.log_id.into(),
        payload: match entry.payload {
            DiskPayload::Blank => EntryPayload::Blank,
            DiskPayload::Normal(command) => EntryPayload::Normal(command),
            DiskPayload::Membership(membership) => EntryPayload::Membership(membership.into()),
        },
    })
}

/// What a snapshot covers: the last log position applied, the configuration then, and an
/// ID naming this snapshot in transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSnapshotMeta {
    pub last_log_id: Option<DiskLogId>,
    pub last_membership: DiskStoredMembership,
    pub snapshot_id: String,
}

/// A snapshot file's payload (format version 4). `meta` comes first so it can be read
/// without the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    pub meta: DiskSnapshotMeta,
    pub machine: StateMachine,
    pub last_applied: Option<DiskLogId>,
    pub membership: DiskStoredMembership,
}

/// A version-1 snapshot file's payload: the state machine then also held the member's
/// `--election-timeout`-derived minimum lease TTL and `--quota-backend-bytes`, local flags
/// that are ignored on reading (every start sets them from its own flags).
#[derive(Deserialize)]
pub struct SnapshotFileV1 {
    meta: DiskSnapshotMeta,
    machine: StateMachineV1,
    last_applied: Option<DiskLogId>,
    membership: DiskStoredMembership,
}

#[derive(Deserialize)]
struct StateMachineV1 {
    store: Store,
    leases: LeaseTable,
    _lease_ttl_seconds_min: i64,
    _backend_bytes_quota: u64,
}

/// A version-2 snapshot file's payload: the state machine had no auth store (so auth was
/// off, with no users or roles).
#[derive(Deserialize)]
pub struct SnapshotFileV2 {
    meta: DiskSnapshotMeta,
    machine: StateMachineV2,
    last_applied: Option<DiskLogId>,
    membership: DiskStoredMembership,
}

#[derive(Deserialize)]
struct StateMachineV2 {
    store: Store,
    leases: LeaseTable,
}

/// A version-3 snapshot file's payload: the state machine had no alarms (none raised).
#[derive(Deserialize)]
pub struct SnapshotFileV3 {
    meta: DiskSnapshotMeta,
    machine: StateMachineV3,
    last_applied: Option<DiskLogId>,
    membership: DiskStoredMembership,
}

#[derive(Deserialize)]
struct StateMachineV3 {
    store: Store,
    leases: LeaseTable,
    auth: AuthStore,
}

impl From<SnapshotFileV3> for SnapshotFile {
    fn from(file: SnapshotFileV3) -> Self {
        SnapshotFile {
            meta: file.meta,
            machine: StateMachine::from_parts(
                file.machine.store,
                file.machine.leases,
                file.machine.auth,
                Default::default(),
            ),
            last_applied: file.last_applied,
            membership: file.membership,
        }
    }
}

impl From<SnapshotFileV1> for SnapshotFile {
    fn from(file: SnapshotFileV1) -> Self {
        SnapshotFile::from(SnapshotFileV2 {
            meta: file.meta,
            machine: StateMachineV2 {
                store: file.machine.store,
                leases: file.machine.leases,
            },
            last_applied: file.last_applied,
            membership: file.membership,
        })
    }
}

impl From<SnapshotFileV2> for SnapshotFile {
    fn from(file: SnapshotFileV2) -> Self {
        SnapshotFile::from(SnapshotFileV3 {
            meta: file.meta,
            machine: StateMachineV3 {
                store: file.machine.store,
                leases: file.machine.leases,
                auth: AuthStore::default(),
            },
            last_applied: file.last_applied,
            membership: file.membership,
        })
    }
}

/// Reads a snapshot payload of any readable format version.
pub fn decode_snapshot(
    version: u32,
    reader: &mut dyn std::io::Read,
    payload_bytes: u64,
) -> Result<SnapshotFile, crate::storage::StorageError> {
    use crate::storage::codec::decode_from;
    match version {
        1 => decode_from::<SnapshotFileV1>("snapshot", reader, payload_bytes).map(Into::into),
        2 => decode_from::<SnapshotFileV2>("snapshot", reader, payload_bytes).map(Into::into),
        3 => decode_from::<SnapshotFileV3>("snapshot", reader, payload_bytes).map(Into::into),
        _ => decode_from::<SnapshotFile>("snapshot", reader, payload_bytes),
    }
}

#[cfg(test)]
#[path = "persisted/format_tests.rs"]
mod format_tests;

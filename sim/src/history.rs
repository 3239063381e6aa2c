//! What the workload did and saw, in simulated milliseconds. Checkers read only this.

use std::collections::BTreeMap;

pub type Revision = i64;
pub type Millis = u64;

/// A key's state as a read or a watch event shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub value: String,
    pub mod_revision: Revision,
    pub create_revision: Revision,
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// A txn: if the key's mod_revision equals `expected` (0 = absent), put `value`.
    CompareAndSwap {
        key: String,
        expected: Revision,
        value: String,
    },
    /// `linearizable: false` is a serializable read.
    Get {
        key: String,
        linearizable: bool,
    },
}

impl Request {
    pub fn key(&self) -> &str {
        match self {
            Request::Put { key, .. }
            | Request::Delete { key }
            | Request::CompareAndSwap { key, .. }
            | Request::Get { key, .. } => key,
        }
    }

    pub fn is_write(&self) -> bool {
        !matches!(self, Request::Get { .. })
    }

    /// The value this request writes, if it writes one (values are unique per request).
    pub fn written_value(&self) -> Option<&str> {
        match self {
            Request::Put { value, .. } | Request::CompareAndSwap { value, .. } => Some(value),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A write took effect at `revision` (for a delete: `deleted` keys; for a CAS: whether
    /// it succeeded; a failed CAS or a delete of nothing changes nothing at `revision`).
    Written { revision: Revision, changed: bool },
    Read {
        revision: Revision,
        found: Option<Observed>,
    },
    /// No answer: a write may or may not have taken effect.
    Indeterminate(String),
    /// A read that failed (reads have no effect, so this is simply not checked).
    ReadFailed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: usize,
    pub client: usize,
    pub request: Request,
    pub invoked_ms: Millis,
    pub completed_ms: Millis,
    pub response: Response,
}

/// One response on a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub key: String,
    pub revision: Revision,
    /// None for a delete.
    pub value: Option<String>,
    /// The key as it was before this event, when the watch asked for it and the key existed.
    pub prev: Option<PreviousKv>,
}

/// A watch event's prev_kv: the key's value and the revision that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousKv {
    pub revision: Revision,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    Created {
        start_revision: Revision,
    },
    Events {
        header_revision: Revision,
        events: Vec<WatchEvent>,
    },
    /// A progress notification: everything up to `revision` has been delivered.
    Progress {
        revision: Revision,
    },
    /// Canceled because history before `compact_revision` is gone.
    Compacted {
        compact_revision: Revision,
    },
    /// The stream broke; the watcher resumes after the last revision it saw.
    Broken,
    /// The server ended the stream with OK while its watcher was live. etcd never does: only
    /// a cancel or an error ends a watch stream (a client that closed its sending side
    /// still gets every event).
    EndedWithOk,
    /// The server ended the stream with "etcdserver: no leader" (the watcher resumes).
    /// Right only for a stream opened with `hasleader` (`WatchLog::requires_leader`).
    EndedNoLeader,
}

/// Everything one watcher received, across its resumptions, for keys under `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchLog {
    pub watcher: usize,
    pub prefix: String,
    pub with_prev_kv: bool,
    /// Its streams carry `hasleader: true`, as clientv3's `WithRequireLeader` sends.
    pub requires_leader: bool,
    pub messages: Vec<WatchMessage>,
}

/// Lease activity of one lease client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseLog {
    pub key: String,
    pub ttl_seconds: i64,
    /// When the put that attached the key to the lease was acknowledged.
    pub attached_ms: Option<Millis>,
    /// (invoked, completed) of every grant or keepalive that the leader acknowledged.
    pub renewals: Vec<(Millis, Millis)>,
    /// (invoked, completed, present) of every linearizable read of the leased key.
    pub reads: Vec<(Millis, Millis, bool)>,
    /// When the client stopped renewing (the lease should then expire).
    pub abandoned_ms: Option<Millis>,
    /// The final read after faults stopped and the expiry bound passed: present?
    pub present_at_end: Option<bool>,
    /// Keepalive streams whose sending side the client closed after its request, which the
    /// server ended with OK without answering it.
    pub half_closed_unanswered: usize,
}

/// State read from every member at the end, after healing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalState {
    /// The linearizable contents of the workload's key space and the revision read at.
    pub revision: Revision,
    pub keys: BTreeMap<String, Observed>,
    /// (member, HashKV at `hash_revision`) for every member that answered.
    pub hashes: Vec<(usize, u32)>,
    pub hash_revision: Revision,
    /// Simulated time from the end of faults until the first successful write.
    pub recovery_ms: Option<Millis>,
}

/// The auth workload: when auth was on, how the restricted role's grant on the granted
/// prefix changed, and every request of the restricted user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthLog {
    /// When `auth enable` was acknowledged (requests before it are not checked).
    pub enabled_ms: Option<Millis>,
    /// When the final `auth disable` was first sent (requests after it are not checked).
    pub disable_invoked_ms: Option<Millis>,
    /// Grants and revokes in the order the admin sent them, one at a time.
    pub grant_changes: Vec<GrantChange>,
    pub requests: Vec<AuthRequest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantChange {
    /// true: READWRITE granted on the prefix; false: revoked.
    pub granted: bool,
    pub invoked_ms: Millis,
    /// None: no answer (it may take effect at any time after it was sent).
    pub completed_ms: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Allowed,
    Denied,
    /// Anything else (a timeout, an old token): neither allowed nor denied.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub client: usize,
    pub key: String,
    pub write: bool,
    pub invoked_ms: Millis,
    pub completed_ms: Millis,
    pub outcome: AuthOutcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub operations: Vec<Operation>,
    pub watches: Vec<WatchLog>,
    pub leases: Vec<LeaseLog>,
    pub final_state: FinalState,
    /// Operator requests (membership changes) a healed cluster did not complete in time.
    pub stalled_changes: Vec<String>,
    pub auth: AuthLog,
    /// Operator requests a cluster must refuse (the unsafe-request fault).
    pub unsafe_requests: Vec<UnsafeRequest>,
    /// Members' clocks stepped forward (the clock-jump fault): when, and by how much.
    pub clock_jumps: Vec<ClockJump>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockJump {
    pub at_ms: Millis,
    pub forward_ms: Millis,
}

/// A membership request etcd refuses, and how the cluster answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeRequest {
    /// What was asked, for the report: "add a voter at member-2's peer URL".
    pub description: String,
    /// etcd's message when it refuses.
    pub refusal: String,
    /// Whether etcd may also accept it (a voter added while members are down: etcd counts a
    /// member started for a while after it stops).
    pub may_be_accepted: bool,
    pub answer: UnsafeAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsafeAnswer {
    Accepted,
    Refused(String),
    /// No answer that says either (a timeout, unavailable, leader changed).
    Unknown(String),
}

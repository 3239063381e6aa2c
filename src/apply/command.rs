//! Commands (what goes through raft) and their outcomes, in domain terms; the api layer
//! converts to and from etcd's protobuf messages.

use crate::auth::AuthCommand;
use crate::base::metrics::Operations;
use crate::base::{Bytes, EtcdError, KeyRange, LeaseId, MemberId, Revision};
use crate::mvcc::{KeyValue, RangeQuery, RangeResult};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    pub key: Bytes,
    pub value: Bytes,
    pub lease: LeaseId,
    pub prev_kv: bool,
    pub ignore_value: bool,
    pub ignore_lease: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub range: KeyRange,
    pub prev_kv: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Version(i64),
    Create(Revision),
    Mod(Revision),
    Value(Bytes),
    Lease(LeaseId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub range: KeyRange,
    pub result: CompareResult,
    pub target: CompareTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    Range(RangeQuery),
    Put(PutRequest),
    Delete(DeleteRequest),
    Txn(TxnRequest),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    pub compares: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

/// A lease's remaining TTL as the leader saw it, replicated so a new leader never shortens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseCheckpoint {
    pub id: LeaseId,
    pub remaining_ttl_seconds: i64,
}

/// Everything that changes replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Put(PutRequest),
    Delete(DeleteRequest),
    Txn(TxnRequest),
    Compact {
        revision: Revision,
    },
    /// `id` 0 asks the state machine to choose one.
    LeaseGrant {
        id: LeaseId,
        ttl_seconds: i64,
    },
    LeaseRevoke {
        id: LeaseId,
    },
    LeaseCheckpoint {
        checkpoints: Vec<LeaseCheckpoint>,
    },
    /// Commands proposed together as one raft entry (one fsync); applied in order, each
    /// with its own revision and its own outcome.
    Batch(Vec<Command>),
    /// A change to users, roles, permissions or the enabled flag.
    Auth(AuthCommand),
    /// A command from an authenticated user while auth is on, checked again at apply (as
    /// etcd's auth applier): the api checked its keys against auth revision
    /// `auth_revision`, so it is refused if the auth state has changed since; commands that
    /// need the root role are checked against the user's roles now.
    Guarded {
        user: String,
        auth_revision: u64,
        command: Box<Command>,
    },
    /// Raises or clears an alarm (etcd's Maintenance.Alarm ACTIVATE and DEACTIVATE).
    Alarm {
        activate: bool,
        alarm: Alarm,
    },
}

/// An alarm, as etcd's `AlarmMember`: which member raised it, and what kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Alarm {
    pub member_id: MemberId,
    pub kind: AlarmKind,
}

/// etcd's `AlarmType` (NONE is not an alarm and has no value here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlarmKind {
    /// The store passed `--quota-backend-bytes`: writes that add data are refused.
    NoSpace,
    /// Members' stores differ at the same revision: every KV and lease request is refused.
    Corrupt,
}

impl AlarmKind {
    /// etcd's wire number.
    pub fn wire(self) -> i32 {
        match self {
            AlarmKind::NoSpace => 1,
            AlarmKind::Corrupt => 2,
        }
    }

    pub fn from_wire(number: i32) -> Option<AlarmKind> {
        match number {
            1 => Some(AlarmKind::NoSpace),
            2 => Some(AlarmKind::Corrupt),
            _ => None,
        }
    }

    /// etcd's name, as `alarm list` and `/health` print it.
    pub fn name(self) -> &'static str {
        match self {
            AlarmKind::NoSpace => "NOSPACE",
            AlarmKind::Corrupt => "CORRUPT",
        }
    }
}

/// What auth asks of a command's sender at apply, as etcd's auth applier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthCheck {
    /// Nothing: etcd checks no permission for a compaction, whoever sends it (Kubernetes'
    /// apiserver compacts with its own, usually not root, user).
    Nothing,
    /// The root role (auth changes).
    Admin,
    /// A current token and the permissions its keys need (`access::check_command`).
    Keys,
}

impl TxnRequest {
    /// Whether either path puts a key, at any depth.
    pub fn may_put(&self) -> bool {
        self.success.iter().chain(&self.failure).any(|op| match op {
            RequestOp::Put(_) => true,
            RequestOp::Txn(txn) => txn.may_put(),
            RequestOp::Range(_) | RequestOp::Delete(_) => false,
        })
    }
}

impl Command {
    /// Whether applying it may add data: what NOSPACE refuses (puts, txns that may put, lease
    /// grants). Deletes, compactions and the rest free space or need none.
    pub fn may_add_data(&self) -> bool {
        match self {
            Command::Put(_) | Command::LeaseGrant { .. } => true,
            Command::Txn(txn) => txn.may_put(),
            Command::Guarded { command, .. } => command.may_add_data(),
            Command::Batch(commands) => commands.iter().any(Command::may_add_data),
            _ => false,
        }
    }

    pub fn auth_check(&self) -> AuthCheck {
        match self {
            // etcd checks no permission for either: a compaction is sent by whoever runs it
            // (Kubernetes' apiserver compacts with its own user), and alarms are the cluster's.
            Command::Compact { .. } | Command::Alarm { .. } => AuthCheck::Nothing,
            Command::Auth(_) => AuthCheck::Admin,
            _ => AuthCheck::Keys,
        }
    }
}

/// What a put answers, alone or inside a txn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    pub prev_kv: Option<KeyValue>,
}

/// What a delete answers, alone or inside a txn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResponse {
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    Range(RangeResult),
    Put(PutResponse),
    Delete(DeleteResponse),
    Txn(TxnResponse),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

impl TxnResponse {
    /// The store operations this txn performed: its responses mirror the executed path.
    pub fn operations(&self) -> Operations {
        let mut operations = Operations::default();
        self.add_operations(&mut operations);
        operations
    }

    fn add_operations(&self, operations: &mut Operations) {
        for response in &self.responses {
            match response {
                ResponseOp::Range(_) => operations.ranges += 1,
                ResponseOp::Put(_) => operations.puts += 1,
                ResponseOp::Delete(_) => operations.deletes += 1,
                ResponseOp::Txn(nested) => nested.add_operations(operations),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Put(PutResponse),
    Delete(DeleteResponse),
    Txn(TxnResponse),
    Compacted,
    LeaseGranted {
        id: LeaseId,
        ttl_seconds: i64,
    },
    LeaseRevoked,
    LeaseCheckpointed,
    /// An entry with no command (raft's own blank or membership entries).
    Nothing,
    /// One outcome per command of a `Command::Batch`, in order.
    Batch(Vec<Applied>),
    AuthChanged,
    /// The alarms an alarm change affected (etcd answers the one raised, or the one
    /// cleared if it was raised).
    Alarms(Vec<Alarm>),
}

/// What applying one command produced, and the store revision after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub revision: Revision,
    pub result: Result<Outcome, EtcdError>,
}

impl Applied {
    /// Calls `record` with the store operations of each request this applied (each command
    /// of a batch is its own request, as etcd counts them).
    pub fn each_request_operations(&self, record: &mut impl FnMut(Operations)) {
        match &self.result {
            Ok(Outcome::Batch(applied)) => {
                for one in applied {
                    one.each_request_operations(record);
                }
            }
            Ok(Outcome::Put(_)) => record(Operations {
                puts: 1,
                ..Operations::default()
            }),
            Ok(Outcome::Delete(_)) => record(Operations {
                deletes: 1,
                ..Operations::default()
            }),
            Ok(Outcome::Txn(txn)) => record(txn.operations()),
            Ok(_) | Err(_) => {}
        }
    }
}

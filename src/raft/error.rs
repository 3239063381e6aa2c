//! What can go wrong in the raft layer, each cause kept apart so logs and the api edge can
//! tell them apart; `api` maps every variant to etcd's wire error once.

use crate::base::{EtcdError, MemberId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum NodeError {
    /// An answer clients see as it is: the state machine's, or one of etcd's checks
    /// (membership rules, leases, request size).
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// No member is known to lead right now.
    #[error("no leader")]
    NoLeader,
    /// This member was asked to act as leader and is not.
    #[error("this member is not the leader")]
    NotLeader,
    /// The leader changed while the request was in flight; it may or may not have applied.
    #[error("the leader changed while the request was in flight")]
    LeaderChanged,
    /// The request did not finish within the request timeout.
    #[error("{0} did not finish within the request timeout")]
    Timeout(Waited),
    /// A follower could not hand the request to the leader.
    #[error("forwarding to leader {leader:x} failed: {cause}")]
    ForwardFailed { leader: MemberId, cause: String },
    /// Too many linearizable reads already wait for a read index round.
    #[error("{0} reads already wait for a read index")]
    ReadQueueFull(usize),
    /// Raft has stopped (shutdown, or a storage failure).
    #[error("raft stopped")]
    Stopped,
}

/// What a request was waiting for when it timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Waited {
    Commit,
    ReadIndex,
    Apply,
    MembershipChange,
    LeaseRevoke,
    Snapshot,
}

impl std::fmt::Display for Waited {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Waited::Commit => "a proposal's commit",
            Waited::ReadIndex => "a read index round",
            Waited::Apply => "applying up to a read index",
            Waited::MembershipChange => "a membership change",
            Waited::LeaseRevoke => "a revoke of an expired lease",
            Waited::Snapshot => "a snapshot and the WAL purge after it",
        })
    }
}

/// Why a raft node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("invalid raft configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("starting raft: {0}")]
    Raft(String),
}

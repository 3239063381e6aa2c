//! What members say to each other: raft's own RPCs, requests one member hands another to
//! serve (writes, read index and lease requests to the leader; a campaign to a leadership
//! transferee), and cluster discovery for a joining member. Encoded with the storage codec
//! and carried as opaque bytes by whatever `PeerTransport` the server plugs in. Served by
//! `peer_handler.rs`.

use super::error::NodeError;
use super::members::{MemberInfo, MembershipChange};
use super::types::TypeConfig;
use crate::apply::{Applied, Command};
use crate::base::{EtcdError, LeaseId, Revision};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::LogId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Forward(Forwarded),
    ClusterInfo,
    /// This member's HashKV at a revision (the corruption checks).
    HashKv {
        revision: Revision,
    },
    /// Would the receiver vote for a candidate whose log ends here (`pre_vote.rs`)?
    PreVote {
        last_log_id: Option<LogId<u64>>,
    },
}

/// A member's HashKV answer: the hash of its versions at `revision`, and its compaction
/// point (hashes are comparable only between members compacted at the same revision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashKv {
    pub hash: u32,
    pub revision: Revision,
    pub compact_revision: Revision,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// The answer to a `Forward`: the encoded `Result<R::Output, NodeError>` of the
    /// request's own `ForwardRequest` type, so no other answer can be decoded for it.
    Forwarded(Vec<u8>),
    ClusterInfo {
        cluster_id: u64,
        members: Vec<MemberInfo>,
    },
    /// The request could not be decoded (a member of another version).
    Malformed(String),
    HashKv(Result<HashKv, EtcdError>),
    PreVote(bool),
}

/// A request one member asks another to serve, paired with the type of its answer.
pub trait ForwardRequest: Into<Forwarded> + Send + 'static {
    type Output: Serialize + DeserializeOwned + Send + 'static;
}

/// Declares each forwarded request with its answer type, the `Forwarded` enum carrying any
/// of them, and the conversions.
macro_rules! forwarded_requests {
    ($($(#[$doc:meta])* $name:ident $(($field:ty))? => $output:ty,)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Serialize, Deserialize)]
            pub struct $name $((pub $field))?;

            impl ForwardRequest for $name {
                type Output = $output;
            }

            impl From<$name> for Forwarded {
                fn from(request: $name) -> Forwarded {
                    Forwarded::$name(request)
                }
            }
        )*

        /// Any forwarded request, as it travels.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub enum Forwarded {
            $($name($name),)*
        }
    };
}

forwarded_requests! {
    /// A write for the leader to replicate.
    Propose(Command) => Applied,
    /// A read index round on the leader.
    ReadIndex => u64,
    /// A lease keepalive; the answer is the lease's TTL in seconds.
    KeepAlive(LeaseId) => i64,
    /// A lease's remaining and granted TTL in seconds, `None` if it does not exist.
    TimeToLive(LeaseId) => Option<(i64, i64)>,
    /// A member-list change; the answer is the member added (if any) and the list after.
    ChangeMembers(MembershipChange) => (Option<MemberInfo>, Vec<MemberInfo>),
    /// The leader asks a transferee to campaign now (leadership transfer).
    Campaign => (),
}

/// The result a forwarded request's answer carries.
pub type ForwardResult<R> = Result<<R as ForwardRequest>::Output, NodeError>;

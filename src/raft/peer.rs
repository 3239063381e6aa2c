//! What members say to each other: raft's own RPCs, requests forwarded to the leader, and
//! cluster discovery for a joining member. Encoded with the storage codec and carried as
//! opaque bytes by whatever `PeerTransport` the server plugs in.

use super::{MemberNode, RaftNode, TypeConfig};
use crate::apply::{Applied, Command};
use crate::base::{EtcdError, LeaseId, MemberId};
use crate::storage::codec;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

/// A change to the member list (etcd's Cluster service and a member publishing itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    Add {
        peer_urls: Vec<String>,
        is_learner: bool,
    },
    Remove {
        id: MemberId,
    },
    Update {
        id: MemberId,
        peer_urls: Vec<String>,
    },
    Promote {
        id: MemberId,
    },
    /// A started member records its name and client URLs (etcd's attribute publishing).
    Publish {
        id: MemberId,
        name: String,
        client_urls: Vec<String>,
    },
}

/// A member as the Cluster service lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub id: MemberId,
    pub node: MemberNode,
    pub is_learner: bool,
}

/// Requests a follower hands to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Forwarded {
    Propose(Command),
    ReadIndex,
    KeepAlive(LeaseId),
    TimeToLive(LeaseId),
    ChangeMembers(MembershipChange),
    /// The leader asks this member to campaign now (leadership transfer).
    Campaign,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Forward(Forwarded),
    ClusterInfo,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Proposed(Result<Applied, EtcdError>),
    ReadIndex(Result<u64, EtcdError>),
    KeptAlive(Result<i64, EtcdError>),
    TimeToLive(Result<Option<(i64, i64)>, EtcdError>),
    MembersChanged(Result<(Option<MemberInfo>, Vec<MemberInfo>), EtcdError>),
    Campaigning(Result<(), EtcdError>),
    ClusterInfo {
        cluster_id: u64,
        members: Vec<MemberInfo>,
    },
    /// The request could not be decoded (a member of another version).
    Malformed(String),
}

/// Serves requests from other members.
#[derive(Clone)]
pub struct PeerHandler {
    node: RaftNode,
    lessor: super::Lessor,
    cluster_id: u64,
}

impl PeerHandler {
    pub fn new(node: RaftNode, lessor: super::Lessor, cluster_id: u64) -> Self {
        PeerHandler {
            node,
            lessor,
            cluster_id,
        }
    }

    /// Answers an encoded request. A sender that does not know the cluster yet (a member
    /// joining) may only ask who we are.
    pub async fn handle(&self, payload: &[u8], sender_knows_cluster: bool) -> Vec<u8> {
        let response = match codec::decode::<PeerRequest>("peer request", payload) {
            Err(error) => PeerResponse::Malformed(error.to_string()),
            // A member joining right after `member add` must find itself even here, on a
            // member that has the add in its log but has not applied it yet.
            Ok(PeerRequest::ClusterInfo) => PeerResponse::ClusterInfo {
                cluster_id: self.cluster_id,
                members: self.node.effective_members(),
            },
            Ok(_) if !sender_knows_cluster => PeerResponse::Malformed(
                "only cluster discovery is allowed before joining".to_string(),
            ),
            Ok(request) => self.answer(request).await,
        };
        codec::encode(&response)
    }

    async fn answer(&self, request: PeerRequest) -> PeerResponse {
        let raft = self.node.raft();
        match request {
            PeerRequest::AppendEntries(request) => {
                PeerResponse::AppendEntries(raft.append_entries(request).await)
            }
            PeerRequest::Vote(request) => PeerResponse::Vote(raft.vote(request).await),
            PeerRequest::InstallSnapshot(request) => {
                PeerResponse::InstallSnapshot(raft.install_snapshot(request).await)
            }
            PeerRequest::ClusterInfo => unreachable!("answered in handle"),
            // Forwarded requests are served here and never forwarded again: one hop at most.
            PeerRequest::Forward(Forwarded::Propose(command)) => {
                PeerResponse::Proposed(self.node.propose_on_leader(command).await)
            }
            PeerRequest::Forward(Forwarded::ReadIndex) => {
                PeerResponse::ReadIndex(self.node.read_index_on_leader().await)
            }
            PeerRequest::Forward(Forwarded::KeepAlive(id)) => {
                PeerResponse::KeptAlive(self.lessor.keep_alive_on_leader(id).await)
            }
            PeerRequest::Forward(Forwarded::TimeToLive(id)) => {
                PeerResponse::TimeToLive(self.lessor.time_to_live_on_leader(id).await)
            }
            PeerRequest::Forward(Forwarded::ChangeMembers(change)) => {
                PeerResponse::MembersChanged(self.node.change_members_on_leader(change).await)
            }
            PeerRequest::Forward(Forwarded::Campaign) => {
                let started = raft.trigger().elect().await.map_err(|_| EtcdError::Stopped);
                PeerResponse::Campaigning(started)
            }
        }
    }
}

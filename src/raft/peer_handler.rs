//! Serves requests from other members: raft's RPCs into openraft, forwarded requests on
//! this member (never forwarded again: one hop at most), cluster discovery.

use super::error::{NodeError, Waited};
use super::lessor::Lessor;
use super::node::RaftNode;
use super::peer::HashKv;
use super::peer::{
    Campaign, ChangeMembers, ForwardRequest, ForwardResult, Forwarded, KeepAlive, PeerRequest,
    PeerResponse, Propose, ReadIndex, TimeToLive,
};
use crate::io::coverage::{self, MemberState};
use crate::io::fault_points::{self, FaultPoint};
use crate::storage::codec;
use std::future::Future;

#[derive(Clone)]
pub struct PeerHandler {
    node: RaftNode,
    lessor: Lessor,
    cluster_id: u64,
}

impl PeerHandler {
    pub fn new(node: RaftNode, lessor: Lessor, cluster_id: u64) -> Self {
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
                self.node.heard_from(&request.vote);
                PeerResponse::AppendEntries(raft.append_entries(request).await)
            }
            PeerRequest::Vote(request) => PeerResponse::Vote(raft.vote(request).await),
            PeerRequest::InstallSnapshot(request) => {
                self.node.heard_from(&request.vote);
                // For the simulator's coverage table: receiving until the last chunk is in.
                let last_chunk = request.done;
                coverage::note(MemberState::SnapshotReceiving, true);
                let answer = raft.install_snapshot(request).await;
                if last_chunk || answer.is_err() {
                    coverage::note(MemberState::SnapshotReceiving, false);
                }
                PeerResponse::InstallSnapshot(answer)
            }
            PeerRequest::PreVote { last_log_id } => {
                PeerResponse::PreVote(self.node.answer_pre_vote(last_log_id))
            }
            PeerRequest::ClusterInfo => unreachable!("answered in handle"),
            PeerRequest::Forward(request) => self.serve(request).await,
            PeerRequest::HashKv { revision } => {
                let view = self.node.view();
                let store = view.machine.store();
                PeerResponse::HashKv(store.readable_revision(revision).map(|revision| HashKv {
                    hash: store.hash_kv(revision),
                    revision,
                    compact_revision: store.compact_revision(),
                }))
            }
        }
    }

    async fn serve(&self, request: Forwarded) -> PeerResponse {
        let (node, lessor) = (&self.node, &self.lessor);
        match request {
            Forwarded::Propose(request) => {
                answer(request, |Propose(command)| async {
                    let applied = node.propose_on_leader(command).await;
                    if applied.is_ok() && fault_points::fires(FaultPoint::ForwardTimesOutAfterApply)
                    {
                        return Err(NodeError::Timeout(Waited::Apply));
                    }
                    applied
                })
                .await
            }
            Forwarded::ReadIndex(request) => {
                answer(request, |ReadIndex| node.read_index_on_leader()).await
            }
            Forwarded::KeepAlive(request) => {
                answer(request, |KeepAlive(id)| lessor.keep_alive_on_leader(id)).await
            }
            Forwarded::TimeToLive(request) => {
                answer(request, |TimeToLive(id)| lessor.time_to_live_on_leader(id)).await
            }
            Forwarded::ChangeMembers(request) => {
                answer(request, |ChangeMembers(change)| {
                    node.change_members_on_leader(change)
                })
                .await
            }
            Forwarded::Campaign(request) => {
                answer(request, |Campaign| async {
                    let raft = node.raft();
                    raft.trigger().elect().await.map_err(|_| NodeError::Stopped)
                })
                .await
            }
        }
    }
}

/// Serves `request` with `serve` and encodes the answer as `R`'s own result type.
async fn answer<R, F>(request: R, serve: impl FnOnce(R) -> F) -> PeerResponse
where
    R: ForwardRequest,
    F: Future<Output = ForwardResult<R>>,
{
    PeerResponse::Forwarded(codec::encode(&serve(request).await))
}

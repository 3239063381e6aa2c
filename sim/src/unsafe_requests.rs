//! The unsafe-request fault: the operator asks for membership changes etcd refuses (a voter
//! at a peer URL already taken, a voter promoted, an unknown member removed, a voter added
//! while too few members run) and records how the cluster answered, for the operator
//! checker. A voter added while members are down may be accepted (etcd counts a member as
//! started for a while after it stops); the heal then removes it, within the liveness
//! checker's patience.

use crate::history::{UnsafeAnswer, UnsafeRequest};
use crate::membership::remove_listed;
use crate::workload::channels;
use cairn::api::pb::etcdserverpb::{
    cluster_client::ClusterClient, MemberAddRequest, MemberListRequest, MemberPromoteRequest,
    MemberRemoveRequest,
};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// A peer URL no member ever listens on: a voter added there never starts.
pub const PHANTOM_PEER_URL: &str = "http://192.0.2.250:2380";

#[derive(Debug, Clone, Copy)]
pub enum Choice {
    /// A voter at the peer URL of the listed member at this position (modulo the count).
    TakenPeerUrl(usize),
    /// Promote the listed voter at this position.
    PromoteVoter(usize),
    /// Remove a member ID nobody has.
    RemoveUnknown(u64),
    /// A voter at `PHANTOM_PEER_URL` while members are down.
    VoterWhileDown,
}

/// Asks `choice` of the member at `target` (modulo the cluster size); the request and its
/// answer, or why it was not asked (no member list to choose from).
pub async fn ask(
    cluster_size: usize,
    target: usize,
    choice: Choice,
) -> Result<UnsafeRequest, String> {
    let channels = channels(&crate::member::client_urls(cluster_size));
    let mut cluster = ClusterClient::new(channels[target % channels.len()].clone());
    let members = match tokio::time::timeout(
        CALL_TIMEOUT,
        cluster.member_list(MemberListRequest { linearizable: true }),
    )
    .await
    {
        Ok(Ok(response)) => response.into_inner().members,
        _ => return Err("unsafe request skipped: no member list".to_string()),
    };
    let voters: Vec<_> = members.iter().filter(|member| !member.is_learner).collect();
    if voters.is_empty() {
        return Err("unsafe request skipped: no voter listed".to_string());
    }
    let add = |url: String| MemberAddRequest {
        peer_ur_ls: vec![url],
        is_learner: false,
    };
    let (description, refusal, may_be_accepted, answer) = match choice {
        Choice::TakenPeerUrl(position) => {
            let member = voters[position % voters.len()];
            let url = member.peer_ur_ls.first().cloned().unwrap_or_default();
            let call = cluster.member_add(add(url.clone()));
            (
                format!("adding a voter at {url}, {}'s peer URL", member.name),
                "etcdserver: Peer URLs already exists",
                false,
                answer(call).await,
            )
        }
        Choice::PromoteVoter(position) => {
            let member = voters[position % voters.len()];
            let call = cluster.member_promote(MemberPromoteRequest { id: member.id });
            (
                format!("promoting voter {:x} ({})", member.id, member.name),
                "etcdserver: can only promote a learner member",
                false,
                answer(call).await,
            )
        }
        Choice::RemoveUnknown(id) => {
            let id = if members.iter().any(|member| member.id == id) {
                id.wrapping_add(1)
            } else {
                id
            };
            let call = cluster.member_remove(MemberRemoveRequest { id });
            (
                format!("removing member {id:x}, which does not exist"),
                "etcdserver: member not found",
                false,
                answer(call).await,
            )
        }
        Choice::VoterWhileDown => {
            let call = cluster.member_add(add(PHANTOM_PEER_URL.to_string()));
            (
                format!(
                    "adding a voter at {PHANTOM_PEER_URL} while too few of {} voters run",
                    voters.len()
                ),
                "etcdserver: unhealthy cluster",
                true,
                answer(call).await,
            )
        }
    };
    Ok(UnsafeRequest {
        description,
        refusal: refusal.to_string(),
        may_be_accepted,
        answer,
    })
}

async fn answer<T>(
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> UnsafeAnswer {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(_)) => UnsafeAnswer::Accepted,
        // etcd's refusal of a voter while members are down is itself "unavailable".
        Ok(Err(status)) if status.message() == "etcdserver: unhealthy cluster" => {
            UnsafeAnswer::Refused(status.message().to_string())
        }
        // "not leader" (FailedPrecondition, as in etcd) means leadership moved before the
        // request was judged: it says nothing of the request.
        Ok(Err(status))
            if status.message() == "etcdserver: not leader"
                || matches!(
                    status.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
                ) =>
        {
            UnsafeAnswer::Unknown(status.message().to_string())
        }
        Ok(Err(status)) => UnsafeAnswer::Refused(status.message().to_string()),
        Err(_) => UnsafeAnswer::Unknown("timed out".to_string()),
    }
}

/// Removes the phantom voter if it was added (or may have been: an unanswered add).
pub async fn remove_phantom(cluster_size: usize) -> Result<String, String> {
    let channels: Vec<Channel> = channels(&crate::member::client_urls(cluster_size));
    remove_listed(&channels, PHANTOM_PEER_URL)
        .await
        .map(|_| format!("voter at {PHANTOM_PEER_URL} not listed"))
}

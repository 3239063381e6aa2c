//! The membership-change fault, done as an operator replaces a failed machine while clients
//! keep working: remove the member, give its node a blank disk, add it back under a new peer
//! URL (so a new member ID) as a learner, start it joining the running cluster, and promote
//! it once it has caught up (by snapshot when the log it needs was purged).
//!
//! Every step is retried until a linearizable member list shows it done, because a request
//! that timed out may still have been applied. A healed cluster that cannot finish the
//! change within `STEP_PATIENCE` is reported as a liveness failure.

use crate::member::{MemberFlags, SimMember};
use crate::workload::channels;
use cairn::api::pb::etcdserverpb::{
    cluster_client::ClusterClient, Member, MemberAddRequest, MemberListRequest,
    MemberPromoteRequest, MemberRemoveRequest,
};
use madsim::runtime::{Handle, NodeHandle};
use madsim::time::Instant;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::Channel;

const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Simulated time each step may take on a healed cluster.
pub const STEP_PATIENCE: Duration = Duration::from_secs(60);
const RETRY_PAUSE: Duration = Duration::from_millis(300);

/// What the operator task needs of the member being replaced.
pub struct Replacement {
    pub handle: Handle,
    pub node: NodeHandle,
    pub disk: cairn::io::MemoryDisk,
    pub flags: Arc<Mutex<MemberFlags>>,
    pub cluster_size: usize,
}

impl Replacement {
    pub fn of(handle: &Handle, member: &SimMember, cluster_size: usize) -> Replacement {
        Replacement {
            handle: handle.clone(),
            node: member.node.clone(),
            disk: member.disk.clone(),
            flags: member.flags.clone(),
            cluster_size,
        }
    }
}

/// Runs the whole replacement; the description of what happened, or of the step that did
/// not finish in time.
pub async fn replace(replacement: Replacement) -> Result<String, String> {
    let channels = channels(&crate::member::client_urls(replacement.cluster_size));
    let (index, old_url) = {
        let flags = replacement.flags.lock().unwrap();
        (flags.index, flags.peer_url())
    };
    remove_listed(&channels, &old_url)
        .await
        .map_err(|error| format!("member-{index}: {error}"))?;

    // The machine is replaced: its process is gone and its disk is blank.
    replacement.handle.kill(replacement.node.id());
    replacement.disk.wipe();
    let new_url = {
        let mut flags = replacement.flags.lock().unwrap();
        flags.generation += 1;
        flags.peer_url()
    };
    let (added, members) = until_listed(&channels, "add", |members| {
        match members
            .iter()
            .find(|member| member.peer_ur_ls.contains(&new_url))
        {
            Some(member) => Done(member.id),
            None => Ask(Change::AddLearner(new_url.clone())),
        }
    })
    .await
    .map_err(|error| format!("member-{index}: {error}"))?;

    {
        let mut flags = replacement.flags.lock().unwrap();
        flags.initial_cluster = members
            .iter()
            .filter_map(|member| {
                let url = member.peer_ur_ls.first()?;
                let name = if *url == new_url {
                    format!("member-{index}")
                } else {
                    member.name.clone()
                };
                Some(format!("{name}={url}"))
            })
            .collect::<Vec<_>>()
            .join(",");
        flags.initial_cluster_state = "existing";
    }
    replacement.handle.restart(replacement.node.id());

    until_listed(&channels, "promote", |members| {
        match members.iter().find(|member| member.id == added) {
            Some(member) if !member.is_learner => Done(added),
            _ => Ask(Change::Promote(added)),
        }
    })
    .await
    .map_err(|error| format!("member-{index}: {error}"))?;
    Ok(format!(
        "member-{index} replaced: removed, rejoined at {new_url} as learner {added:#x}, promoted"
    ))
}

/// Removes the member at `peer_url` until the member list no longer shows it.
pub async fn remove_listed(channels: &[Channel], peer_url: &str) -> Result<(), String> {
    until_listed(channels, "remove", |members| {
        match members
            .iter()
            .find(|member| member.peer_ur_ls.iter().any(|url| url == peer_url))
        {
            None => Done(0),
            Some(member) => Ask(Change::Remove(member.id)),
        }
    })
    .await
    .map(drop)
}

enum Change {
    Remove(u64),
    AddLearner(String),
    Promote(u64),
}

enum Next {
    Done(u64),
    Ask(Change),
}
use Next::{Ask, Done};

/// Lists the members (linearizably), and while `decide` says a change is still needed,
/// asks for it and looks again; requests go to members in turn, since any may be down.
/// Returns what `decide` found and the list it found it in.
async fn until_listed(
    channels: &[Channel],
    step: &str,
    decide: impl Fn(&[Member]) -> Next,
) -> Result<(u64, Vec<Member>), String> {
    let deadline = Instant::now() + STEP_PATIENCE;
    let mut last_error = String::new();
    for attempt in 0.. {
        if Instant::now() >= deadline {
            return Err(format!(
                "{step} did not finish within {} s on a healed cluster (last error: {last_error})",
                STEP_PATIENCE.as_secs()
            ));
        }
        match list(channels, attempt).await {
            Ok(members) => match decide(&members) {
                Done(id) => return Ok((id, members)),
                Ask(change) => {
                    if let Err(error) = request(channels, attempt, change).await {
                        last_error = error;
                    }
                }
            },
            Err(error) => last_error = error,
        }
        madsim::time::sleep(RETRY_PAUSE).await;
    }
    unreachable!("the loop returns")
}

fn client(channels: &[Channel], attempt: usize) -> ClusterClient<Channel> {
    ClusterClient::new(channels[attempt % channels.len()].clone())
}

async fn list(channels: &[Channel], attempt: usize) -> Result<Vec<Member>, String> {
    let mut cluster = client(channels, attempt);
    let call = cluster.member_list(MemberListRequest { linearizable: true });
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(response)) => Ok(response.into_inner().members),
        Ok(Err(status)) => Err(status.message().to_string()),
        Err(_) => Err("member list timed out".to_string()),
    }
}

async fn request(channels: &[Channel], attempt: usize, change: Change) -> Result<(), String> {
    let mut cluster = client(channels, attempt);
    let outcome = match change {
        Change::Remove(id) => {
            let call = cluster.member_remove(MemberRemoveRequest { id });
            tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map(|result| result.map(drop))
        }
        Change::AddLearner(url) => {
            let call = cluster.member_add(MemberAddRequest {
                peer_ur_ls: vec![url],
                is_learner: true,
            });
            tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map(|result| result.map(drop))
        }
        Change::Promote(id) => {
            let call = cluster.member_promote(MemberPromoteRequest { id });
            tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map(|result| result.map(drop))
        }
    };
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(status)) => Err(status.message().to_string()),
        Err(_) => Err("timed out".to_string()),
    }
}

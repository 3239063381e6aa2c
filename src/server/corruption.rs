//! Corruption checks as etcd 3.5's: members compare HashKV at the same revision, and one
//! whose store differs from the majority's gets the CORRUPT alarm, naming it (every KV and
//! lease change is then refused cluster-wide). The leader runs the periodic check
//! (`--experimental-corrupt-check-time`) at its current revision and the compaction check
//! (`--experimental-compact-hash-check-enabled`, every `--experimental-compact-hash-check-time`)
//! at the last compaction revision; `--experimental-initial-corrupt-check` makes a starting
//! member compare itself with the others once it has caught up, and refuse to serve if it
//! differs.

use crate::apply::{Alarm, AlarmKind, Command};
use crate::base::{MemberId, Revision};
use crate::io::clock;
use crate::raft::{call_peer, HashKv, NodeError, PeerRequest, PeerResponse, RaftNode};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long one member has to answer for its hash.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Which revision a check compares at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAt {
    Current,
    Compaction,
}

/// The leader's periodic check; returns when the node stops.
pub async fn run_periodic(node: RaftNode, interval: Duration, at: CheckAt) {
    loop {
        clock::sleep(interval).await;
        if !node.status().is_leader {
            continue;
        }
        let revision = {
            let view = node.view();
            let store = view.machine.store();
            match at {
                CheckAt::Current => store.current_revision(),
                CheckAt::Compaction if store.compact_revision() >= 1 => store.compact_revision(),
                CheckAt::Compaction => continue,
            }
        };
        for member_id in corrupt_members(&node, revision).await {
            let alarm = Alarm {
                member_id,
                kind: AlarmKind::Corrupt,
            };
            if node.view().machine.alarms().contains(&alarm) {
                continue;
            }
            tracing::error!(
                member_id = %format!("{member_id:x}"),
                revision,
                "found data inconsistency: member's HashKV differs from the majority's; raising CORRUPT"
            );
            match node
                .propose(Command::Alarm {
                    activate: true,
                    alarm,
                })
                .await
            {
                Ok(_) => {}
                Err(NodeError::Stopped) => return,
                Err(error) => tracing::warn!(%error, "raising the CORRUPT alarm failed"),
            }
        }
    }
}

/// The initial check: this member against the others at its own revision. Err names the
/// members it differs from.
pub async fn initial_check(node: &RaftNode) -> Result<(), String> {
    let own_id = node.config().member_id;
    let revision = node.view().machine.store().current_revision();
    let hashes = hashes(node, revision).await;
    let Some(own) = hashes.get(&own_id).copied() else {
        return Ok(());
    };
    let differing: Vec<String> = hashes
        .iter()
        .filter(|(_, theirs)| theirs.compact_revision == own.compact_revision)
        .filter(|(_, theirs)| theirs.hash != own.hash)
        .map(|(id, _)| format!("{id:x}"))
        .collect();
    if differing.is_empty() {
        tracing::info!(revision, "initial corruption check passed");
        return Ok(());
    }
    Err(format!(
        "found data inconsistency with peers {}: their HashKV at revision {revision} differs from this member's",
        differing.join(", ")
    ))
}

/// Members whose hash at `revision` differs from a strict majority's. With no majority the
/// leader itself is named: the cluster cannot tell which copy is right, and writes stop.
async fn corrupt_members(node: &RaftNode, revision: Revision) -> Vec<MemberId> {
    let hashes = hashes(node, revision).await;
    let leader = node.config().member_id;
    let Some(own) = hashes.get(&leader).copied() else {
        return Vec::new();
    };
    // Hashes are comparable only at the same compaction point.
    let comparable: BTreeMap<MemberId, u32> = hashes
        .iter()
        .filter(|(_, answer)| answer.compact_revision == own.compact_revision)
        .map(|(id, answer)| (*id, answer.hash))
        .collect();
    let mut votes: BTreeMap<u32, usize> = BTreeMap::new();
    for hash in comparable.values() {
        *votes.entry(*hash).or_default() += 1;
    }
    if votes.len() <= 1 {
        return Vec::new();
    }
    match votes
        .iter()
        .find(|(_, count)| **count * 2 > comparable.len())
    {
        Some((majority, _)) => comparable
            .iter()
            .filter(|(_, hash)| *hash != majority)
            .map(|(id, _)| *id)
            .collect(),
        None => vec![leader],
    }
}

/// Every voter's HashKV at `revision`, this member's included; members that did not answer,
/// or have not reached or have compacted past `revision`, are left out.
async fn hashes(node: &RaftNode, revision: Revision) -> BTreeMap<MemberId, HashKv> {
    let own_id = node.config().member_id;
    let mut hashes = BTreeMap::new();
    {
        let view = node.view();
        let store = view.machine.store();
        if store.readable_revision(revision).is_ok() {
            hashes.insert(
                own_id,
                HashKv {
                    hash: store.hash_kv(revision),
                    revision,
                    compact_revision: store.compact_revision(),
                },
            );
        }
    }
    for member in node.members() {
        if member.id == own_id || member.is_learner {
            continue;
        }
        let request = PeerRequest::HashKv { revision };
        let answer = call_peer(
            node.transport().as_ref(),
            member.id,
            &member.node.peer_urls,
            &request,
            ANSWER_TIMEOUT,
        )
        .await;
        match answer {
            Ok(PeerResponse::HashKv(Ok(hash))) => {
                hashes.insert(member.id, hash);
            }
            Ok(PeerResponse::HashKv(Err(error))) => {
                tracing::debug!(member_id = %format!("{:x}", member.id), %error, "no hash to compare")
            }
            Ok(other) => {
                tracing::warn!(member_id = %format!("{:x}", member.id), ?other, "unexpected answer to HashKV")
            }
            Err(error) => {
                tracing::warn!(member_id = %format!("{:x}", member.id), %error, "cannot fetch hash from peer")
            }
        }
    }
    hashes
}

//! The member list as etcd shows it, and etcd's arithmetic on it (quorum, learner
//! readiness). Plain data: no raft calls here.

use crate::base::MemberId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// What the cluster knows of a member (raft's node type). Persisted in raft's membership
/// entries and snapshots: changing its fields changes the on-disk format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberNode {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

/// A member as the Cluster service lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub id: MemberId,
    pub node: MemberNode,
    pub is_learner: bool,
}

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

/// A learner may be promoted once it has 90% of the leader's log, as etcd requires.
const LEARNER_READY_PERCENT: u64 = 90;

pub fn member_infos(membership: &openraft::Membership<u64, MemberNode>) -> Vec<MemberInfo> {
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, node)| MemberInfo {
            id: *id,
            node: node.clone(),
            is_learner: !voters.contains(id),
        })
        .collect()
}

pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// Whether a learner that has replicated up to `matched` may become a voter of a leader whose
/// log ends at `leader_last`.
pub fn learner_ready(matched: u64, leader_last: u64) -> bool {
    matched * 100 >= leader_last * LEARNER_READY_PERCENT
}

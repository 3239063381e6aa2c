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

/// Whether `change` publishes attributes the member list already holds. A member behind the
/// leader's log (a learner still receiving its snapshot) does not see its own publication
/// yet and asks again; were each repeat a membership change, each would restart the
/// leader's replication to it (snapshot transfer included), and it would never catch up.
pub fn already_published(members: &[MemberInfo], change: &MembershipChange) -> bool {
    let MembershipChange::Publish {
        id,
        name,
        client_urls,
    } = change
    else {
        return false;
    };
    members.iter().any(|member| {
        member.id == *id && member.node.name == *name && member.node.client_urls == *client_urls
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publication_the_list_holds_is_nothing_new() {
        let member = MemberInfo {
            id: 7,
            node: MemberNode {
                name: "m".into(),
                peer_urls: vec!["http://p".into()],
                client_urls: vec!["http://c".into()],
            },
            is_learner: true,
        };
        let publish = |name: &str, client_url: &str| MembershipChange::Publish {
            id: 7,
            name: name.into(),
            client_urls: vec![client_url.into()],
        };
        let members = [member];
        assert!(already_published(&members, &publish("m", "http://c")));
        assert!(!already_published(&members, &publish("n", "http://c")));
        assert!(!already_published(&members, &publish("m", "http://d")));
        assert!(!already_published(&[], &publish("m", "http://c")));
        assert!(!already_published(
            &members,
            &MembershipChange::Promote { id: 7 }
        ));
    }
}

//! etcd's member-list changes on raft: what etcd checks before adding, removing, updating or
//! promoting a member, checked on the leader against raft's effective configuration.

use super::error::{NodeError, Waited};
use super::members::{
    already_published, learner_ready, member_infos, quorum, MemberInfo, MemberNode,
    MembershipChange,
};
use super::network::call;
use super::node::{write_error, RaftNode};
use super::peer::{ChangeMembers, PeerRequest};
use crate::base::{identity, EtcdError, MemberId};
use crate::io::clock;
use crate::io::planted::{planted, PlantedBug};
use openraft::ChangeMembers as RaftChange;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How long a liveness probe of a peer may take before membership checks count it down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The member added (if any) and the member list after a change.
pub type ChangedMembers = (Option<MemberInfo>, Vec<MemberInfo>);

impl RaftNode {
    /// The applied (so committed) members, voters and learners, as etcd lists them. Not
    /// raft's effective membership: a change appended but not yet committed may still be
    /// lost, and an operator who acted on it (stopping a member it no longer lists) could
    /// leave the cluster without quorum.
    pub fn members(&self) -> Vec<MemberInfo> {
        member_infos(self.shared().membership().membership())
    }

    /// Raft's effective membership: the newest configuration in this member's log. On the
    /// leader it holds every committed change, even one a new leader has not applied yet,
    /// and it is what the next change builds on, so changes are checked against it.
    pub fn effective_members(&self) -> Vec<MemberInfo> {
        member_infos(
            self.raft()
                .metrics()
                .borrow()
                .membership_config
                .membership(),
        )
    }

    /// The newest membership in this member's raft storage, read through raft's core once
    /// it has loaded its state (right after a start, metrics may still show none).
    pub async fn stored_members(&self) -> Result<Vec<MemberInfo>, NodeError> {
        let membership = self
            .raft()
            .with_raft_state(|state| state.membership_state.effective().membership().clone())
            .await
            .map_err(|_| NodeError::Stopped)?;
        Ok(member_infos(&membership))
    }

    /// Applies a member-list change through the leader.
    pub async fn change_members(
        &self,
        change: MembershipChange,
    ) -> Result<ChangedMembers, NodeError> {
        self.on_leader(ChangeMembers(change), |ChangeMembers(change)| {
            self.change_members_on_leader(change)
        })
        .await
    }

    pub async fn change_members_on_leader(
        &self,
        change: MembershipChange,
    ) -> Result<ChangedMembers, NodeError> {
        if !self.status().is_leader {
            return Err(NodeError::NotLeader);
        }
        let members = self.effective_members();
        if already_published(&members, &change) {
            return Ok((None, self.members()));
        }
        let (change, added) = self.raft_change(&members, change).await?;
        // Removed voters leave entirely; other changes keep everyone else as they are.
        let retain = !matches!(change, RaftChange::RemoveVoters(_));
        let changed = clock::timeout(
            self.config().request_timeout(),
            self.raft().change_membership(change, retain),
        )
        .await;
        match changed {
            Err(_) => return Err(NodeError::Timeout(Waited::MembershipChange)),
            Ok(Err(error)) => return Err(write_error(error)),
            Ok(Ok(_)) => {}
        }
        Ok((added, self.members()))
    }

    /// The raft change for `change` after etcd's checks, and the member it adds.
    async fn raft_change(
        &self,
        members: &[MemberInfo],
        change: MembershipChange,
    ) -> Result<(RaftChange<u64, MemberNode>, Option<MemberInfo>), EtcdError> {
        let find = |id: MemberId| {
            members
                .iter()
                .find(|member| member.id == id)
                .cloned()
                .ok_or(EtcdError::MemberNotFound)
        };
        let voters = members.iter().filter(|member| !member.is_learner).count();
        let change = match change {
            MembershipChange::Add {
                peer_urls,
                is_learner,
            } => {
                // The ID derives from the peer URLs, so a taken URL is what etcd (whose IDs
                // also hash the time) reports.
                let taken = |member: &MemberInfo| {
                    member
                        .node
                        .peer_urls
                        .iter()
                        .any(|url| peer_urls.contains(url))
                };
                if members.iter().any(taken) && !planted(PlantedBug::MemberAddSkipsPeerUrlCheck) {
                    return Err(EtcdError::PeerUrlExists);
                }
                let id = identity::member_id(&peer_urls, &self.config().cluster_token);
                if members.iter().any(|member| member.id == id) {
                    return Err(EtcdError::MemberExists);
                }
                let node = MemberNode {
                    name: String::new(),
                    peer_urls,
                    client_urls: Vec::new(),
                };
                let added = MemberInfo {
                    id,
                    node: node.clone(),
                    is_learner,
                };
                let learners = members.iter().filter(|member| member.is_learner).count();
                if is_learner && learners + 1 > self.config().learners_max {
                    return Err(EtcdError::TooManyLearners);
                }
                let change = if is_learner {
                    RaftChange::AddNodes(BTreeMap::from([(id, node)]))
                } else {
                    // etcd refuses a voter whose addition would leave too few started
                    // members for a quorum (the new one has not started yet).
                    if self.started_voters(members).await < quorum(voters + 1) {
                        return Err(EtcdError::Unhealthy);
                    }
                    RaftChange::AddVoters(BTreeMap::from([(id, node)]))
                };
                return Ok((change, Some(added)));
            }
            MembershipChange::Remove { id } => {
                if find(id)?.is_learner {
                    RaftChange::RemoveNodes(BTreeSet::from([id]))
                } else {
                    let remaining: Vec<MemberInfo> = members
                        .iter()
                        .filter(|other| other.id != id)
                        .cloned()
                        .collect();
                    if self.started_voters(&remaining).await < quorum(voters - 1) {
                        return Err(EtcdError::NotEnoughStartedMembers);
                    }
                    RaftChange::RemoveVoters(BTreeSet::from([id]))
                }
            }
            MembershipChange::Update { id, peer_urls } => {
                let mut member = find(id)?;
                member.node.peer_urls = peer_urls;
                RaftChange::SetNodes(BTreeMap::from([(id, member.node)]))
            }
            MembershipChange::Publish {
                id,
                name,
                client_urls,
            } => {
                let mut member = find(id)?;
                member.node.name = name;
                member.node.client_urls = client_urls;
                RaftChange::SetNodes(BTreeMap::from([(id, member.node)]))
            }
            MembershipChange::Promote { id } => {
                if !find(id)?.is_learner {
                    return Err(EtcdError::MemberNotLearner);
                }
                let metrics = self.raft().metrics().borrow().clone();
                let matched = metrics
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(&id).cloned().flatten())
                    .map_or(0, |log_id| log_id.index);
                if !learner_ready(matched, metrics.last_log_index.unwrap_or(0)) {
                    return Err(EtcdError::LearnerNotReady);
                }
                RaftChange::AddVoterIds(BTreeSet::from([id]))
            }
        };
        Ok((change, None))
    }

    /// This member plus the voters in `members` that answer a probe now.
    async fn started_voters(&self, members: &[MemberInfo]) -> usize {
        let own_id = self.member_id();
        let probes = members
            .iter()
            .filter(|member| !member.is_learner && member.id != own_id)
            .map(|member| {
                let transport = self.transport().clone();
                let (id, urls) = (member.id, member.node.peer_urls.clone());
                async move {
                    let probe = PeerRequest::ClusterInfo;
                    call(transport.as_ref(), id, &urls, &probe, PROBE_TIMEOUT)
                        .await
                        .is_ok()
                }
            });
        let answered = futures::future::join_all(probes)
            .await
            .into_iter()
            .filter(|alive| *alive)
            .count();
        let self_counts = members
            .iter()
            .any(|member| member.id == own_id && !member.is_learner);
        answered + usize::from(self_counts)
    }
}

//! Elections only when a quorum has lost its leader too: etcd's pre-vote (on by default
//! since 3.5) with its CheckQuorum lease. openraft 0.9 has neither. There, a member that
//! stops hearing from the leader (restarted, cut off for a while, stalled on a slow disk)
//! raises its term when its timer fires, and a leader whose lease ran out grants that vote
//! or steps down on seeing the higher term, while the rest of the cluster still follows it:
//! every write in flight fails with "leader changed" for no reason.
//!
//! So raft's own election timer is off (`enable_elect: false` in `node.rs`) and
//! `campaign_when_leader_silent` campaigns instead, after a randomized election timeout
//! without a leader, and only once voters forming a quorum say they would vote for this
//! member's log and have not heard from a leader for an election timeout themselves (a
//! leader: from no quorum). While it asks, it reports no leader, as etcd's pre-candidate. A
//! pre-vote changes no term and no vote, so asking is harmless. Leadership transfer still
//! campaigns at once (`Campaign`), as etcd's forced campaign does.

use super::network::call;
use super::node::RaftNode;
use super::peer::{PeerRequest, PeerResponse};
use crate::base::MemberId;
use crate::io::clock;
use crate::io::coverage;
use crate::io::runtime::random_bytes;
use openraft::{LogId, ServerState, Vote};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// When this member last received a message from a leader (an append or a snapshot chunk).
#[derive(Debug, Default)]
pub struct LeaderContact {
    /// `clock::monotonic_ms() + 1` of the newest contact; 0 before the first.
    newest_ms_plus_one: AtomicU64,
    /// Set when this member starts asking for pre-votes, cleared by the next contact: it
    /// has no leader then, as etcd's pre-candidate forgets its leader.
    pre_candidate: AtomicBool,
}

impl LeaderContact {
    fn record(&self, at_ms: u64) {
        self.newest_ms_plus_one
            .fetch_max(at_ms + 1, Ordering::Relaxed);
        if self.pre_candidate.swap(false, Ordering::Relaxed) {
            coverage::note_pre_candidate(false);
        }
    }

    /// True from this member's first pre-vote request until a leader is heard from again.
    pub fn is_pre_candidate(&self) -> bool {
        self.pre_candidate.load(Ordering::Relaxed)
    }

    fn newest_ms(&self) -> Option<u64> {
        self.newest_ms_plus_one
            .load(Ordering::Relaxed)
            .checked_sub(1)
    }

    /// True if a leader was heard from less than `window_ms` ago.
    fn within_ms(&self, window_ms: u64) -> bool {
        self.newest_ms()
            .is_some_and(|newest| clock::monotonic_ms().saturating_sub(newest) < window_ms)
    }
}

impl RaftNode {
    /// Notes a message from the leader holding `vote`. It counts from its arrival: a member
    /// whose raft is stalled (a slow fsync) still has a leader, one it cannot answer yet.
    /// Only a leader of this member's term or a newer one counts (raft refuses the rest).
    pub(super) fn heard_from(&self, vote: &Vote<MemberId>) {
        let current = self.raft().metrics().borrow().vote;
        if vote.committed && *vote >= current {
            self.leader_contact().record(clock::monotonic_ms());
        }
    }

    /// Runs until raft stops: waits a randomized election timeout (one to two timeouts, as
    /// etcd draws them) past the newest leader contact, then asks for pre-votes and
    /// campaigns if a quorum would vote.
    pub(super) async fn campaign_when_leader_silent(self) {
        let timeout_ms = self.config().election_timeout_ms;
        let metrics = self.raft().metrics();
        let mut waited_from_ms = clock::monotonic_ms();
        loop {
            let randomized_ms = timeout_ms + u64::from_le_bytes(random_bytes()) % timeout_ms;
            loop {
                let since_ms = self
                    .leader_contact()
                    .newest_ms()
                    .map_or(waited_from_ms, |newest| newest.max(waited_from_ms));
                let now_ms = clock::monotonic_ms();
                if now_ms >= since_ms + randomized_ms {
                    break;
                }
                clock::sleep(Duration::from_millis(since_ms + randomized_ms - now_ms)).await;
                if metrics.has_changed().is_err() {
                    return;
                }
            }
            waited_from_ms = clock::monotonic_ms();
            let (state, is_voter) = {
                let current = metrics.borrow();
                let is_voter = current
                    .membership_config
                    .membership()
                    .voter_ids()
                    .any(|id| id == self.member_id());
                (current.state, is_voter)
            };
            if state == ServerState::Leader || !is_voter || state == ServerState::Shutdown {
                continue;
            }
            self.leader_contact()
                .pre_candidate
                .store(true, Ordering::Relaxed);
            coverage::note_pre_candidate(true);
            if self.pre_vote_granted().await {
                tracing::info!("a quorum granted this member's pre-vote; campaigning");
                if self.raft().trigger().elect().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Asks every other voter for a pre-vote; true if the granting voters and this one form
    /// a quorum of every configuration in force (both halves of a joint one).
    async fn pre_vote_granted(&self) -> bool {
        let last_log_id = self.log().last_log_id();
        let membership = self
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .clone();
        let request = PeerRequest::PreVote { last_log_id };
        let timeout = Duration::from_millis(self.config().election_timeout_ms / 2);
        let asked = self
            .effective_members()
            .into_iter()
            .filter(|member| !member.is_learner && member.id != self.member_id())
            .map(|member| {
                let request = &request;
                async move {
                    let answer = call(
                        self.transport().as_ref(),
                        member.id,
                        &member.node.peer_urls,
                        request,
                        timeout,
                    )
                    .await;
                    matches!(answer, Ok(PeerResponse::PreVote(true))).then_some(member.id)
                }
            });
        let mut granted: BTreeSet<MemberId> = futures::future::join_all(asked)
            .await
            .into_iter()
            .flatten()
            .collect();
        granted.insert(self.member_id());
        tracing::debug!(?granted, "pre-vote answers");
        membership.get_joint_config().iter().all(|voters| {
            voters.iter().filter(|id| granted.contains(id)).count() * 2 > voters.len()
        })
    }

    /// Whether this member would vote for a candidate whose log ends at `last_log_id`: not
    /// while it leads with a quorum's acknowledgement or has heard from a leader within an
    /// election timeout (etcd's lease), and only for a log at least as new as its own.
    pub(super) fn answer_pre_vote(&self, last_log_id: Option<LogId<MemberId>>) -> bool {
        let timeout_ms = self.config().election_timeout_ms;
        let in_lease = {
            let metrics = self.raft().metrics();
            let metrics = metrics.borrow();
            match metrics.state {
                ServerState::Leader => metrics
                    .millis_since_quorum_ack
                    .is_some_and(|millis| millis <= timeout_ms),
                _ => self.leader_contact().within_ms(timeout_ms),
            }
        };
        if in_lease {
            return false;
        }
        last_log_id >= self.log().last_log_id()
    }
}

//! A leader whose disk is full hands leadership to the most up-to-date voter: it cannot
//! make its own log durable, so every write through it would wait for the disk, while a
//! member with room lets the cluster's writes go on. Followers keep replicating from the
//! leader's log in memory meanwhile, so one of them is soon up to date.

use super::node::RaftNode;
use crate::base::MemberId;
use crate::io::clock;
use std::time::Duration;

impl RaftNode {
    /// Checks once per election timeout, until raft stops, whether this member leads with a
    /// full disk, and if so moves leadership to the voter with the most of its log.
    pub async fn step_down_while_disk_full(self) {
        let interval = Duration::from_millis(self.config().election_timeout_ms);
        let metrics = self.raft().metrics();
        loop {
            clock::sleep(interval).await;
            // Closed when raft has shut down.
            if metrics.has_changed().is_err() {
                return;
            }
            if !self.disk_full() || !self.status().is_leader {
                continue;
            }
            let Some(target) = self.most_up_to_date_voter() else {
                continue;
            };
            match self.move_leader(target).await {
                Ok(()) => tracing::warn!(
                    target = %format_args!("{target:x}"),
                    "the disk is full: leadership moved to a member that can write"
                ),
                Err(error) => tracing::warn!(
                    %error,
                    target = %format_args!("{target:x}"),
                    "the disk is full: moving leadership failed (tried again later)"
                ),
            }
        }
    }

    /// The voter other than this member that has replicated the most of its log.
    fn most_up_to_date_voter(&self) -> Option<MemberId> {
        let metrics = self.raft().metrics().borrow().clone();
        let replication = metrics.replication.as_ref()?;
        self.effective_members()
            .into_iter()
            .filter(|member| !member.is_learner && member.id != self.member_id())
            .max_by_key(|member| {
                replication
                    .get(&member.id)
                    .cloned()
                    .flatten()
                    .map_or(0, |id| id.index)
            })
            .map(|member| member.id)
    }
}

//! etcd's MoveLeader: the leader waits until the transferee has its whole log, tells it to
//! campaign, and returns once it sees the transferee lead.

use super::error::NodeError;
use super::members::MemberNode;
use super::node::RaftNode;
use super::peer::Campaign;
use crate::base::{EtcdError, MemberId};
use crate::io::clock::{self, Instant};
use openraft::RaftMetrics;
use tokio::sync::watch;

impl RaftNode {
    /// Moves leadership to voter `target` (this member must lead): the target must have the
    /// leader's whole log, is told to campaign, and wins because its log is up to date.
    pub async fn move_leader(&self, target: MemberId) -> Result<(), NodeError> {
        if !self.status().is_leader {
            return Err(NodeError::NotLeader);
        }
        if target == self.member_id() {
            return Ok(());
        }
        if !self
            .effective_members()
            .iter()
            .any(|member| member.id == target && !member.is_learner)
        {
            return Err(EtcdError::BadLeaderTransferee.into());
        }
        let deadline = clock::now() + self.config().request_timeout();
        let mut metrics = self.raft().metrics();
        loop {
            let (matched, last) = {
                let current = metrics.borrow();
                let matched = current
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(&target).cloned().flatten())
                    .map_or(0, |id| id.index);
                (matched, current.last_log_index.unwrap_or(0))
            };
            if matched >= last {
                break;
            }
            next_metrics_before(&mut metrics, deadline).await?;
        }
        if self.forward(target, Campaign).await.is_err() {
            return Err(EtcdError::LeaderTransferTimeout.into());
        }
        loop {
            if metrics.borrow().current_leader == Some(target) {
                return Ok(());
            }
            next_metrics_before(&mut metrics, deadline).await?;
        }
    }
}

/// Waits for raft's metrics to change. A transfer that outlives `deadline`, or a raft that
/// stopped (its metrics sender is gone, so `changed` returns at once forever), times out;
/// treating the latter as a change would spin without yielding to the clock.
async fn next_metrics_before(
    metrics: &mut watch::Receiver<RaftMetrics<u64, MemberNode>>,
    deadline: Instant,
) -> Result<(), NodeError> {
    let remaining = deadline.saturating_duration_since(clock::now());
    match clock::timeout(remaining, metrics.changed()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(EtcdError::LeaderTransferTimeout.into()),
    }
}

//! Batched read index: concurrent linearizable reads share one leadership confirmation.
//! A read joins the next round to start after it arrived (never one already in flight, whose
//! confirmation may predate the read), so each read still sees every write acknowledged
//! before it began.

use super::error::{NodeError, Waited};
use super::node::RaftNode;
use super::peer::ReadIndex;
use crate::io::clock;
use crate::io::fault_points::{self, FaultPoint};
use crate::io::planted::{planted, PlantedBug};
use openraft::error::{CheckIsLeaderError, RaftError};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;

/// Reads waiting for a round at most; beyond this a read fails fast instead of queueing.
pub const READS_WAITING_MAX: usize = 100_000;

type Waiter = oneshot::Sender<Result<u64, NodeError>>;

#[derive(Default)]
pub struct ReadBatcher {
    state: Mutex<BatchState>,
}

#[derive(Default)]
struct BatchState {
    running: bool,
    waiting: Vec<Waiter>,
}

impl ReadBatcher {
    /// Queues a read. Returns its receiver, and whether the caller must start the rounds.
    pub fn join(&self) -> Result<(oneshot::Receiver<Result<u64, NodeError>>, bool), NodeError> {
        let (sender, receiver) = oneshot::channel();
        let mut state = self.state.lock().unwrap();
        if state.waiting.len() >= READS_WAITING_MAX {
            return Err(NodeError::ReadQueueFull(READS_WAITING_MAX));
        }
        state.waiting.push(sender);
        let start = !std::mem::replace(&mut state.running, true);
        Ok((receiver, start))
    }

    /// Takes the reads for the next round; `None` (and rounds stop) when nobody waits.
    pub fn next_round(&self) -> Option<Vec<Waiter>> {
        let mut state = self.state.lock().unwrap();
        if state.waiting.is_empty() {
            state.running = false;
            return None;
        }
        Some(std::mem::take(&mut state.waiting))
    }
}

pub fn finish_round(waiters: Vec<Waiter>, result: Result<u64, NodeError>) {
    for waiter in waiters {
        let _ = waiter.send(result.clone());
    }
}

impl RaftNode {
    /// Waits until this member has applied everything committed before the call, confirmed
    /// by the current leader (read index), so a read that follows is linearizable.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        let index = self.read_index().await?;
        self.wait_applied(index).await
    }

    /// Waits until this member has applied log index `index`.
    pub async fn wait_applied(&self, index: u64) -> Result<(), NodeError> {
        self.raft()
            .wait(Some(self.config().request_timeout()))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map_err(|_| NodeError::Timeout(Waited::Apply))?;
        Ok(())
    }

    async fn read_index(&self) -> Result<u64, NodeError> {
        if planted(PlantedBug::ReadIndexSkipsQuorum) {
            let metrics = self.raft().metrics().borrow().clone();
            if metrics.state == openraft::ServerState::Leader {
                return Ok(metrics.last_applied.map_or(0, |id| id.index));
            }
        }
        self.join_round(RaftNode::reads, |node| async move {
            node.on_leader(ReadIndex, |ReadIndex| node.read_index_on_leader())
                .await
        })
        .await
    }

    /// Confirms leadership with a quorum and returns the index reads must wait for; fails on
    /// a member that is not the leader. Concurrent callers share one confirmation round, as
    /// linearizable reads do: a keepalive, a lease read or a follower's read index each used
    /// to cost a quorum round of its own.
    pub async fn read_index_on_leader(&self) -> Result<u64, NodeError> {
        self.join_round(RaftNode::leader_reads, |node| async move {
            if fault_points::fires(FaultPoint::ReadIndexRoundDropped) {
                // As a round whose messages were lost: nobody answers until the readers
                // give up.
                let lost_ms = fault_points::delay_ms(node.config().election_timeout_ms);
                clock::sleep(Duration::from_millis(lost_ms)).await;
                return Err(NodeError::Timeout(Waited::ReadIndex));
            }
            node.confirm_leadership().await
        })
        .await
    }

    /// Joins the next round of `batcher`, starting the rounds if none run; each round takes
    /// every caller waiting when it starts and answers them all with one `round`.
    async fn join_round<F, Fut>(
        &self,
        batcher: fn(&RaftNode) -> &ReadBatcher,
        round: F,
    ) -> Result<u64, NodeError>
    where
        F: Fn(RaftNode) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<u64, NodeError>> + Send,
    {
        let (receiver, start_rounds) = batcher(self).join()?;
        if start_rounds {
            let node = self.clone();
            tokio::spawn(async move {
                while let Some(waiters) = batcher(&node).next_round() {
                    let result = round(node.clone()).await;
                    finish_round(waiters, result);
                }
            });
        }
        receiver.await.unwrap_or(Err(NodeError::Stopped))
    }

    /// One leadership confirmation. A round whose confirmations were slow is retried (each
    /// round is a fresh confirmation) until the request timeout; a member that is not leader
    /// fails at once.
    async fn confirm_leadership(&self) -> Result<u64, NodeError> {
        let deadline = clock::now() + self.config().request_timeout();
        let retry_after = Duration::from_millis(self.config().heartbeat_interval_ms);
        loop {
            let remaining = deadline.saturating_duration_since(clock::now());
            match clock::timeout(remaining, self.raft().get_read_log_id()).await {
                Err(_) => return Err(NodeError::Timeout(Waited::ReadIndex)),
                Ok(Ok((read_log_id, _applied))) => return Ok(read_log_id.map_or(0, |id| id.index)),
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => {
                    return Err(NodeError::NotLeader)
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                    if clock::now() >= deadline {
                        return Err(NodeError::Timeout(Waited::ReadIndex));
                    }
                    clock::sleep(retry_after).await;
                }
                Ok(Err(RaftError::Fatal(_))) => return Err(NodeError::Stopped),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arriving_during_a_round_wait_for_the_next() {
        let batcher = ReadBatcher::default();
        let (mut first, start) = batcher.join().unwrap();
        assert!(start);
        let round = batcher.next_round().unwrap();
        let (mut second, start_again) = batcher.join().unwrap();
        assert!(!start_again, "one round runner at a time");
        finish_round(round, Ok(7));
        assert_eq!(first.try_recv().unwrap(), Ok(7));
        assert!(
            second.try_recv().is_err(),
            "the later read was not answered by the earlier round"
        );
        finish_round(batcher.next_round().unwrap(), Ok(9));
        assert_eq!(second.try_recv().unwrap(), Ok(9));
        assert!(batcher.next_round().is_none());
    }
}

//! The leader's side of leases: expiry deadlines, keepalives, and revoking what expired.
//! Followers hold no deadlines; a member that stops being leader forgets all of them, and a
//! new leader starts every lease at no less than its checkpointed remaining TTL, so a leader
//! change never shortens a lease. Expiry becomes a replicated revoke, never a local delete.

use super::error::{NodeError, Waited};
use super::node::RaftNode;
use super::peer::{KeepAlive, TimeToLive};
use crate::apply::{Command, LeaseCheckpoint};
use crate::base::{EtcdError, LeaseId};
use crate::io::clock;
use crate::io::planted::{planted, PlantedBug};
use crate::lease::ExpiryQueue;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the leader looks for expired leases (etcd checks every 500 ms).
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Most revokes proposed per check, so a mass expiry cannot flood the log at once.
const REVOKES_PER_CHECK_MAX: usize = 64;
/// How often a keepalive for an expired lease looks whether its revoke has applied.
const EXPIRED_RENEWAL_POLL: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub struct Lessor {
    node: RaftNode,
    inner: Arc<Mutex<LessorState>>,
}

#[derive(Default)]
struct LessorState {
    queue: ExpiryQueue,
    /// The term in which this member last became leader and loaded deadlines (0 = not leader).
    leading_term: u64,
}

impl Lessor {
    pub fn new(node: RaftNode) -> Self {
        Lessor {
            node,
            inner: Arc::default(),
        }
    }

    /// Runs expiry checks and checkpoints until the node shuts down.
    pub async fn run(self) {
        let mut since_checkpoint = Duration::ZERO;
        loop {
            clock::sleep(EXPIRY_CHECK_INTERVAL).await;
            since_checkpoint += EXPIRY_CHECK_INTERVAL;
            if !self.caught_up_as_new_leader().await {
                continue;
            }
            let expired = self.refresh_and_collect_expired();
            for id in expired {
                // Only as leader, never forwarded: these deadlines are this member's, and a
                // leader that was paused and lost its term must not have the new leader
                // revoke what it renewed meanwhile (a stale leader's own proposal can
                // never commit).
                match self
                    .node
                    .propose_on_leader(Command::LeaseRevoke { id })
                    .await
                {
                    Ok(_) => {
                        self.node.metrics().lease_expired.inc();
                        self.inner.lock().unwrap().queue.remove(id)
                    }
                    Err(NodeError::Stopped) => return,
                    Err(error) => {
                        tracing::debug!(lease = id, %error, "revoking an expired lease failed; retrying");
                        break;
                    }
                }
            }
            if since_checkpoint >= self.node.config().lease_checkpoint_interval {
                since_checkpoint = Duration::ZERO;
                self.checkpoint().await;
            }
        }
    }

    /// A member that has just become leader loads deadlines only from the table as of
    /// everything committed before its term: checkpoints (and the renewals that cleared
    /// them) committed by the previous leader may not be applied here yet, and a deadline
    /// from a stale table can be shorter than what the old leader promised. False while
    /// this member leads in a new term but has not applied that far (retried next check).
    async fn caught_up_as_new_leader(&self) -> bool {
        let status = self.node.status();
        if !status.is_leader || self.inner.lock().unwrap().leading_term == status.term {
            return true;
        }
        match self.node.read_index_on_leader().await {
            Ok(index) => self.node.wait_applied(index).await.is_ok(),
            Err(_) => false,
        }
    }

    /// Syncs deadlines with the applied lease table and returns what expired.
    fn refresh_and_collect_expired(&self) -> Vec<LeaseId> {
        let status = self.node.status();
        let mut state = self.inner.lock().unwrap();
        if !status.is_leader {
            state.queue.clear();
            state.leading_term = 0;
            return Vec::new();
        }
        let now_ms = clock::monotonic_ms();
        let view = self.node.view();
        let leases = view.machine.leases();
        let newly_leading = state.leading_term != status.term;
        state.leading_term = status.term;
        for lease in leases.iter() {
            let remaining_seconds = if lease.remaining_ttl_seconds > 0 {
                lease.remaining_ttl_seconds
            } else {
                lease.ttl_seconds
            };
            if newly_leading || state.queue.remaining_ms(lease.id, now_ms).is_none() {
                state
                    .queue
                    .extend_to(lease.id, now_ms, remaining_seconds as u64 * 1000);
            }
        }
        let stale: Vec<LeaseId> = state
            .queue
            .expired(u64::MAX, usize::MAX)
            .into_iter()
            .filter(|id| !leases.contains(*id))
            .collect();
        for id in stale {
            state.queue.remove(id);
        }
        state.queue.expired(now_ms, REVOKES_PER_CHECK_MAX)
    }

    async fn checkpoint(&self) {
        let checkpoints: Vec<LeaseCheckpoint> = {
            let state = self.inner.lock().unwrap();
            if state.leading_term == 0 {
                return;
            }
            let now_ms = clock::monotonic_ms();
            let view = self.node.view();
            view.machine
                .leases()
                .iter()
                .filter_map(|lease| {
                    let remaining_ms = state.queue.remaining_ms(lease.id, now_ms)?;
                    Some(LeaseCheckpoint {
                        id: lease.id,
                        remaining_ttl_seconds: remaining_ms.div_ceil(1000) as i64,
                    })
                })
                .collect()
        };
        if !checkpoints.is_empty() {
            // Leader only, like revokes: a stale leader's remaining TTLs must not reach the log.
            if let Err(error) = self
                .node
                .propose_on_leader(Command::LeaseCheckpoint { checkpoints })
                .await
            {
                tracing::debug!(%error, "lease checkpoint failed");
            }
        }
    }

    /// A keepalive: the lease gets its whole TTL again. Returns that TTL in seconds.
    /// Only the leader's deadlines count, so a follower hands it to the leader.
    pub async fn keep_alive(&self, id: LeaseId) -> Result<i64, NodeError> {
        self.node
            .on_leader(KeepAlive(id), |KeepAlive(id)| self.keep_alive_on_leader(id))
            .await
    }

    pub async fn keep_alive_on_leader(&self, id: LeaseId) -> Result<i64, NodeError> {
        // Confirm leadership with a quorum (fails on a member that is not the leader), then
        // apply everything committed before renewing, so a just-granted lease is known.
        let index = self.node.read_index_on_leader().await?;
        self.node.wait_applied(index).await?;
        let waited_since_ms = clock::monotonic_ms();
        loop {
            let view = self.node.view();
            let lease = view
                .machine
                .leases()
                .get(id)
                .ok_or(EtcdError::LeaseNotFound)?;
            let now_ms = clock::monotonic_ms();
            let renewed = {
                let mut state = self.inner.lock().unwrap();
                // An expired lease may already have a revoke in flight; renewing it would
                // answer a TTL for a lease about to vanish. As etcd does, wait for the revoke
                // and report the lease gone.
                let expired = state.queue.remaining_ms(id, now_ms) == Some(0);
                if !expired {
                    state
                        .queue
                        .refresh(id, now_ms, lease.ttl_seconds as u64 * 1000);
                }
                !expired
            };
            if renewed {
                if lease.remaining_ttl_seconds > 0
                    && !planted(PlantedBug::RenewalKeepsStaleCheckpoint)
                {
                    // The replicated checkpoint still holds the shorter remaining TTL; a new
                    // leader would restore the lease with it and expire it early. Clear it
                    // before answering, so the renewal survives a leader change.
                    let clear = LeaseCheckpoint {
                        id,
                        remaining_ttl_seconds: 0,
                    };
                    self.node
                        .propose_on_leader(Command::LeaseCheckpoint {
                            checkpoints: vec![clear],
                        })
                        .await?;
                }
                return Ok(lease.ttl_seconds);
            }
            if !self.node.status().is_leader {
                return Err(NodeError::NotLeader);
            }
            if now_ms - waited_since_ms > self.node.config().request_timeout().as_millis() as u64 {
                return Err(NodeError::Timeout(Waited::LeaseRevoke));
            }
            clock::sleep(EXPIRED_RENEWAL_POLL).await;
        }
    }

    /// Remaining seconds of lease `id` and its granted TTL (`None` if it does not exist),
    /// as the leader's deadlines say.
    pub async fn time_to_live(&self, id: LeaseId) -> Result<Option<(i64, i64)>, NodeError> {
        self.node
            .on_leader(TimeToLive(id), |TimeToLive(id)| {
                self.time_to_live_on_leader(id)
            })
            .await
    }

    /// Orders `ids` as etcd lists leases: soonest expiry first (`leasesByExpiry`). Only the
    /// leader knows deadlines; elsewhere every lease expires "never", and the order stays.
    pub fn sort_by_expiry(&self, ids: &mut [LeaseId]) {
        let state = self.inner.lock().unwrap();
        let now_ms = clock::monotonic_ms();
        ids.sort_by_key(|id| state.queue.remaining_ms(*id, now_ms).unwrap_or(u64::MAX));
    }

    pub async fn time_to_live_on_leader(
        &self,
        id: LeaseId,
    ) -> Result<Option<(i64, i64)>, NodeError> {
        let index = self.node.read_index_on_leader().await?;
        self.node.wait_applied(index).await?;
        let view = self.node.view();
        let Some(lease) = view.machine.leases().get(id) else {
            return Ok(None);
        };
        let state = self.inner.lock().unwrap();
        let remaining_seconds = match state.queue.remaining_ms(id, clock::monotonic_ms()) {
            Some(remaining_ms) => (remaining_ms / 1000) as i64,
            None => lease.ttl_seconds,
        };
        Ok(Some((remaining_seconds, lease.ttl_seconds)))
    }
}

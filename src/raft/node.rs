//! One member's raft node: storage opened and recovered, openraft started, and what the api
//! layer needs (propose, read barrier, views, status, membership), with openraft's errors
//! turned into etcd's. Followers forward writes, read-index rounds, lease and membership
//! requests to the leader, one hop at most.

use super::log_store::LogStore;
use super::network::{call, PeerNetwork, PeerTransport};
use super::peer::{Forwarded, MemberInfo, MembershipChange, PeerRequest, PeerResponse};
use super::proposer::Proposer;
use super::read_index::{finish_round, ReadBatcher};
use super::state_machine::{AppliedState, SharedState, StateMachineStore};
use super::TypeConfig;
use crate::apply::{Applied, Command};
use crate::base::{identity, limits, EtcdError, MemberId, Revision};
use crate::io::Disk;
use crate::storage::snapshot::SnapshotStore;
use crate::storage::wal::Wal;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the cluster knows of a member (raft's node type).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberNode {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RaftNodeConfig {
    pub member_id: MemberId,
    pub cluster_token: String,
    pub data_dir: PathBuf,
    /// Members to bootstrap with when the data directory is new; empty when joining an
    /// existing cluster (the leader brings this member up to date).
    pub initial_members: BTreeMap<MemberId, MemberNode>,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    /// `--snapshot-count`: applied entries between snapshots.
    pub snapshot_count: u64,
    pub wal_segment_bytes_max: u64,
    pub lease_ttl_seconds_min: i64,
    pub backend_bytes_quota: u64,
    /// How often the leader checkpoints remaining lease TTLs.
    pub lease_checkpoint_interval: Duration,
    /// Bytes of commands packed into one entry at most (`base::limits::BATCH_BYTES_MAX`).
    pub proposal_batch_bytes_max: usize,
}

impl RaftNodeConfig {
    /// etcd's request timeout: 5 s plus two election timeouts.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(5000 + 2 * self.election_timeout_ms)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub leader: Option<MemberId>,
    pub term: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub is_leader: bool,
    pub is_learner: bool,
}

/// How long a liveness probe of a peer may take before membership checks count it down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// A learner may be promoted once it has 90% of the leader's log, as etcd requires.
const LEARNER_READY_PERCENT: u64 = 90;

#[derive(Clone)]
pub struct RaftNode {
    raft: Raft<TypeConfig>,
    shared: Arc<SharedState>,
    config: Arc<RaftNodeConfig>,
    transport: Arc<dyn PeerTransport>,
    reads: Arc<ReadBatcher>,
    proposer: Proposer,
}

impl RaftNode {
    /// Recovers storage from `config.data_dir` and starts raft.
    pub async fn start(
        config: RaftNodeConfig,
        disk: Arc<dyn Disk>,
        transport: Arc<dyn PeerTransport>,
    ) -> anyhow::Result<RaftNode> {
        let member_dir = config.data_dir.join("member");
        let (wal, records) = Wal::open(
            disk.clone(),
            &member_dir.join("wal"),
            config.wal_segment_bytes_max,
        )?;
        let fresh = records.is_empty();
        let log_store = LogStore::open(wal, records)?;
        let snapshots = SnapshotStore::open(disk, &member_dir.join("snap"))?;
        let (state_machine, shared) = StateMachineStore::open(
            snapshots,
            config.lease_ttl_seconds_min,
            config.backend_bytes_quota,
        )?;
        let raft_config = Config {
            cluster_name: "cairn".to_string(),
            // openraft uses its heartbeat interval as the timeout of every AppendEntries
            // call, and a follower answers only after its fsync: a follower whose fsync takes
            // longer than a heartbeat (100 ms by default) would time out every append and
            // stall replication for good. So openraft gets half an election timeout for
            // that, its own periodic heartbeats are off, and `send_heartbeats` sends them at
            // `--heartbeat-interval` instead.
            heartbeat_interval: replication_timeout_ms(&config),
            enable_heartbeat: false,
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_count),
            // etcd keeps 5000 entries after a snapshot so slow followers catch up from the log.
            max_in_snapshot_log_to_keep: config.snapshot_count.min(5000),
            // Bounded peer messages: snapshot chunks and entry batches.
            snapshot_max_chunk_size: limits::SNAPSHOT_CHUNK_BYTES as u64,
            // openraft's 200 ms default is too short for a 1 MiB chunk on a busy or slow
            // link: the chunk would be resent from the start forever.
            install_snapshot_timeout: config.request_timeout().as_millis() as u64,
            max_payload_entries: limits::APPEND_ENTRIES_MAX as u64,
            ..Config::default()
        };
        let network = PeerNetwork {
            transport: transport.clone(),
        };
        let raft = Raft::new(
            config.member_id,
            Arc::new(raft_config.validate()?),
            network,
            log_store,
            state_machine,
        )
        .await?;
        if fresh && !config.initial_members.is_empty() && !raft.is_initialized().await? {
            raft.initialize(config.initial_members.clone())
                .await
                .map_err(|error| anyhow::anyhow!("bootstrapping raft: {error}"))?;
        }
        // A member that is the only voter needs nobody's vote: campaign now instead of after a
        // randomized election timeout (etcd advances election ticks at start for the same).
        let sole_voter = {
            let metrics = raft.metrics().borrow().clone();
            let voters: Vec<u64> = metrics.membership_config.membership().voter_ids().collect();
            voters == [config.member_id]
        };
        if sole_voter {
            raft.trigger().elect().await?;
        }
        tokio::spawn(send_heartbeats(
            raft.clone(),
            Duration::from_millis(config.heartbeat_interval_ms),
        ));
        tokio::spawn(trigger_snapshots(
            raft.clone(),
            shared.clone(),
            config.snapshot_count,
        ));
        let request_timeout = config.request_timeout();
        let batch_bytes_max = config.proposal_batch_bytes_max;
        Ok(RaftNode {
            raft: raft.clone(),
            shared,
            config: Arc::new(config),
            transport,
            reads: Arc::default(),
            proposer: Proposer::start(
                raft.clone(),
                batch_bytes_max,
                move |raft, command| async move {
                    match tokio::time::timeout(request_timeout, raft.client_write(command)).await {
                        Err(_) => Err(EtcdError::Timeout),
                        Ok(Ok(response)) => Ok(response.data),
                        Ok(Err(error)) => Err(write_error(error)),
                    }
                },
            ),
        })
    }

    pub(super) fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    pub fn member_id(&self) -> MemberId {
        self.config.member_id
    }

    pub fn config(&self) -> &RaftNodeConfig {
        &self.config
    }

    pub fn transport(&self) -> &Arc<dyn PeerTransport> {
        &self.transport
    }

    /// Replicates `command` (through the leader) and returns what applying it produced.
    pub async fn propose(&self, command: Command) -> Result<Applied, EtcdError> {
        match self.leader()? {
            None => self.propose_on_leader(command).await,
            Some(leader) => match self.forward(leader, Forwarded::Propose(command)).await? {
                PeerResponse::Proposed(result) => result,
                other => Err(unexpected(other)),
            },
        }
    }

    /// `Ok(None)` when this member leads, `Ok(Some(leader))` when another does.
    fn leader(&self) -> Result<Option<MemberId>, EtcdError> {
        let status = self.status();
        match status.leader {
            _ if status.is_leader => Ok(None),
            Some(leader) if leader != self.config.member_id => Ok(Some(leader)),
            _ => Err(EtcdError::NoLeader),
        }
    }

    /// Proposes here, failing if this member is not the leader.
    pub async fn propose_on_leader(&self, command: Command) -> Result<Applied, EtcdError> {
        if !self.status().is_leader {
            return Err(EtcdError::NotLeader);
        }
        self.proposer.propose(command).await
    }

    /// Sends a request to the leader and returns its answer.
    async fn forward(
        &self,
        leader: MemberId,
        request: Forwarded,
    ) -> Result<PeerResponse, EtcdError> {
        // The leader is in raft's effective membership even before this member applied it.
        let peer_urls = self
            .effective_members()
            .into_iter()
            .find(|member| member.id == leader)
            .map(|member| member.node.peer_urls)
            .ok_or(EtcdError::NoLeader)?;
        call(self.transport.as_ref(), leader, &peer_urls, &PeerRequest::Forward(request), self.config.request_timeout()).await.map_err(|error| {
            tracing::debug!(leader = format_args!("{leader:x}"), %error, "forwarding to the leader failed");
            EtcdError::Timeout
        })
    }

    /// Waits until this member has applied everything committed before the call, confirmed
    /// by the current leader (read index), so a read that follows is linearizable.
    pub async fn read_barrier(&self) -> Result<(), EtcdError> {
        let index = self.read_index().await?;
        self.wait_applied(index).await
    }

    /// Waits until this member has applied log index `index`.
    pub async fn wait_applied(&self, index: u64) -> Result<(), EtcdError> {
        self.raft
            .wait(Some(self.config.request_timeout()))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map_err(|_| EtcdError::Timeout)?;
        Ok(())
    }

    async fn read_index(&self) -> Result<u64, EtcdError> {
        let (receiver, start_rounds) = self.reads.join()?;
        if start_rounds {
            let node = self.clone();
            tokio::spawn(async move {
                while let Some(waiters) = node.reads.next_round() {
                    let result = node.read_index_round().await;
                    finish_round(waiters, result);
                }
            });
        }
        receiver.await.unwrap_or(Err(EtcdError::Stopped))
    }

    async fn read_index_round(&self) -> Result<u64, EtcdError> {
        match self.leader()? {
            None => self.read_index_on_leader().await,
            Some(leader) => match self.forward(leader, Forwarded::ReadIndex).await? {
                PeerResponse::ReadIndex(result) => result,
                other => Err(unexpected(other)),
            },
        }
    }

    /// Confirms leadership with a quorum and returns the index reads must wait for. A round
    /// whose confirmations were slow is retried (each round is a fresh confirmation) until
    /// the request timeout; a member that is not leader fails at once.
    pub async fn read_index_on_leader(&self) -> Result<u64, EtcdError> {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout();
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(remaining, self.raft.get_read_log_id()).await {
                Err(_) => return Err(EtcdError::Timeout),
                Ok(Ok((read_log_id, _applied))) => return Ok(read_log_id.map_or(0, |id| id.index)),
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_)))) => {
                    return Err(EtcdError::NotLeader)
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(EtcdError::Timeout);
                    }
                    tokio::time::sleep(Duration::from_millis(self.config.heartbeat_interval_ms))
                        .await;
                }
                Ok(Err(RaftError::Fatal(_))) => return Err(EtcdError::Stopped),
            }
        }
    }

    /// Sends a lease request to the leader (used by the lessor on followers).
    pub async fn forward_to_leader(&self, request: Forwarded) -> Result<PeerResponse, EtcdError> {
        match self.leader()? {
            None => Err(EtcdError::NotLeader),
            Some(leader) => self.forward(leader, request).await,
        }
    }

    /// The applied state now (an O(1) copy).
    pub fn view(&self) -> AppliedState {
        self.shared.view()
    }

    pub fn subscribe_revision(&self) -> watch::Receiver<Revision> {
        self.shared.subscribe_revision()
    }

    /// The store revision after the latest apply.
    pub fn current_revision(&self) -> Revision {
        self.shared.revision()
    }

    pub fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let is_learner = membership.get_node(&self.config.member_id).is_some()
            && !membership.voter_ids().any(|id| id == self.config.member_id);
        NodeStatus {
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            is_leader: metrics.state == ServerState::Leader,
            is_learner,
        }
    }

    /// The applied (so committed) members, voters and learners, as etcd lists them. Not
    /// raft's effective membership: a change appended but not yet committed may still be
    /// lost, and an operator who acted on it (stopping a member it no longer lists) could
    /// leave the cluster without quorum.
    pub fn members(&self) -> Vec<MemberInfo> {
        member_infos(self.shared.membership().membership())
    }

    /// Raft's effective membership: the newest configuration in this member's log. On the
    /// leader it holds every committed change, even one a new leader has not applied yet,
    /// and it is what the next change builds on, so changes are checked against it.
    pub fn effective_members(&self) -> Vec<MemberInfo> {
        member_infos(self.raft.metrics().borrow().membership_config.membership())
    }

    /// Applies a member-list change through the leader; returns the member it concerns
    /// (for an add) and the member list afterwards.
    pub async fn change_members(
        &self,
        change: MembershipChange,
    ) -> Result<(Option<MemberInfo>, Vec<MemberInfo>), EtcdError> {
        match self.leader()? {
            None => self.change_members_on_leader(change).await,
            Some(leader) => match self
                .forward(leader, Forwarded::ChangeMembers(change))
                .await?
            {
                PeerResponse::MembersChanged(result) => result,
                other => Err(unexpected(other)),
            },
        }
    }

    pub async fn change_members_on_leader(
        &self,
        change: MembershipChange,
    ) -> Result<(Option<MemberInfo>, Vec<MemberInfo>), EtcdError> {
        if !self.status().is_leader {
            return Err(EtcdError::NotLeader);
        }
        let members = self.effective_members();
        let find = |id: MemberId| {
            members
                .iter()
                .find(|member| member.id == id)
                .cloned()
                .ok_or(EtcdError::MemberNotFound)
        };
        let voters = members.iter().filter(|member| !member.is_learner).count();
        let mut added = None;
        let change: ChangeMembers<u64, MemberNode> = match change {
            MembershipChange::Add {
                peer_urls,
                is_learner,
            } => {
                let id = identity::member_id(&peer_urls, &self.config.cluster_token);
                if members.iter().any(|member| member.id == id) {
                    return Err(EtcdError::MemberExists);
                }
                if members.iter().any(|member| {
                    member
                        .node
                        .peer_urls
                        .iter()
                        .any(|url| peer_urls.contains(url))
                }) {
                    return Err(EtcdError::PeerUrlExists);
                }
                let node = MemberNode {
                    name: String::new(),
                    peer_urls,
                    client_urls: Vec::new(),
                };
                added = Some(MemberInfo {
                    id,
                    node: node.clone(),
                    is_learner,
                });
                if is_learner {
                    ChangeMembers::AddNodes(BTreeMap::from([(id, node)]))
                } else {
                    // etcd refuses a voter whose addition would leave too few started
                    // members for a quorum (the new one has not started yet).
                    if self.started_voters(&members).await < quorum(voters + 1) {
                        return Err(EtcdError::Unhealthy);
                    }
                    ChangeMembers::AddVoters(BTreeMap::from([(id, node)]))
                }
            }
            MembershipChange::Remove { id } => {
                let member = find(id)?;
                if member.is_learner {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                } else {
                    let remaining: Vec<MemberInfo> = members
                        .iter()
                        .filter(|other| other.id != id)
                        .cloned()
                        .collect();
                    if self.started_voters(&remaining).await < quorum(voters - 1) {
                        return Err(EtcdError::NotEnoughStartedMembers);
                    }
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                }
            }
            MembershipChange::Update { id, peer_urls } => {
                let mut member = find(id)?;
                member.node.peer_urls = peer_urls;
                ChangeMembers::SetNodes(BTreeMap::from([(id, member.node)]))
            }
            MembershipChange::Publish {
                id,
                name,
                client_urls,
            } => {
                let mut member = find(id)?;
                member.node.name = name;
                member.node.client_urls = client_urls;
                ChangeMembers::SetNodes(BTreeMap::from([(id, member.node)]))
            }
            MembershipChange::Promote { id } => {
                if !find(id)?.is_learner {
                    return Err(EtcdError::MemberNotLearner);
                }
                let metrics = self.raft.metrics().borrow().clone();
                let matched = metrics
                    .replication
                    .as_ref()
                    .and_then(|replication| replication.get(&id).cloned().flatten())
                    .map_or(0, |log_id| log_id.index);
                let leader_last = metrics.last_log_index.unwrap_or(0);
                if matched * 100 < leader_last * LEARNER_READY_PERCENT {
                    return Err(EtcdError::LearnerNotReady);
                }
                ChangeMembers::AddVoterIds(BTreeSet::from([id]))
            }
        };
        // Removed voters leave entirely; other changes keep everyone else as they are.
        let retain = !matches!(change, ChangeMembers::RemoveVoters(_));
        let changed = tokio::time::timeout(
            self.config.request_timeout(),
            self.raft.change_membership(change, retain),
        )
        .await;
        match changed {
            Err(_) => return Err(EtcdError::Timeout),
            Ok(Err(error)) => return Err(write_error(error)),
            Ok(Ok(_)) => {}
        }
        Ok((added, self.members()))
    }

    /// Moves leadership to voter `target` (etcd's MoveLeader; this member must lead): the
    /// target must have the leader's whole log, is told to campaign, and wins because its
    /// log is up to date; the call returns once this member sees it lead.
    pub async fn move_leader(&self, target: MemberId) -> Result<(), EtcdError> {
        let status = self.status();
        if !status.is_leader {
            return Err(EtcdError::NotLeader);
        }
        if target == self.config.member_id {
            return Ok(());
        }
        let member = self
            .effective_members()
            .into_iter()
            .find(|member| member.id == target && !member.is_learner)
            .ok_or(EtcdError::BadLeaderTransferee)?;
        let deadline = tokio::time::Instant::now() + self.config.request_timeout();
        let mut metrics = self.raft.metrics();
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
        let request = PeerRequest::Forward(Forwarded::Campaign);
        match call(
            self.transport.as_ref(),
            target,
            &member.node.peer_urls,
            &request,
            self.config.request_timeout(),
        )
        .await
        {
            Ok(PeerResponse::Campaigning(Ok(()))) => {}
            _ => return Err(EtcdError::LeaderTransferTimeout),
        }
        loop {
            if metrics.borrow().current_leader == Some(target) {
                return Ok(());
            }
            next_metrics_before(&mut metrics, deadline).await?;
        }
    }

    /// This member plus the voters in `members` that answer a probe now.
    async fn started_voters(&self, members: &[MemberInfo]) -> usize {
        let probes = members
            .iter()
            .filter(|member| !member.is_learner && member.id != self.config.member_id)
            .map(|member| {
                let transport = self.transport.clone();
                let (id, urls) = (member.id, member.node.peer_urls.clone());
                async move {
                    call(
                        transport.as_ref(),
                        id,
                        &urls,
                        &PeerRequest::ClusterInfo,
                        PROBE_TIMEOUT,
                    )
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
            .any(|member| member.id == self.config.member_id && !member.is_learner);
        answered + usize::from(self_counts)
    }

    /// Resolves when this member's leadership state changes.
    pub fn metrics(&self) -> watch::Receiver<openraft::RaftMetrics<u64, MemberNode>> {
        self.raft.metrics()
    }

    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "raft shutdown");
        }
    }
}

fn member_infos(membership: &openraft::Membership<u64, MemberNode>) -> Vec<MemberInfo> {
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

fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

fn write_error(error: RaftError<u64, ClientWriteError<u64, MemberNode>>) -> EtcdError {
    match error {
        // The leader changed while the request was in flight.
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => EtcdError::LeaderChanged,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(error)) => {
            tracing::info!(%error, "membership change refused");
            EtcdError::Unhealthy
        }
        RaftError::Fatal(error) => {
            tracing::error!(%error, "raft stopped");
            EtcdError::Stopped
        }
    }
}

fn unexpected(response: PeerResponse) -> EtcdError {
    tracing::warn!(?response, "unexpected answer from the leader");
    EtcdError::Timeout
}

/// How long one AppendEntries call may take: a slow fsync on the follower plus a round trip.
/// Half an election timeout: a follower slower than that cannot keep a leader anyway.
fn replication_timeout_ms(config: &RaftNodeConfig) -> u64 {
    (config.election_timeout_ms / 2).max(config.heartbeat_interval_ms)
}

/// A leader's heartbeats at `--heartbeat-interval` (openraft's own are off, see `start`).
async fn send_heartbeats(raft: Raft<TypeConfig>, interval: Duration) {
    let mut metrics = raft.metrics();
    loop {
        let is_leader = metrics.borrow().state == ServerState::Leader;
        if is_leader {
            if raft.trigger().heartbeat().await.is_err() {
                return;
            }
            tokio::time::sleep(interval).await;
        } else if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// How often applied requests are compared with `--snapshot-count`.
const SNAPSHOT_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Starts a snapshot every `snapshot_count` applied requests, as etcd counts them (openraft's
/// own policy counts log entries, and one entry may carry a whole batch of requests).
async fn trigger_snapshots(raft: Raft<TypeConfig>, shared: Arc<SharedState>, snapshot_count: u64) {
    loop {
        tokio::time::sleep(SNAPSHOT_CHECK_INTERVAL).await;
        if shared.commands_since_snapshot() >= snapshot_count {
            shared.snapshot_started();
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}

/// Waits for raft's metrics to change. A transfer that outlives `deadline`, or a raft that
/// stopped (its metrics sender is gone, so `changed` returns at once forever), times out;
/// treating the latter as a change would spin without yielding to the clock.
async fn next_metrics_before(
    metrics: &mut tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, MemberNode>>,
    deadline: tokio::time::Instant,
) -> Result<(), EtcdError> {
    // madsim's time module has no `timeout_at`.
    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
    match tokio::time::timeout(remaining, metrics.changed()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(EtcdError::LeaderTransferTimeout),
    }
}

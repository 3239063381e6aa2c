//! One member's raft node: storage opened and recovered, openraft started, and what the api
//! layer needs (propose, read barrier, views, status, membership), with openraft's errors
//! turned into etcd's. Followers forward writes, read-index rounds, lease and membership
//! requests to the leader, one hop at most.

use super::error::{NodeError, StartError, Waited};
use super::log_store::{LogReader, LogStore};
use super::members::MemberNode;
use super::network::{PeerNetwork, PeerTransport};
use super::peer::Propose;
use super::pre_vote::LeaderContact;
use super::proposer::Proposer;
use super::read_index::ReadBatcher;
use super::state_machine::{AppliedState, SharedState, StateMachineStore};
use super::types::TypeConfig;
use crate::apply::{Alarm, AlarmKind, Applied, Command};
use crate::base::metrics::{GaugeGuard, Metrics};
use crate::base::{limits, EtcdError, MemberId, Revision};
use crate::io::fault_points::{self, FaultPoint};
use crate::io::{clock, Disk};
use crate::storage::snapshot::SnapshotStore;
use crate::storage::wal::Wal;
use crate::storage::{DataDir, DiskSpace};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, Raft, RaftMetrics, ServerState, SnapshotPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct RaftNodeConfig {
    pub member_id: MemberId,
    pub cluster_token: String,
    pub data_dir: DataDir,
    /// Members to bootstrap with when the data directory is new; empty when joining an
    /// existing cluster (the leader brings this member up to date).
    pub initial_members: BTreeMap<MemberId, MemberNode>,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    /// `--snapshot-count`: applied entries between snapshots.
    pub snapshot_count: u64,
    pub wal_segment_bytes_max: u64,
    /// `--disk-reserve-bytes`: room set aside for raft when the disk fills.
    pub disk_reserve_bytes: u64,
    pub lease_ttl_seconds_min: i64,
    pub backend_bytes_quota: u64,
    /// How often the leader checkpoints remaining lease TTLs.
    pub lease_checkpoint_interval: Duration,
    /// Bytes of commands packed into one entry at most (`base::limits::BATCH_BYTES_MAX`).
    pub proposal_batch_bytes_max: usize,
    /// Bytes of one snapshot chunk at most (`base::limits::SNAPSHOT_CHUNK_BYTES`).
    pub snapshot_chunk_bytes_max: usize,
    /// `--max-learners`: learners the membership may hold at once.
    pub learners_max: usize,
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

#[derive(Clone)]
pub struct RaftNode {
    raft: Raft<TypeConfig>,
    shared: Arc<SharedState>,
    config: Arc<RaftNodeConfig>,
    transport: Arc<dyn PeerTransport>,
    /// Linearizable reads from anywhere: rounds that ask whoever leads.
    reads: Arc<ReadBatcher>,
    /// Confirmations that this member still leads (keepalives, lease reads, read indexes
    /// followers ask for): rounds that never ask another member.
    leader_reads: Arc<ReadBatcher>,
    proposer: Proposer,
    disk: Arc<dyn Disk>,
    /// Whether a write of this member's is waiting for room on a full disk.
    space: DiskSpace,
    /// True while this member has had no leader for `LEADERLESS_ELECTIONS_MAX` election
    /// timeouts.
    leader_lost: watch::Receiver<bool>,
    /// When a leader was last heard from (pre-votes, `pre_vote.rs`).
    leader_contact: Arc<LeaderContact>,
    /// The raft log as this member holds it (its last entry's id, for pre-votes).
    log: LogReader,
}

impl RaftNode {
    /// Recovers storage from `config.data_dir` and starts raft.
    pub async fn start(
        config: RaftNodeConfig,
        disk: Arc<dyn Disk>,
        transport: Arc<dyn PeerTransport>,
        metrics: Arc<Metrics>,
    ) -> Result<RaftNode, StartError> {
        let (mut wal, records) = Wal::open(
            disk.clone(),
            &config.data_dir.wal(),
            config.wal_segment_bytes_max,
        )?;
        let fresh = records.is_empty();
        wal.record_fsyncs(metrics.clone());
        let space = DiskSpace::with_reserve(
            disk.clone(),
            config.data_dir.space_reserve(),
            config.disk_reserve_bytes,
        );
        let log_store = LogStore::open(wal, records, metrics.clone(), space.clone())?;
        let log = log_store.reader();
        let snapshots = SnapshotStore::open(disk.clone(), &config.data_dir.snapshots())?;
        let (state_machine, shared) = StateMachineStore::open(
            snapshots,
            log_store.first_index(),
            config.lease_ttl_seconds_min,
            config.backend_bytes_quota,
            metrics.clone(),
            space.clone(),
        )?;
        let network = PeerNetwork {
            transport: transport.clone(),
        };
        let raft = Raft::new(
            config.member_id,
            Arc::new(openraft_config(&config).validate()?),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(raft_error)?;
        let bootstrap = fresh && !config.initial_members.is_empty();
        if bootstrap && !raft.is_initialized().await.map_err(raft_error)? {
            raft.initialize(config.initial_members.clone())
                .await
                .map_err(|error| StartError::Raft(format!("bootstrapping: {error}")))?;
        }
        // A member that is the only voter needs nobody's vote: campaign now instead of after a
        // randomized election timeout (etcd advances election ticks at start for the same).
        let sole_voter = {
            let metrics = raft.metrics().borrow().clone();
            let voters: Vec<u64> = metrics.membership_config.membership().voter_ids().collect();
            voters == [config.member_id]
        };
        if sole_voter {
            raft.trigger().elect().await.map_err(raft_error)?;
        }
        tokio::spawn(send_heartbeats(
            raft.clone(),
            Duration::from_millis(config.heartbeat_interval_ms),
        ));
        tokio::spawn(count_leader_changes(raft.clone(), metrics));
        let (leader_lost_sender, leader_lost) = watch::channel(false);
        let leader_contact = Arc::new(LeaderContact::default());
        tokio::spawn(monitor_leader(
            raft.clone(),
            leader_contact.clone(),
            Duration::from_millis(config.election_timeout_ms),
            leader_lost_sender,
        ));
        tokio::spawn(restore_disk_reserve(raft.clone(), space.clone()));
        tokio::spawn(trigger_snapshots(
            raft.clone(),
            shared.clone(),
            config.snapshot_count,
        ));
        let request_timeout = config.request_timeout();
        let batch_bytes_max = config.proposal_batch_bytes_max;
        let node = RaftNode {
            raft: raft.clone(),
            shared,
            config: Arc::new(config),
            transport,
            disk,
            space,
            reads: Arc::default(),
            leader_reads: Arc::default(),
            leader_lost,
            proposer: Proposer::start(
                raft.clone(),
                batch_bytes_max,
                move |raft, command| async move {
                    match clock::timeout(request_timeout, raft.client_write(command)).await {
                        Err(_) => Err(NodeError::Timeout(Waited::Commit)),
                        Ok(Ok(response)) => Ok(response.data),
                        Ok(Err(error)) => Err(write_error(error)),
                    }
                },
            ),
            leader_contact,
            log,
        };
        tokio::spawn(node.clone().campaign_when_leader_silent());
        Ok(node)
    }

    pub(super) fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    pub(super) fn shared(&self) -> &SharedState {
        &self.shared
    }

    pub(super) fn reads(&self) -> &ReadBatcher {
        &self.reads
    }

    pub(super) fn leader_reads(&self) -> &ReadBatcher {
        &self.leader_reads
    }

    pub(super) fn log(&self) -> &LogReader {
        &self.log
    }

    pub(super) fn leader_contact(&self) -> &LeaderContact {
        &self.leader_contact
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
    pub async fn propose(&self, command: Command) -> Result<Applied, NodeError> {
        self.on_leader(Propose(command), |Propose(command)| {
            self.propose_on_leader(command)
        })
        .await
    }

    /// Proposes here, failing if this member is not the leader.
    pub async fn propose_on_leader(&self, command: Command) -> Result<Applied, NodeError> {
        if !self.status().is_leader {
            return Err(NodeError::NotLeader);
        }
        let metrics = self.metrics();
        let _pending = GaugeGuard::new(&metrics.proposals_pending);
        let result = self.proposer.propose(command).await;
        if result.is_err() {
            metrics.proposals_failed.inc();
        }
        result
    }

    /// True once this member has had no leader for 3 election timeouts, false again when it
    /// has one: streams opened with `hasleader` end then, as etcd's `monitorLeader` ends
    /// them, so their clients fail over to a member that has a leader.
    pub fn subscribe_leader_lost(&self) -> watch::Receiver<bool> {
        self.leader_lost.clone()
    }

    /// What this member records about itself (`/metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Bytes this member's raft storage (WAL and snapshots) takes on disk.
    pub fn storage_bytes(&self) -> u64 {
        let data_dir = &self.config.data_dir;
        self.disk.used_bytes(&data_dir.wal()) + self.disk.used_bytes(&data_dir.snapshots())
    }

    /// The applied state now (an O(1) copy).
    pub fn view(&self) -> AppliedState {
        self.shared.view()
    }

    /// True while this member's disk is full: a WAL or snapshot write waits for room, and
    /// this member refuses writes with NOSPACE (see `alarms`).
    pub fn disk_full(&self) -> bool {
        self.space.is_full()
    }

    /// The cluster's alarms and this member's own: NOSPACE while its disk is full, which it
    /// cannot write through raft then (its log is what is full), and which ends by itself
    /// once the disk has room.
    pub fn alarms(&self) -> Vec<Alarm> {
        let mut alarms: Vec<Alarm> = self.view().machine.alarms().iter().copied().collect();
        let local = Alarm {
            member_id: self.config.member_id,
            kind: AlarmKind::NoSpace,
        };
        if self.disk_full() && !alarms.contains(&local) {
            alarms.push(local);
        }
        alarms
    }

    pub fn has_alarm(&self, kind: AlarmKind) -> bool {
        self.alarms().iter().any(|alarm| alarm.kind == kind)
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
        let quorum_lost = quorum_lost(&metrics, self.config.election_timeout_ms);
        NodeStatus {
            leader: effective_leader(
                &metrics,
                &self.leader_contact,
                self.config.election_timeout_ms,
            ),
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            is_leader: metrics.state == ServerState::Leader && !quorum_lost,
            is_learner,
        }
    }

    pub async fn shutdown(&self) {
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "raft shutdown");
        }
    }
}

pub(super) fn write_error(error: RaftError<u64, ClientWriteError<u64, MemberNode>>) -> NodeError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => NodeError::LeaderChanged,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(error)) => {
            tracing::info!(%error, "membership change refused");
            EtcdError::Unhealthy.into()
        }
        RaftError::Fatal(error) => {
            tracing::error!(%error, "raft stopped");
            NodeError::Stopped
        }
    }
}

/// openraft's configuration for etcd's flags.
fn openraft_config(config: &RaftNodeConfig) -> Config {
    Config {
        cluster_name: "cairn".to_string(),
        // openraft uses its heartbeat interval as the timeout of every AppendEntries
        // call, and a follower answers only after its fsync: a follower whose fsync takes
        // longer than a heartbeat (100 ms by default) would time out every append and
        // stall replication for good. So openraft gets half an election timeout for
        // that, its own periodic heartbeats are off, and `send_heartbeats` sends them at
        // `--heartbeat-interval` instead.
        heartbeat_interval: replication_timeout_ms(config),
        enable_heartbeat: false,
        // Elections are `pre_vote.rs`'s: raft's timer is off. Its lease (how long a member
        // that heard from a leader refuses votes) is `election_timeout_max`: one election
        // timeout, as etcd's.
        enable_elect: false,
        election_timeout_min: config.election_timeout_ms,
        election_timeout_max: config.election_timeout_ms + 1,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_count),
        // etcd keeps 5000 entries after a snapshot so slow followers catch up from the log.
        max_in_snapshot_log_to_keep: config.snapshot_count.min(5000),
        // Bounded peer messages: snapshot chunks and entry batches.
        snapshot_max_chunk_size: config.snapshot_chunk_bytes_max as u64,
        // openraft's 200 ms default is too short for a 1 MiB chunk on a busy or slow
        // link: the chunk would be resent from the start forever.
        install_snapshot_timeout: config.request_timeout().as_millis() as u64,
        max_payload_entries: limits::APPEND_ENTRIES_MAX as u64,
        ..Config::default()
    }
}

fn raft_error(error: impl std::fmt::Display) -> StartError {
    StartError::Raft(error.to_string())
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
            clock::sleep(interval).await;
        } else if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// etcd's leaders step down after an election timeout without hearing from a quorum
/// (CheckQuorum); openraft's stay leader. A leader that has heard from no quorum for that
/// long is reported leaderless, so requests, health checks and `hasleader` streams on an
/// isolated leader see what they see on etcd's.
fn quorum_lost(metrics: &RaftMetrics<u64, MemberNode>, election_timeout_ms: u64) -> bool {
    metrics.state == ServerState::Leader
        && metrics
            .millis_since_quorum_ack
            .is_some_and(|millis| millis > election_timeout_ms)
}

/// The leader this member reports: raft's, unless this member is a leader that lost its
/// quorum (`quorum_lost`) or a follower asking for pre-votes (it heard from no leader for
/// an election timeout).
fn effective_leader(
    metrics: &RaftMetrics<u64, MemberNode>,
    contact: &LeaderContact,
    election_timeout_ms: u64,
) -> Option<MemberId> {
    let silent = metrics.state != ServerState::Leader && contact.is_pre_candidate();
    metrics
        .current_leader
        .filter(|_| !silent && !quorum_lost(metrics, election_timeout_ms))
}

/// Election timeouts without a leader after which `hasleader` streams end (etcd's
/// `maxNoLeaderCnt`).
const LEADERLESS_ELECTIONS_MAX: u32 = 3;

/// Looks for a leader once per election timeout, as etcd's `monitorLeader` does.
async fn monitor_leader(
    raft: Raft<TypeConfig>,
    contact: Arc<LeaderContact>,
    election_timeout: Duration,
    lost: watch::Sender<bool>,
) {
    let metrics = raft.metrics();
    let mut leaderless = 0;
    loop {
        clock::sleep(election_timeout).await;
        // Closed when raft has shut down.
        if metrics.has_changed().is_err() {
            return;
        }
        let timeout_ms = election_timeout.as_millis() as u64;
        let has_leader = effective_leader(&metrics.borrow(), &contact, timeout_ms).is_some();
        if has_leader {
            leaderless = 0;
        } else {
            leaderless += 1;
        }
        let now_lost = leaderless >= LEADERLESS_ELECTIONS_MAX;
        lost.send_if_modified(|was_lost| std::mem::replace(was_lost, now_lost) != now_lost);
    }
}

/// How often a member whose disk filled tries to set its space reserve aside again.
const RESERVE_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// While the space reserve is released, tries to create it again every
/// `RESERVE_RETRY_INTERVAL`: once it fits, the disk has room and writes resume.
async fn restore_disk_reserve(raft: Raft<TypeConfig>, space: DiskSpace) {
    let metrics = raft.metrics();
    loop {
        clock::sleep(RESERVE_RETRY_INTERVAL).await;
        // Closed when raft has shut down.
        if metrics.has_changed().is_err() {
            return;
        }
        if space.reserve_released() {
            let space = space.clone();
            crate::io::blocking(move || space.restore_reserve()).await;
        }
    }
}

/// How often applied requests are compared with `--snapshot-count`.
const SNAPSHOT_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Starts a snapshot every `snapshot_count` applied requests, as etcd counts them (openraft's
/// own policy counts log entries, and one entry may carry a whole batch of requests).
async fn trigger_snapshots(raft: Raft<TypeConfig>, shared: Arc<SharedState>, snapshot_count: u64) {
    loop {
        clock::sleep(SNAPSHOT_CHECK_INTERVAL).await;
        let now = fault_points::fires(FaultPoint::SnapshotNow);
        if now || shared.commands_since_snapshot() >= snapshot_count {
            shared.snapshot_started();
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}

/// Tells the simulator's coverage table this member's role and whether a membership change
/// is in flight (nothing outside the simulator build).
fn note_coverage(seen: &RaftMetrics<u64, MemberNode>) {
    use crate::io::coverage::{self, MemberState};
    coverage::note_role(match seen.state {
        ServerState::Leader => Some(MemberState::Leader),
        ServerState::Follower => Some(MemberState::Follower),
        ServerState::Candidate => Some(MemberState::Candidate),
        ServerState::Learner => Some(MemberState::Learner),
        ServerState::Shutdown => None,
    });
    let joint = seen.membership_config.membership().get_joint_config().len() > 1;
    coverage::note(MemberState::MembershipChanging, joint);
}

/// Counts each change to a known leader (etcd's `leader_changes_seen_total`): a member that
/// loses its leader and then sees the same one again counts that too, as etcd does.
async fn count_leader_changes(raft: Raft<TypeConfig>, metrics: Arc<Metrics>) {
    let mut changes = raft.metrics();
    let mut leader = None;
    loop {
        let (now, term) = {
            let seen = changes.borrow_and_update();
            note_coverage(&seen);
            (seen.current_leader, seen.current_term)
        };
        // Logged as etcd logs "elected leader" and "lost leader": an operator (or a failed
        // test) reads elections from the log.
        match now {
            Some(member) if now != leader => {
                metrics.leader_changes_seen.inc();
                tracing::info!(leader = format_args!("{member:x}"), term, "elected leader");
            }
            None if leader.is_some() => tracing::info!(term, "lost leader"),
            _ => {}
        }
        leader = now;
        if changes.changed().await.is_err() {
            return;
        }
    }
}

//! One member's raft node: storage opened and recovered, openraft started, and the few
//! operations the api layer needs (propose, read barrier, views, status), with openraft's
//! errors turned into etcd's.

use super::log_store::LogStore;
use super::state_machine::{AppliedState, SharedState, StateMachineStore};
use super::{PeerNetwork, TypeConfig};
use crate::apply::{Applied, Command};
use crate::base::{EtcdError, MemberId, Revision};
use crate::io::Disk;
use crate::storage::snapshot::SnapshotStore;
use crate::storage::wal::Wal;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    pub data_dir: PathBuf,
    /// Members to bootstrap with when the data directory is new.
    pub initial_members: BTreeMap<MemberId, MemberNode>,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    /// `--snapshot-count`: applied entries between snapshots.
    pub snapshot_count: u64,
    pub wal_segment_bytes_max: u64,
    pub lease_ttl_seconds_min: i64,
    pub backend_bytes_quota: u64,
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
}

impl RaftNode {
    /// Recovers storage from `config.data_dir` and starts raft.
    pub async fn start(config: RaftNodeConfig, disk: Arc<dyn Disk>) -> anyhow::Result<RaftNode> {
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
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_ms,
            election_timeout_max: config.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_count),
            // etcd keeps 5000 entries after a snapshot so slow followers catch up from the log.
            max_in_snapshot_log_to_keep: config.snapshot_count.min(5000),
            ..Config::default()
        };
        let raft = Raft::new(
            config.member_id,
            Arc::new(raft_config.validate()?),
            PeerNetwork,
            log_store,
            state_machine,
        )
        .await?;
        if fresh && !raft.is_initialized().await? {
            raft.initialize(config.initial_members.clone())
                .await
                .map_err(|error| anyhow::anyhow!("bootstrapping raft: {error}"))?;
        }
        Ok(RaftNode {
            raft,
            shared,
            config: Arc::new(config),
        })
    }

    pub fn member_id(&self) -> MemberId {
        self.config.member_id
    }

    pub fn config(&self) -> &RaftNodeConfig {
        &self.config
    }

    /// Replicates `command` and returns what applying it produced.
    pub async fn propose(&self, command: Command) -> Result<Applied, EtcdError> {
        let write = self.raft.client_write(command);
        match tokio::time::timeout(self.config.request_timeout(), write).await {
            Err(_) => Err(EtcdError::Timeout),
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(if forward.leader_id.is_some() {
                    EtcdError::NotLeader
                } else {
                    EtcdError::NoLeader
                })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(error)))) => {
                Err(EtcdError::Storage(error.to_string()))
            }
            Ok(Err(RaftError::Fatal(error))) => {
                tracing::error!(%error, "raft stopped");
                Err(EtcdError::Stopped)
            }
        }
    }

    /// Waits until this member has applied everything committed before the call and is
    /// still leader (read index), so a read that follows is linearizable.
    pub async fn read_barrier(&self) -> Result<(), EtcdError> {
        match tokio::time::timeout(
            self.config.request_timeout(),
            self.raft.ensure_linearizable(),
        )
        .await
        {
            Err(_) => Err(EtcdError::Timeout),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(_))) => Err(EtcdError::NoLeader),
            Ok(Err(RaftError::Fatal(_))) => Err(EtcdError::Stopped),
        }
    }

    /// The applied state now (an O(1) copy).
    pub fn view(&self) -> AppliedState {
        self.shared.view()
    }

    pub fn subscribe_revision(&self) -> watch::Receiver<Revision> {
        self.shared.subscribe_revision()
    }

    pub fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let is_learner = !metrics
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == self.config.member_id);
        NodeStatus {
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            is_leader: metrics.state == ServerState::Leader,
            is_learner,
        }
    }

    /// Members as raft's applied membership has them, voters and learners.
    pub fn members(&self) -> Vec<(MemberId, MemberNode, bool)> {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let voters: Vec<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| (*id, node.clone(), !voters.contains(id)))
            .collect()
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

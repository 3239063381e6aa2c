//! One member wired together: identity, raft node, lessor, compactor and the gRPC services
//! on every client URL.

pub mod compactor;
pub mod config;
pub mod identity;

pub use config::Config;

use crate::api::pb::etcdserverpb::{
    auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use crate::api::{
    AuthService, ClusterService, Context, KvService, LeaseService, MaintenanceService, WatchLimits,
    WatchService, GRPC_OVERHEAD_BYTES,
};
use crate::base::Limits;
use crate::io::Disk;
use crate::raft::{Lessor, RaftNode, RaftNodeConfig};
use anyhow::{bail, Context as _};
use compactor::CompactionMode;
use config::{parse_duration, split_urls};
use identity::Identity;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A running member.
pub struct Member {
    pub node: RaftNode,
    pub identity: Identity,
    shutdown: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl Member {
    /// Serves until a listener fails or `shutdown` is called.
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        for server in self.servers.drain(..) {
            server
                .await
                .context("client listener task")?
                .context("client listener")?;
        }
        Ok(())
    }

    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for server in self.servers.drain(..) {
            let _ = server.await;
        }
        self.node.shutdown().await;
    }
}

/// Parses `http://host:port` into a socket address (`localhost` resolves to loopback).
pub fn socket_address(url: &str) -> anyhow::Result<SocketAddr> {
    let host_port = url.strip_prefix("http://").ok_or_else(|| {
        anyhow::anyhow!("URL {url:?} must start with http:// (TLS is not supported yet)")
    })?;
    let host_port = host_port.trim_end_matches('/');
    if let Ok(address) = host_port.parse() {
        return Ok(address);
    }
    host_port
        .to_socket_addrs()?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| anyhow::anyhow!("cannot resolve {url:?}"))
}

fn compaction_mode(config: &Config) -> anyhow::Result<CompactionMode> {
    let retention = config.auto_compaction_retention.trim();
    if retention == "0" || retention.is_empty() {
        return Ok(CompactionMode::Disabled);
    }
    Ok(match config.auto_compaction_mode.as_str() {
        "revision" => CompactionMode::Revision(retention.parse().map_err(|_| {
            anyhow::anyhow!("--auto-compaction-retention {retention:?} is not a revision count")
        })?),
        _ => CompactionMode::Periodic(
            parse_duration(retention, Duration::from_secs(3600)).map_err(anyhow::Error::msg)?,
        ),
    })
}

/// Starts a member from flags on `disk`.
pub async fn start(config: &Config, disk: Arc<dyn Disk>) -> anyhow::Result<Member> {
    let data_dir = config.data_dir();
    let member_dir = data_dir.join("member");
    disk.create_dir_all(&member_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let token = config.initial_cluster_token.clone();
    let mut initial_members = identity::parse_initial_cluster(&config.initial_cluster(), &token)
        .map_err(anyhow::Error::msg)?;
    let own_peer_urls = split_urls(&config.initial_advertise_peer_urls);
    let identity = match identity::load(disk.as_ref(), &member_dir)? {
        // A restart: the data directory knows who we are; bootstrap flags are ignored.
        Some(identity) => identity,
        None => {
            if config.initial_cluster_state == "existing" {
                bail!("--initial-cluster-state=existing needs a running cluster to join, which this build of Cairn cannot do yet");
            }
            let member_id = identity::member_id(&own_peer_urls, &token);
            if !initial_members.contains_key(&member_id) {
                bail!("couldn't find local name {:?} in the initial cluster configuration (peer URLs {:?} are not in --initial-cluster)", config.name, own_peer_urls);
            }
            if initial_members.len() > 1 {
                bail!("--initial-cluster names {} members; this build of Cairn serves one-member clusters only", initial_members.len());
            }
            let member_ids: Vec<u64> = initial_members.keys().copied().collect();
            Identity {
                cluster_id: identity::cluster_id(&member_ids, &token),
                member_id,
                name: config.name.clone(),
                token,
            }
        }
    };
    if let Some(own) = initial_members.get_mut(&identity.member_id) {
        own.client_urls = config.advertise_client_urls();
    }
    let limits = Limits {
        request_bytes_max: config.max_request_bytes,
        txn_operations_max: config.max_txn_ops,
        backend_bytes_quota: config.backend_bytes_quota(),
    };
    let raft_config = RaftNodeConfig {
        member_id: identity.member_id,
        data_dir: data_dir.clone(),
        initial_members,
        heartbeat_interval_ms: config.heartbeat_interval,
        election_timeout_ms: config.election_timeout,
        snapshot_count: config.snapshot_count.max(1),
        wal_segment_bytes_max: config.wal_segment_bytes,
        lease_ttl_seconds_min: crate::lease::ttl_seconds_min(config.election_timeout),
        backend_bytes_quota: limits.backend_bytes_quota,
    };
    let node = RaftNode::start(raft_config, disk.clone())
        .await
        .with_context(|| {
            format!(
                "starting member {:?} in {}",
                config.name,
                data_dir.display()
            )
        })?;
    // Saved only once raft storage exists, so an interrupted first start simply starts over.
    identity::save(disk.as_ref(), &member_dir, &identity)?;
    let lessor = Lessor::new(node.clone());
    tokio::spawn(lessor.clone().run());
    tokio::spawn(compactor::run(node.clone(), compaction_mode(config)?));
    let watch = WatchLimits {
        watchers_per_stream_max: config.watchers_per_stream_max,
        progress_notify_interval: parse_duration(
            &config.watch_progress_notify_interval,
            Duration::from_secs(1),
        )
        .map_err(anyhow::Error::msg)?
        .max(Duration::from_millis(100)),
        ..WatchLimits::default()
    };
    let context = Context {
        node: node.clone(),
        lessor,
        cluster_id: identity.cluster_id,
        limits,
        disk,
        data_dir,
        watch,
    };
    let (shutdown, shutdown_signal) = watch::channel(false);
    let mut servers = Vec::new();
    for url in split_urls(&config.listen_client_urls) {
        let address = socket_address(&url)?;
        let message_bytes_max = limits.request_bytes_max + GRPC_OVERHEAD_BYTES;
        let router = tonic::transport::Server::builder()
            .add_service(
                KvServer::new(KvService::new(context.clone()))
                    .max_decoding_message_size(message_bytes_max),
            )
            .add_service(
                WatchServer::new(WatchService::new(context.clone()))
                    .max_decoding_message_size(message_bytes_max),
            )
            .add_service(
                LeaseServer::new(LeaseService::new(context.clone()))
                    .max_decoding_message_size(message_bytes_max),
            )
            .add_service(
                ClusterServer::new(ClusterService::new(context.clone()))
                    .max_decoding_message_size(message_bytes_max),
            )
            .add_service(
                MaintenanceServer::new(MaintenanceService::new(context.clone()))
                    .max_decoding_message_size(message_bytes_max),
            )
            .add_service(
                AuthServer::new(AuthService::new(context.clone()))
                    .max_decoding_message_size(message_bytes_max),
            );
        let mut stop = shutdown_signal.clone();
        servers.push(tokio::spawn(router.serve_with_shutdown(
            address,
            async move {
                let _ = stop.wait_for(|stopping| *stopping).await;
            },
        )));
        tracing::info!(%url, "serving client requests");
    }
    tracing::info!(name = %identity.name, member_id = format_args!("{:x}", identity.member_id), cluster_id = format_args!("{:x}", identity.cluster_id), "ready to serve client requests");
    Ok(Member {
        node,
        identity,
        shutdown,
        servers,
    })
}

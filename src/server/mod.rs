//! One member wired together: identity, raft node, lessor, compactor, and the gRPC services
//! on every client and peer URL.

mod alarms;
mod bootstrap;
pub mod compactor;
pub mod config;
mod config_file;
mod corruption;
mod error;
mod etcd_flags;
#[cfg(not(madsim))]
mod grpc_status;
#[cfg(not(madsim))]
mod http;
pub mod identity;
mod listeners;
pub mod restore;
pub mod tls;

pub use config::Config;
pub use error::{ServeError, StartError};
pub use listeners::socket_address;

use crate::api::metrics::Detail;
use crate::api::{Context, GrpcPeerTransport, PeerService, WatchLimits};
use crate::base::metrics::Metrics;
use crate::base::Limits;
use crate::io::{clock, Disk, PeerConnector};
use crate::raft::{Lessor, MembershipChange, PeerHandler, RaftNode, RaftNodeConfig};
use crate::storage::DataDir;
use compactor::CompactionMode;
use config::{parse_duration, split_urls};
use identity::Identity;
use listeners::Listener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often a member retries recording its name and client URLs in the member list.
const PUBLISH_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// A running member.
pub struct Member {
    pub node: RaftNode,
    pub identity: Identity,
    shutdown: watch::Sender<bool>,
    listeners: Vec<Listener>,
}

impl Member {
    /// Serves until a listener fails or `shutdown` is called.
    /// Serves until any listener ends (which only a failure does) or `shutdown` is called.
    pub async fn wait(&mut self) -> Result<(), ServeError> {
        if self.listeners.is_empty() {
            return Ok(());
        }
        let (ended, _, rest) = futures::future::select_all(self.listeners.drain(..)).await;
        self.listeners = rest;
        ended
            .map_err(|error| ServeError::Task(error.to_string()))?
            .map_err(|error| ServeError::Listener(error.to_string()))
    }

    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for listener in self.listeners.drain(..) {
            let _ = listener.await;
        }
        self.node.shutdown().await;
    }
}

fn compaction_mode(config: &Config) -> Result<CompactionMode, StartError> {
    let retention = config.auto_compaction_retention.trim();
    if retention == "0" || retention.is_empty() {
        return Ok(CompactionMode::Disabled);
    }
    Ok(match config.auto_compaction_mode.as_str() {
        "revision" => CompactionMode::Revision(retention.parse().map_err(|_| {
            StartError::Flag(format!(
                "--auto-compaction-retention {retention:?} is not a revision count"
            ))
        })?),
        _ => CompactionMode::Periodic(
            parse_duration(retention, Duration::from_secs(3600)).map_err(StartError::Flag)?,
        ),
    })
}

/// The token provider `--auth-token` names: simple tokens living `--auth-token-ttl`, or
/// JWTs signed with the key files given (a key that does not load stops the start).
fn token_provider(config: &Config) -> Result<crate::api::Tokens, StartError> {
    match config::jwt_options(&config.auth_token)
        .map_err(|reason| StartError::Flag(format!("--auth-token: {reason}")))?
    {
        None => Ok(crate::api::Tokens::simple(Duration::from_secs(
            config.auth_token_ttl,
        ))),
        Some(options) => crate::io::jwt::JwtKeys::load(&options)
            .map(crate::api::Tokens::jwt)
            .map_err(|reason| StartError::Flag(format!("--auth-token: {reason}"))),
    }
}

/// A data directory without `member/identity` gets its IDs from today's flags. If its raft
/// storage already holds a membership that lacks that ID (the identity file was lost and the
/// flags differ from the first start's), no member would ever talk to this one and it would
/// wait for a leader forever: refuse to start instead, naming the file. A first start that
/// was interrupted before saving the identity finds itself in the membership and goes on.
async fn refuse_a_member_its_stored_membership_lacks(
    node: &RaftNode,
    data_dir: &DataDir,
) -> Result<(), StartError> {
    // An error means raft stopped; starting then fails on its own, with its own cause.
    let members = node.stored_members().await.unwrap_or_default();
    if members.is_empty() || members.iter().any(|member| member.id == node.member_id()) {
        return Ok(());
    }
    node.shutdown().await;
    Err(StartError::Bootstrap(format!(
        "{} is missing and the raft state in {} belongs to a cluster without member {:x} \
         (the ID --initial-advertise-peer-urls and --initial-cluster-token give): restore the \
         identity file, or start this member with an empty --data-dir after `etcdctl member \
         remove`",
        data_dir.identity().display(),
        data_dir.member().display(),
        node.member_id()
    )))
}

/// Records this member's name and client URLs in the replicated member list once it differs
/// (a new member, or one added by `member add`, has neither until it starts), retrying until
/// it sticks. As etcd does, a member serves clients only after this: the member list a client
/// reads then names every member that can answer it.
async fn publish_attributes(node: RaftNode, name: String, client_urls: Vec<String>) {
    loop {
        let listed = node
            .members()
            .into_iter()
            .find(|member| member.id == node.member_id());
        if listed.as_ref().is_some_and(|member| {
            member.node.name == name && member.node.client_urls == client_urls
        }) {
            // Published before (a restart): etcd still publishes through raft on every
            // start, so it serves only once a leader exists. A read barrier asks the same
            // of a leader here without changing the membership; a restarted leader starts
            // as a follower and must first win an election.
            match node.read_barrier().await {
                Ok(()) => return,
                Err(error) => {
                    tracing::debug!(%error, "waiting for a leader before serving clients")
                }
            }
        }
        if listed.is_some() {
            let change = MembershipChange::Publish {
                id: node.member_id(),
                name: name.clone(),
                client_urls: client_urls.clone(),
            };
            if let Err(error) = node.change_members(change).await {
                tracing::debug!(%error, "publishing member attributes; will retry");
            }
        }
        clock::sleep(PUBLISH_RETRY_INTERVAL).await;
    }
}

/// Starts a member from flags on `disk`.
pub async fn start(config: &Config, disk: Arc<dyn Disk>) -> Result<Member, StartError> {
    crate::io::coverage::member_started();
    let data_dir = DataDir::new(config.data_dir());
    disk.create_dir_all(&data_dir.member())
        .map_err(|source| StartError::DataDir {
            what: "creating data directory",
            path: data_dir.root().to_path_buf(),
            source,
        })?;
    let own_peer_urls = split_urls(&config.initial_advertise_peer_urls);
    // Outgoing peer connections come from the address this member listens on for peers, when
    // that is one specific address (so peers and proxies see who is talking).
    let local_address = split_urls(&config.listen_peer_urls)
        .first()
        .and_then(|url| socket_address(url).ok())
        .map(|address| address.ip())
        .filter(|ip| !ip.is_unspecified());
    let member_tls = tls::resolve(config, &data_dir)?;
    let connector = PeerConnector::new(
        local_address,
        crate::api::PEER_CONNECT_TIMEOUT,
        member_tls.dial_peers.clone(),
    );
    let own_id = crate::base::identity::member_id(&own_peer_urls, &config.initial_cluster_token);
    let metrics = Arc::new(Metrics::default());
    let transport = GrpcPeerTransport::new(own_id, connector.clone(), metrics.clone());
    let bootstrap = bootstrap::resolve(config, disk.as_ref(), &data_dir, &transport).await?;
    let identity = bootstrap.identity.clone();
    // A restarted member keeps the ID it was created with, whatever its flags say now.
    let transport = if identity.member_id == own_id {
        transport
    } else {
        GrpcPeerTransport::new(identity.member_id, connector, metrics.clone())
    };
    transport.set_cluster_id(identity.cluster_id);
    let limits = Limits {
        request_bytes_max: config.max_request_bytes,
        txn_operations_max: config.max_txn_ops,
        backend_bytes_quota: config.backend_bytes_quota(),
    };
    let raft_config = RaftNodeConfig {
        member_id: identity.member_id,
        cluster_token: identity.token.clone(),
        data_dir: data_dir.clone(),
        initial_members: bootstrap.initial_members.clone(),
        heartbeat_interval_ms: config.heartbeat_interval,
        election_timeout_ms: config.election_timeout,
        snapshot_count: config.snapshot_count.max(1),
        wal_segment_bytes_max: config.wal_segment_bytes,
        disk_reserve_bytes: config.disk_reserve_bytes,
        lease_ttl_seconds_min: crate::lease::ttl_seconds_min(config.election_timeout),
        backend_bytes_quota: limits.backend_bytes_quota,
        lease_checkpoint_interval: config.lease_checkpoint_interval,
        proposal_batch_bytes_max: config.proposal_batch_bytes,
        snapshot_chunk_bytes_max: config.snapshot_chunk_bytes,
        learners_max: config.max_learners,
    };
    if config.force_new_cluster {
        force_new_cluster(config, &disk, &data_dir, &raft_config, bootstrap.restarted)?;
    }
    let node = RaftNode::start(
        raft_config,
        disk.clone(),
        Arc::new(transport),
        metrics.clone(),
    )
    .await
    .map_err(|source| StartError::Raft {
        name: config.name.clone(),
        data_dir: data_dir.root().to_path_buf(),
        source: Box::new(source),
    })?;
    if !bootstrap.restarted {
        refuse_a_member_its_stored_membership_lacks(&node, &data_dir).await?;
    }
    // Saved only once raft storage exists, so an interrupted first start simply starts over.
    identity::save(disk.as_ref(), &data_dir, &identity)?;
    let lessor = Lessor::new(node.clone());
    tokio::spawn(lessor.clone().run());
    tokio::spawn(node.clone().step_down_while_disk_full());
    tokio::spawn(compactor::run(node.clone(), compaction_mode(config)?));
    start_corruption_checks(config, &node).await?;
    if config.auto_disarm_nospace {
        tokio::spawn(alarms::auto_disarm_nospace(
            node.clone(),
            config.backend_bytes_quota(),
        ));
    }
    let watch = WatchLimits {
        watchers_per_stream_max: config.watchers_per_stream_max,
        events_per_response_max: config.watch_events_per_response_max,
        progress_notify_interval: parse_duration(
            &config.watch_progress_notify_interval,
            Duration::from_secs(1),
        )
        .map_err(StartError::Flag)?
        .max(Duration::from_millis(100)),
        ..WatchLimits::default()
    };
    let context = Context {
        node: node.clone(),
        lessor: lessor.clone(),
        cluster_id: identity.cluster_id,
        limits,
        watch,
        tokens: token_provider(config)?,
        bcrypt_cost: config.bcrypt_cost,
        client_cert_auth: config.tls.client_cert_auth,
        acting_for: crate::api::Caller::anonymous(),
    };
    let (shutdown, stop) = watch::channel(false);
    let mut listeners = Vec::new();
    for url in split_urls(&config.listen_peer_urls) {
        let handler = PeerHandler::new(node.clone(), lessor.clone(), identity.cluster_id);
        listeners.push(
            listeners::serve_peers(
                PeerService::new(
                    handler,
                    identity.cluster_id,
                    identity.member_id,
                    metrics.clone(),
                ),
                socket_address(&url)?,
                listeners::is_https(&url)
                    .then(|| member_tls.peers.clone())
                    .flatten(),
                stop.clone(),
            )
            .await?,
        );
        tracing::info!(%url, "serving peer traffic");
    }
    publish_attributes(
        node.clone(),
        config.name.clone(),
        config.advertise_client_urls(),
    )
    .await;
    let detail = match config.metrics.as_str() {
        "extensive" => Detail::Extensive,
        _ => Detail::Basic,
    };
    let http = listeners::HttpOptions {
        detail,
        gateway: config.enable_grpc_gateway,
        access: Some(std::sync::Arc::new(
            crate::api::http::AccessControl::from_flags(&config.cors, &config.host_whitelist),
        )),
    };
    for url in split_urls(&config.listen_client_urls) {
        let tls = listeners::is_https(&url)
            .then(|| member_tls.clients.clone())
            .flatten();
        let address = socket_address(&url)?;
        listeners.push(
            listeners::serve_clients(&context, address, tls, http.clone(), stop.clone()).await?,
        );
        tracing::info!(%url, "serving client requests");
    }
    for url in split_urls(&config.listen_metrics_urls) {
        let tls = listeners::is_https(&url)
            .then(|| member_tls.clients.clone())
            .flatten();
        let address = socket_address(&url)?;
        if let Some(listener) =
            listeners::serve_metrics(&context, address, tls, detail, stop.clone()).await?
        {
            listeners.push(listener);
            tracing::info!(%url, "serving /metrics and /health");
        }
    }
    tracing::info!(name = %identity.name, member_id = format_args!("{:x}", identity.member_id), cluster_id = format_args!("{:x}", identity.cluster_id), cairn_version = crate::api::CAIRN_VERSION, etcd_version = crate::api::SERVER_VERSION, "ready to serve client requests");
    Ok(Member {
        node,
        identity,
        shutdown,
        listeners,
    })
}

/// The corruption checks the flags ask for: the initial one now (once this member has
/// caught up), the periodic ones as tasks.
async fn start_corruption_checks(config: &Config, node: &RaftNode) -> Result<(), StartError> {
    use corruption::CheckAt;
    let periodic = parse_duration(
        &config.experimental_corrupt_check_time,
        Duration::from_secs(1),
    )
    .map_err(StartError::Flag)?;
    if !periodic.is_zero() {
        tokio::spawn(corruption::run_periodic(
            node.clone(),
            periodic,
            CheckAt::Current,
        ));
    }
    if config.experimental_compact_hash_check_enabled {
        let interval = parse_duration(
            &config.experimental_compact_hash_check_time,
            Duration::from_secs(1),
        )
        .map_err(StartError::Flag)?
        .max(Duration::from_secs(1));
        tokio::spawn(corruption::run_periodic(
            node.clone(),
            interval,
            CheckAt::Compaction,
        ));
    }
    if config.experimental_initial_corrupt_check {
        // Caught up first: what the leader had committed when this member started.
        if let Err(error) = node.read_barrier().await {
            tracing::warn!(%error, "initial corruption check skipped: no leader to catch up with");
            return Ok(());
        }
        corruption::initial_check(node)
            .await
            .map_err(StartError::Bootstrap)?;
    }
    Ok(())
}

/// `--force-new-cluster`: this member's data as a one-member cluster, before raft starts.
fn force_new_cluster(
    config: &Config,
    disk: &Arc<dyn Disk>,
    data_dir: &DataDir,
    raft_config: &RaftNodeConfig,
    restarted: bool,
) -> Result<(), StartError> {
    if !restarted {
        return Err(StartError::Bootstrap(
            "--force-new-cluster needs this member's existing data directory; this one is new"
                .to_string(),
        ));
    }
    let limits = crate::raft::ApplyLimits {
        lease_ttl_seconds_min: raft_config.lease_ttl_seconds_min,
        backend_bytes_quota: raft_config.backend_bytes_quota,
    };
    let dropped = crate::raft::force_new_cluster(
        disk.clone(),
        data_dir,
        raft_config.member_id,
        config.wal_segment_bytes,
        limits,
    )?;
    let dropped: Vec<String> = dropped.iter().map(|id| format!("{id:x}")).collect();
    tracing::warn!(
        member_id = %format!("{:x}", raft_config.member_id),
        removed = %dropped.join(","),
        "--force-new-cluster: starting as a one-member cluster from this member's data; add members back with `etcdctl member add`, and drop the flag"
    );
    Ok(())
}

//! Cairn members as madsim nodes. Node addresses exist only inside madsim's in-memory
//! network; they come from TEST-NET-1 (192.0.2.0/24, RFC 5737), a range reserved for
//! documentation, because madsim treats 127.x as each node's own loopback.

use crate::boundaries::Boundaries;
use cairn::io::{MemoryDisk, MemoryDiskOptions};
use cairn::server::{self, Config};
use clap::Parser;
use madsim::runtime::{Handle, NodeHandle};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

/// The simulated address of member `index` (1-based).
pub fn member_ip(index: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, index))
}

/// The simulated address of client `index` (0-based).
pub fn client_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + index as u8))
}

/// A member's client endpoint as a URL.
pub fn client_url(index: u8) -> String {
    format!("http://{}:2379", member_ip(index))
}

/// Every member's client URL, in member order.
pub fn client_urls(members: usize) -> Vec<String> {
    (1..=members as u8).map(client_url).collect()
}

/// Member `index`'s peer URL; a member replaced by a membership change comes back on the
/// next port (a new member ID, as a replacement machine gets).
pub fn peer_url(index: u8, generation: u16) -> String {
    format!("http://{}:{}", member_ip(index), 2380 + generation)
}

/// How members are configured.
#[derive(Debug, Clone)]
pub struct MemberSettings {
    pub members: u8,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub snapshot_count: u64,
    pub unsafe_no_fsync: bool,
    /// Simulated time every fsync takes.
    pub fsync_latency_ms: u64,
    pub lease_checkpoint_interval_ms: u64,
    pub proposal_batch_bytes: usize,
    pub disk_reserve_bytes: u64,
    pub boundaries: Boundaries,
}

impl Default for MemberSettings {
    fn default() -> Self {
        MemberSettings {
            members: 1,
            heartbeat_interval_ms: 100,
            election_timeout_ms: 1000,
            snapshot_count: 100,
            unsafe_no_fsync: false,
            fsync_latency_ms: 0,
            lease_checkpoint_interval_ms: 300_000,
            proposal_batch_bytes: cairn::base::limits::BATCH_BYTES_MAX,
            disk_reserve_bytes: 0,
            boundaries: Boundaries::PRODUCTION,
        }
    }
}

/// The flags a member's node starts with; a membership change rewrites them so the next
/// start joins the running cluster.
#[derive(Debug, Clone)]
pub struct MemberFlags {
    pub index: u8,
    pub settings: MemberSettings,
    pub generation: u16,
    pub initial_cluster: String,
    pub initial_cluster_state: &'static str,
    /// Its last start failed (a joining member that reached no peer, a full disk): it is
    /// down until the next heal restarts it, as a supervisor would.
    pub start_failed: bool,
}

impl MemberFlags {
    pub fn peer_url(&self) -> String {
        peer_url(self.index, self.generation)
    }

    fn arguments(&self) -> Vec<String> {
        let ip = member_ip(self.index);
        let settings = &self.settings;
        let mut arguments = vec![
            "cairn".to_string(),
            format!("--name=member-{}", self.index),
            "--data-dir=/data".to_string(),
            format!("--listen-client-urls=http://{ip}:2379"),
            format!("--listen-peer-urls={}", self.peer_url()),
            format!("--initial-advertise-peer-urls={}", self.peer_url()),
            format!("--initial-cluster={}", self.initial_cluster),
            format!("--initial-cluster-state={}", self.initial_cluster_state),
            format!("--heartbeat-interval={}", settings.heartbeat_interval_ms),
            format!("--election-timeout={}", settings.election_timeout_ms),
            format!("--snapshot-count={}", settings.snapshot_count),
            format!(
                "--lease-checkpoint-interval={}ms",
                settings.lease_checkpoint_interval_ms
            ),
            format!("--proposal-batch-bytes={}", settings.proposal_batch_bytes),
            format!("--disk-reserve-bytes={}", settings.disk_reserve_bytes),
            // bcrypt's lowest cost: a hash at etcd's default costs real CPU on every
            // Authenticate (tens of ms) and slows the whole simulation, changing nothing it
            // checks.
            "--bcrypt-cost=4".to_string(),
        ];
        arguments.extend(settings.boundaries.flags());
        if settings.unsafe_no_fsync {
            arguments.push("--unsafe-no-fsync".to_string());
        }
        arguments
    }
}

pub struct SimMember {
    pub index: u8,
    pub node: NodeHandle,
    /// Survives kills and restarts of the node, as a real disk would.
    pub disk: MemoryDisk,
    /// Read each time the node starts.
    pub flags: Arc<Mutex<MemberFlags>>,
}

/// Starts member `index` of a cluster of `settings.members` as a madsim node running the
/// production server on its own disk. A restart of the node runs it again on that disk.
pub fn start_member(handle: &Handle, index: u8, settings: &MemberSettings) -> SimMember {
    let disk = MemoryDisk::new(MemoryDiskOptions {
        ignore_syncs: settings.unsafe_no_fsync,
        sync_latency_ms: settings.fsync_latency_ms,
        ..MemoryDiskOptions::default()
    });
    let initial_cluster = (1..=settings.members)
        .map(|member| format!("member-{member}={}", peer_url(member, 0)))
        .collect::<Vec<_>>()
        .join(",");
    let flags = Arc::new(Mutex::new(MemberFlags {
        index,
        settings: settings.clone(),
        generation: 0,
        initial_cluster,
        initial_cluster_state: "new",
        start_failed: false,
    }));
    let (node_disk, node_flags) = (disk.clone(), flags.clone());
    let node = handle
        .create_node()
        .name(format!("member-{index}"))
        .ip(member_ip(index))
        .init(move || {
            let disk = node_disk.clone();
            let config = Config::parse_from(node_flags.lock().unwrap().arguments());
            let flags = node_flags.clone();
            async move {
                match server::start(&config, Arc::new(disk)).await {
                    Ok(mut member) => {
                        if let Err(error) = member.wait().await {
                            tracing::warn!(%error, "member stopped serving");
                        }
                    }
                    // A member that cannot start (e.g. its disk is full) stays down until
                    // the simulator restarts it, as an operator would.
                    Err(error) => {
                        tracing::warn!(%error, "member failed to start");
                        flags.lock().unwrap().start_failed = true;
                    }
                }
            }
        })
        .build();
    SimMember {
        index,
        node,
        disk,
        flags,
    }
}

//! A Cairn member as a madsim node. Node addresses exist only inside madsim's in-memory
//! network; they come from TEST-NET-1 (192.0.2.0/24, RFC 5737), a range reserved for
//! documentation, because madsim treats 127.x as each node's own loopback.

use cairn::io::MemoryDisk;
use cairn::server::{self, Config};
use clap::Parser;
use madsim::runtime::{Handle, NodeHandle};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// The simulated address of member `index` (1-based).
pub fn member_ip(index: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, index))
}

/// A member's client endpoint as a URL.
pub fn client_url(index: u8) -> String {
    format!("http://{}:2379", member_ip(index))
}

pub struct SimMember {
    pub index: u8,
    pub node: NodeHandle,
    /// Survives kills and restarts of the node, as a real disk would.
    pub disk: MemoryDisk,
}

/// Starts member `index` of a one-member cluster as a madsim node on `disk`. The node runs
/// the production server; a restart runs it again on the same disk.
pub fn start_single(handle: &Handle, index: u8, disk: MemoryDisk) -> SimMember {
    let ip = member_ip(index);
    let node_disk = disk.clone();
    let node = handle
        .create_node()
        .name(format!("member-{index}"))
        .ip(ip)
        .init(move || {
            let disk = node_disk.clone();
            async move {
                let config = Config::parse_from([
                    "cairn".to_string(),
                    format!("--name=member-{index}"),
                    "--data-dir=/data".to_string(),
                    format!("--listen-client-urls=http://{ip}:2379"),
                    format!("--listen-peer-urls=http://{ip}:2380"),
                    format!("--initial-advertise-peer-urls=http://{ip}:2380"),
                    "--snapshot-count=100".to_string(),
                ]);
                let mut member = server::start(&config, Arc::new(disk))
                    .await
                    .expect("member starts");
                member.wait().await.expect("member serves");
            }
        })
        .build();
    SimMember { index, node, disk }
}

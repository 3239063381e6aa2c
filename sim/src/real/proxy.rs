//! A fault-injecting TCP proxy in front of every member's peer port. Members advertise the
//! proxy's address as their peer URL, so every byte between two members passes here and the
//! harness can stall a direction (partitions, one-way loss) or delay it (latency), as a
//! network would: held bytes are delivered once the link heals, as TCP retransmits them.
//!
//! A connection's source member is found from the kernel: the accepted socket's remote
//! address is the connecting socket's local address, which `/proc/net/tcp` maps to a socket
//! inode, which one member process holds open (`/proc/<pid>/fd`). That works for any server
//! (Cairn or etcd) without its cooperation.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Member indexes are 0-based; `UNKNOWN` is a connection whose source was not found.
pub const UNKNOWN: usize = usize::MAX;
/// How often a stalled direction looks whether its link has healed.
const STALL_POLL: Duration = Duration::from_millis(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const CHUNK_BYTES: usize = 64 * 1024;

/// What the network does now, shared by every proxy.
#[derive(Debug, Default)]
pub struct Links {
    /// (from, to) directions whose bytes are held.
    blocked: BTreeSet<(usize, usize)>,
    latency_ms: u64,
    /// The process ID of every running member, by index (0 = not running).
    pids: Vec<u32>,
}

pub type SharedLinks = Arc<Mutex<Links>>;

impl Links {
    pub fn new(members: usize) -> SharedLinks {
        Arc::new(Mutex::new(Links {
            pids: vec![0; members],
            ..Links::default()
        }))
    }

    pub fn block(&mut self, from: usize, to: usize) {
        self.blocked.insert((from, to));
    }

    pub fn set_latency_ms(&mut self, latency_ms: u64) {
        self.latency_ms = latency_ms;
    }

    pub fn set_pid(&mut self, member: usize, pid: u32) {
        self.pids[member] = pid;
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
        self.latency_ms = 0;
    }

    fn is_blocked(&self, from: usize, to: usize) -> bool {
        if from == UNKNOWN || to == UNKNOWN {
            // Unattributed traffic is held only when its known end is cut off from everyone.
            let known = if from == UNKNOWN { to } else { from };
            let others = (0..self.pids.len()).filter(|other| *other != known);
            let mut cut = others.map(|other| {
                self.blocked.contains(&(known, other)) && self.blocked.contains(&(other, known))
            });
            return self.pids.len() > 1 && cut.all(|cut| cut);
        }
        self.blocked.contains(&(from, to))
    }
}

/// Listens on `listen` for connections to member `target`, forwarding them to `upstream`.
pub async fn serve(
    listen: SocketAddr,
    upstream: SocketAddr,
    target: usize,
    links: SharedLinks,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(listen).await?;
    Ok(tokio::spawn(async move {
        loop {
            let (inbound, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of descriptors or an aborted handshake: keep accepting.
                Err(_) => {
                    tokio::time::sleep(STALL_POLL).await;
                    continue;
                }
            };
            let links = links.clone();
            tokio::spawn(async move {
                let pids = links.lock().unwrap().pids.clone();
                let source = tokio::task::spawn_blocking(move || source_member(peer, &pids))
                    .await
                    .unwrap_or(UNKNOWN);
                let Ok(Ok(outbound)) =
                    tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await
                else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (inbound_read, inbound_write) = inbound.into_split();
                let (outbound_read, outbound_write) = outbound.into_split();
                let forward = pump(inbound_read, outbound_write, source, target, links.clone());
                let backward = pump(outbound_read, inbound_write, target, source, links);
                tokio::join!(forward, backward);
            });
        }
    }))
}

/// Copies one direction of a connection, holding bytes while the link is blocked.
async fn pump(
    mut from_stream: tokio::net::tcp::OwnedReadHalf,
    mut to_stream: tokio::net::tcp::OwnedWriteHalf,
    from: usize,
    to: usize,
    links: SharedLinks,
) {
    let mut buffer = vec![0u8; CHUNK_BYTES];
    loop {
        let read = match from_stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        loop {
            let (blocked, latency_ms) = {
                let links = links.lock().unwrap();
                (links.is_blocked(from, to), links.latency_ms)
            };
            if !blocked {
                if latency_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
                }
                break;
            }
            tokio::time::sleep(STALL_POLL).await;
        }
        if to_stream.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    let _ = to_stream.shutdown().await;
}

/// The member whose process owns the socket bound to `address`, if any.
fn source_member(address: SocketAddr, pids: &[u32]) -> usize {
    let Some(inode) = socket_inode(address) else {
        return UNKNOWN;
    };
    let wanted = format!("socket:[{inode}]");
    for (member, pid) in pids.iter().enumerate().filter(|(_, pid)| **pid != 0) {
        let Ok(descriptors) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for descriptor in descriptors.flatten() {
            if std::fs::read_link(descriptor.path())
                .is_ok_and(|target| target.to_string_lossy() == wanted)
            {
                return member;
            }
        }
    }
    UNKNOWN
}

/// The inode of the IPv4 TCP socket whose local address is `address` (`/proc/net/tcp`).
fn socket_inode(address: SocketAddr) -> Option<u64> {
    let SocketAddr::V4(address) = address else {
        return None;
    };
    // /proc/net/tcp writes the address as the in-memory u32 in hex, then the port.
    let wanted = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(address.ip().octets()),
        address.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&wanted.as_str()))
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unattributed_traffic_is_held_only_for_an_isolated_member() {
        let mut links = Links {
            pids: vec![1, 2, 3],
            ..Links::default()
        };
        links.block(0, 1);
        assert!(links.is_blocked(0, 1));
        assert!(!links.is_blocked(1, 0), "one-way");
        assert!(!links.is_blocked(UNKNOWN, 0));
        for other in [1, 2] {
            links.block(0, other);
            links.block(other, 0);
        }
        assert!(
            links.is_blocked(UNKNOWN, 0),
            "member 0 is cut off from everyone"
        );
        links.heal();
        assert!(!links.is_blocked(0, 1));
    }

    #[test]
    fn a_connection_is_traced_to_the_process_that_opened_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let _client = TcpStream::connect(address).await.unwrap();
            let (_accepted, peer) = listener.accept().await.unwrap();
            let own = std::process::id();
            assert_eq!(source_member(peer, &[0, 4_000_000, own]), 2);
            assert_eq!(source_member(peer, &[4_000_000]), UNKNOWN);
        });
    }
}

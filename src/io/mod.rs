//! The only door to the operating system: clock and timers, disk, spawning. Under
//! `--cfg madsim` the clock, timers, network and tasks are madsim's (through the
//! `madsim-tokio` and `madsim-tonic` packages) and the disk is whatever `Disk` the simulator
//! hands in, so the code above runs unchanged in simulation.

#[cfg(not(madsim))]
pub mod client_connection;
pub mod clock;
pub mod coverage;
pub mod disk;
mod disk_memory;
mod disk_os;
pub mod fault_points;
pub mod http2_authority;
pub mod jwt;
pub mod planted;
pub mod process;
pub mod runtime;
pub mod tls;
#[cfg(not(madsim))]
pub mod transport;

pub use disk::{Capacity, Disk, DiskFile};
pub use disk_memory::{MemoryDisk, MemoryDiskOptions};
pub use disk_os::OsDisk;
pub use std::net::{IpAddr, SocketAddr};
#[cfg(not(madsim))]
pub use transport::PeerConnector;

/// madsim's HTTP/2 client dials peers itself (and ignores a connector); peers never use TLS
/// in simulation.
#[cfg(madsim)]
#[derive(Clone)]
pub struct PeerConnector;

#[cfg(madsim)]
impl PeerConnector {
    pub fn new(
        _local_address: Option<IpAddr>,
        _connect_timeout: std::time::Duration,
        _tls: Option<tls::ClientTls>,
    ) -> Self {
        PeerConnector
    }
}

/// Reads a text file an operator supplies at startup (etcd's YAML configuration file),
/// before any member state exists; the simulator passes its settings as flags instead.
pub fn read_operator_file(path: &std::path::Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

/// Resolves `host:port` to an IPv4 socket address (`localhost` to loopback).
pub fn resolve_ipv4(host_port: &str) -> std::io::Result<Option<std::net::SocketAddr>> {
    use std::net::ToSocketAddrs;
    if let Ok(address) = host_port.parse() {
        return Ok(Some(address));
    }
    Ok(host_port
        .to_socket_addrs()?
        .find(std::net::SocketAddr::is_ipv4))
}

/// Runs blocking work (an fsync) without stalling the async executor: on a thread pool in
/// production, inline in simulation where there are no threads and a "blocking" call is an
/// in-memory operation that then takes whatever simulated time the disk charged for it
/// (`charge_latency`).
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    #[cfg(not(madsim))]
    {
        tokio::task::spawn_blocking(work)
            .await
            .expect("blocking I/O task panicked")
    }
    #[cfg(madsim)]
    {
        // Nothing else runs during `work`, so what is charged now is this call's own cost;
        // charges made outside a blocking section are dropped here.
        CHARGED_LATENCY.set(std::time::Duration::ZERO);
        IN_BLOCKING.set(true);
        let result = work();
        IN_BLOCKING.set(false);
        let latency = CHARGED_LATENCY.take();
        let deferred = DEFERRED.take();
        if !latency.is_zero() {
            // A member killed during this sleep drops this future, and with it the deferred
            // effects: what its fsyncs were making durable is lost, as on a real disk.
            tokio::time::sleep(latency).await;
        }
        for effect in deferred {
            effect();
        }
        result
    }
}

#[cfg(madsim)]
thread_local! {
    static CHARGED_LATENCY: std::cell::Cell<std::time::Duration> =
        const { std::cell::Cell::new(std::time::Duration::ZERO) };
    static IN_BLOCKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static DEFERRED: std::cell::RefCell<Vec<DurabilityEffect>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A change a simulated disk makes to what survives a crash (an fsync's or a directory
/// sync's effect).
pub type DurabilityEffect = Box<dyn FnOnce() + Send>;

/// Runs `effect` once the current `blocking` call's charged latency has passed, in the order
/// effects were registered: an fsync that takes time makes its bytes durable only when it
/// completes, and a crash before then loses them. Outside a blocking section (and outside
/// simulation) the effect happens at once.
pub fn after_charged_latency(effect: DurabilityEffect) {
    #[cfg(madsim)]
    if IN_BLOCKING.get() {
        DEFERRED.with_borrow_mut(|deferred| deferred.push(effect));
        return;
    }
    effect()
}

/// A simulated disk's way to make the current `blocking` call slow (a slow fsync). Only
/// simulated time can be spent this way; outside simulation it does nothing.
pub fn charge_latency(latency: std::time::Duration) {
    #[cfg(madsim)]
    CHARGED_LATENCY.set(CHARGED_LATENCY.get() + latency);
    #[cfg(not(madsim))]
    let _ = latency;
}

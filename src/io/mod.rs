//! The only door to the operating system: clock and timers, disk, spawning. Under
//! `--cfg madsim` the clock, timers, network and tasks are madsim's (through the
//! `madsim-tokio` and `madsim-tonic` packages) and the disk is whatever `Disk` the simulator
//! hands in, so the code above runs unchanged in simulation.

#[cfg(not(madsim))]
pub mod client_connection;
pub mod clock;
pub mod disk;
mod disk_memory;
mod disk_os;
pub mod http2_authority;
pub mod runtime;

pub use disk::{Disk, DiskFile};
pub use disk_memory::{MemoryDisk, MemoryDiskOptions};
pub use disk_os::OsDisk;

/// Runs blocking work (an fsync) without stalling the async executor: on a thread pool in
/// production, inline in simulation where there are no threads and a "blocking" call is an
/// in-memory operation.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    #[cfg(not(madsim))]
    {
        tokio::task::spawn_blocking(work)
            .await
            .expect("blocking I/O task panicked")
    }
    #[cfg(madsim)]
    {
        work()
    }
}

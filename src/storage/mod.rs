//! Durable storage through `io::Disk`: the write-ahead log (segments of CRC-framed records)
//! and snapshot files (written atomically). Knows bytes and record kinds, not raft: the raft
//! layer decides what goes in a record and when to sync.

pub mod bolt;
pub mod codec;
mod data_dir;
mod error;
pub mod snapshot;
mod space;
pub mod wal;

pub use data_dir::DataDir;
pub use error::StorageError;
pub use space::{next_retry_interval, DiskSpace, SpaceWait};

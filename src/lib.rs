//! Cairn: an etcd-compatible, strongly consistent key-value store whose whole core runs on
//! real sockets in production and inside the madsim deterministic simulator.
//! See ARCHITECTURE.md for the layers and what each deliberately does not know.

pub mod base;
pub mod mvcc;
pub mod lease;
pub mod watch;
pub mod apply;
pub mod io;
pub mod storage;
pub mod raft;
pub mod api;
pub mod server;

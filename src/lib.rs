//! Cairn: an etcd-compatible, strongly consistent key-value store whose whole core runs on
//! real sockets in production and inside the madsim deterministic simulator.
//! See ARCHITECTURE.md for the layers and what each deliberately does not know.

pub mod api;
pub mod apply;
pub mod auth;
pub mod backup;
pub mod base;
pub mod io;
pub mod lease;
pub mod mvcc;
pub mod raft;
pub mod server;
pub mod storage;
pub mod watch;

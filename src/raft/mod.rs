//! Raft, through openraft 0.9: the type configuration, the log store on the WAL, the state
//! machine adapter, the peer network and a `RaftNode` wrapping them. The only module that
//! imports openraft; everything above sees `RaftNode` and domain types. Modules here import
//! each other directly, never through these re-exports, which are for the layers above.

mod defragment;
mod disk_full;
mod error;
mod force_new_cluster;
mod forward;
pub mod inspect;
mod lessor;
mod log_store;
mod members;
mod membership;
mod network;
mod node;
mod peer;
mod peer_handler;
mod persisted;
mod pre_vote;
mod proposer;
mod read_index;
mod snapshot_data;
mod state_machine;
mod transfer;
mod types;

pub use error::{NodeError, StartError, Waited};
pub use force_new_cluster::{force_new_cluster, ApplyLimits};
pub use lessor::Lessor;
pub use members::{MemberInfo, MemberNode, MembershipChange};
pub use network::{call as call_peer, PeerTransport, TransportError};
pub use node::{NodeStatus, RaftNode, RaftNodeConfig};
pub use peer::{HashKv, PeerRequest, PeerResponse};
pub use peer_handler::PeerHandler;
pub use state_machine::save_restored_snapshot;

//! Raft, through openraft 0.9: the type configuration, the log store on the WAL, the state
//! machine adapter, the peer network and a `RaftNode` wrapping them. The only module that
//! imports openraft; everything above sees `RaftNode` and domain types.

mod lessor;
mod log_store;
mod network;
mod node;
mod peer;
mod proposer;
mod read_index;
mod snapshot_data;
mod state_machine;

pub use lessor::Lessor;
pub use network::{call as call_peer, PeerNetwork, PeerTransport, TransportError};
pub use node::{MemberNode, NodeStatus, RaftNode, RaftNodeConfig};
pub use peer::{Forwarded, MemberInfo, MembershipChange, PeerHandler, PeerRequest, PeerResponse};
pub use state_machine::SharedState;

use crate::apply::{Applied, Command};
use crate::io::runtime::CairnRuntime;

openraft::declare_raft_types!(
    /// Cairn's raft types: commands and outcomes from `apply`, u64 member IDs.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = MemberNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = snapshot_data::SnapshotData,
        AsyncRuntime = CairnRuntime,
);

type StorageResult<T> = Result<T, openraft::StorageError<u64>>;

/// Wraps a storage failure for openraft, which stops the raft node on it.
fn storage_error(
    subject: openraft::ErrorSubject<u64>,
    verb: openraft::ErrorVerb,
    error: impl std::fmt::Display,
) -> openraft::StorageError<u64> {
    let source =
        openraft::StorageIOError::new(subject, verb, openraft::AnyError::error(error.to_string()));
    openraft::StorageError::IO { source }
}

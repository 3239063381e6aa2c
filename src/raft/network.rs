//! Raft messages to other members. A one-member cluster never sends any; the gRPC peer
//! transport on `--listen-peer-urls` belongs to multi-member clusters, so until a member has
//! peers every send reports the target unreachable and openraft retries with backoff.

use super::{MemberNode, TypeConfig};
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

#[derive(Debug, Clone, Default)]
pub struct PeerNetwork;

pub struct PeerConnection {
    target: u64,
}

impl PeerConnection {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<u64, MemberNode, E> {
        let reason = format!(
            "member {:x} is not reachable: this build has no peer transport",
            self.target
        );
        RPCError::Unreachable(Unreachable::new(&std::io::Error::other(reason)))
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: u64, _node: &MemberNode) -> PeerConnection {
        PeerConnection { target }
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        _request: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, MemberNode, RaftError<u64>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _request: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, MemberNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _request: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, MemberNode, RaftError<u64>>> {
        Err(self.unreachable())
    }
}

//! Raft messages to other members, over whatever transport the server plugs in (gRPC on the
//! peer URLs in production, madsim's network in simulation). Every call has a deadline:
//! a partitioned or clogged peer must never hang raft.

use super::members::MemberNode;
use super::peer::{PeerRequest, PeerResponse};
use super::types::TypeConfig;
use crate::base::MemberId;
use crate::io::coverage::{self, MemberState};
use crate::io::fault_points::{self, FaultPoint};
use crate::storage::codec;
use futures::future::BoxFuture;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::sync::Arc;
use std::time::Duration;

/// Carries encoded peer requests to another member and brings back the encoded response.
pub trait PeerTransport: Send + Sync + 'static {
    /// `target` 0 means "any member at these URLs" (cluster discovery).
    fn call(
        &self,
        target: MemberId,
        peer_urls: &[String],
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Could not reach the member (connect failure, timeout, broken stream).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The member answered but refused (e.g. it belongs to another cluster).
    #[error("refused: {0}")]
    Refused(String),
}

/// Sends `request` and decodes the answer.
pub async fn call(
    transport: &dyn PeerTransport,
    target: MemberId,
    peer_urls: &[String],
    request: &PeerRequest,
    timeout: Duration,
) -> Result<PeerResponse, TransportError> {
    let payload = transport
        .call(target, peer_urls, codec::encode(request), timeout)
        .await?;
    codec::decode("peer response", &payload)
        .map_err(|error| TransportError::Refused(error.to_string()))
}

#[derive(Clone)]
pub struct PeerNetwork {
    pub transport: Arc<dyn PeerTransport>,
}

pub struct PeerConnection {
    target: MemberId,
    node: MemberNode,
    transport: Arc<dyn PeerTransport>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: MemberId, node: &MemberNode) -> PeerConnection {
        PeerConnection {
            target,
            node: node.clone(),
            transport: self.transport.clone(),
        }
    }
}

impl PeerConnection {
    async fn send<E: std::error::Error>(
        &self,
        request: PeerRequest,
        option: &RPCOption,
    ) -> Result<PeerResponse, RPCError<u64, MemberNode, E>> {
        match call(
            self.transport.as_ref(),
            self.target,
            &self.node.peer_urls,
            &request,
            option.hard_ttl(),
        )
        .await
        {
            Ok(PeerResponse::Malformed(reason)) => Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other(reason),
            ))),
            Ok(response) => Ok(response),
            Err(TransportError::Unreachable(reason)) => Err(RPCError::Unreachable(
                Unreachable::new(&std::io::Error::other(reason)),
            )),
            Err(TransportError::Refused(reason)) => Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other(reason),
            ))),
        }
    }

    fn unexpected<E: std::error::Error>(response: PeerResponse) -> RPCError<u64, MemberNode, E> {
        RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
            "unexpected peer response {response:?}"
        ))))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, MemberNode, RaftError<u64>>> {
        match self
            .send(PeerRequest::AppendEntries(request), &option)
            .await?
        {
            PeerResponse::AppendEntries(result) => {
                result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
            }
            other => Err(Self::unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, MemberNode, RaftError<u64, InstallSnapshotError>>,
    > {
        // For the simulator's coverage table: sending until the last chunk is answered.
        let last_chunk = request.done;
        coverage::note(MemberState::SnapshotSending, true);
        let answer = if fault_points::fires(FaultPoint::SnapshotChunkFails) {
            Err(RPCError::Network(NetworkError::new(
                &std::io::Error::other("a snapshot chunk was lost (fault point)"),
            )))
        } else {
            self.send(PeerRequest::InstallSnapshot(request), &option)
                .await
        };
        if last_chunk || answer.is_err() {
            coverage::note(MemberState::SnapshotSending, false);
        }
        match answer? {
            PeerResponse::InstallSnapshot(result) => {
                result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
            }
            other => Err(Self::unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        request: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, MemberNode, RaftError<u64>>> {
        match self.send(PeerRequest::Vote(request), &option).await? {
            PeerResponse::Vote(result) => {
                result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
            }
            other => Err(Self::unexpected(other)),
        }
    }
}

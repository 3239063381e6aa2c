//! "Run it here if this member leads, else hand it to the leader", written once. Each
//! forwarded request names its answer type (`ForwardRequest`), so the answer is decoded as
//! that type or the forward fails; no other answer can be mistaken for it.

use super::error::NodeError;
use super::network::call;
use super::node::RaftNode;
use super::peer::{ForwardRequest, ForwardResult, PeerRequest, PeerResponse};
use crate::base::MemberId;
use crate::storage::codec;
use std::future::Future;

impl RaftNode {
    /// Runs `here` with `request` when this member leads, or forwards `request` to the
    /// leader, which serves it with its own `here` (never forwarding it again).
    pub async fn on_leader<R, F>(&self, request: R, here: impl FnOnce(R) -> F) -> ForwardResult<R>
    where
        R: ForwardRequest,
        F: Future<Output = ForwardResult<R>>,
    {
        match self.leader()? {
            None => here(request).await,
            Some(leader) => self.forward(leader, request).await,
        }
    }

    /// `Ok(None)` when this member leads, `Ok(Some(leader))` when another does.
    fn leader(&self) -> Result<Option<MemberId>, NodeError> {
        let status = self.status();
        match status.leader {
            _ if status.is_leader => Ok(None),
            Some(leader) if leader != self.member_id() => Ok(Some(leader)),
            _ => Err(NodeError::NoLeader),
        }
    }

    /// Sends `request` to member `target` and returns its answer.
    pub(super) async fn forward<R: ForwardRequest>(
        &self,
        target: MemberId,
        request: R,
    ) -> ForwardResult<R> {
        // The target is in raft's effective membership even before this member applied it.
        let peer_urls = self
            .effective_members()
            .into_iter()
            .find(|member| member.id == target)
            .map(|member| member.node.peer_urls)
            .ok_or(NodeError::NoLeader)?;
        let failed = |cause: String| {
            tracing::debug!(member = format_args!("{target:x}"), %cause, "forwarding failed");
            NodeError::ForwardFailed {
                leader: target,
                cause,
            }
        };
        let request = PeerRequest::Forward(request.into());
        let timeout = self.config().request_timeout();
        match call(
            self.transport().as_ref(),
            target,
            &peer_urls,
            &request,
            timeout,
        )
        .await
        {
            Ok(PeerResponse::Forwarded(answer)) => {
                codec::decode::<ForwardResult<R>>("forwarded answer", &answer)
                    .map_err(|error| failed(error.to_string()))?
            }
            Ok(PeerResponse::Malformed(reason)) => Err(failed(reason)),
            Ok(other) => Err(failed(format!("answered a forward with {other:?}"))),
            Err(error) => Err(failed(error.to_string())),
        }
    }
}

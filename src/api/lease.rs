//! etcdserverpb.Lease: grant, revoke, keepalive stream, time-to-live, listing.

use super::error::unexpected_outcome;
use super::pb::etcdserverpb::{self as pb, lease_server::Lease};
use super::{guarded, next_message, status, Context, Inbound};
use crate::apply::{AlarmKind, Command, Outcome};
use crate::base::{EtcdError, LEASE_TTL_SECONDS_MAX};
use crate::raft::NodeError;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// Keepalive responses queued for a slow client before the stream waits for it.
const KEEPALIVE_RESPONSES_QUEUED_MAX: usize = 64;

pub struct LeaseService {
    context: Context,
}

impl LeaseService {
    pub fn new(context: Context) -> Self {
        LeaseService { context }
    }
}

pub type KeepAliveStream =
    Pin<Box<dyn Stream<Item = Result<pb::LeaseKeepAliveResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        self.context.admit(&request, false)?;
        let request = request.into_inner();
        // With NOSPACE raised etcd refuses a grant for space before it looks at the TTL.
        if request.ttl > LEASE_TTL_SECONDS_MAX && !self.context.node.has_alarm(AlarmKind::NoSpace) {
            return Err(status(EtcdError::LeaseTtlTooLarge));
        }
        let applied = self
            .context
            .propose(Command::LeaseGrant {
                id: request.id,
                ttl_seconds: request.ttl,
            })
            .await
            .map_err(status)?;
        match applied.result.map_err(status)? {
            Outcome::LeaseGranted { id, ttl_seconds } => {
                Ok(Response::new(pb::LeaseGrantResponse {
                    header: self.context.header(applied.revision),
                    id,
                    ttl: ttl_seconds,
                    error: String::new(),
                }))
            }
            other => Err(unexpected_outcome("lease grant", other)),
        }
    }

    async fn lease_revoke(
        &self,
        request: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let command = Command::LeaseRevoke {
            id: request.into_inner().id,
        };
        let applied = self
            .context
            .propose(guarded(&caller, command))
            .await
            .map_err(status)?;
        applied.result.map_err(status)?;
        Ok(Response::new(pb::LeaseRevokeResponse {
            header: self.context.header(applied.revision),
        }))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<KeepAliveStream>, Status> {
        self.context.admit(&request, false)?;
        let requires_leader = Context::requires_leader(&request);
        Ok(Response::new(self.keep_alive_stream(
            Box::pin(request.into_inner()),
            requires_leader,
        )))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        self.context.admit(&request, false)?;
        let caller = self.context.caller(&request)?;
        let request = request.into_inner();
        // With auth on, etcd answers only a user who may read every key of the lease.
        self.context.authorize_lease_read(
            &caller,
            &self.context.node.view().machine,
            request.id,
        )?;
        let time_to_live = self
            .context
            .lessor
            .time_to_live(request.id)
            .await
            .map_err(status)?;
        let header = self.context.header(self.context.current_revision());
        let Some((remaining_seconds, granted_seconds)) = time_to_live else {
            // etcd reports an unknown or expired lease as TTL -1.
            return Ok(Response::new(pb::LeaseTimeToLiveResponse {
                header,
                id: request.id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            }));
        };
        let keys = if request.keys {
            let view = self.context.node.view();
            view.machine
                .leases()
                .get(request.id)
                .map(|lease| lease.keys.iter().cloned().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Response::new(pb::LeaseTimeToLiveResponse {
            header,
            id: request.id,
            ttl: remaining_seconds,
            granted_ttl: granted_seconds,
            keys,
        }))
    }

    async fn lease_leases(
        &self,
        request: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        self.context.admit(&request, false)?;
        self.context.node.read_barrier().await.map_err(status)?;
        let view = self.context.node.view();
        let mut ids: Vec<_> = view.machine.leases().iter().map(|lease| lease.id).collect();
        self.context.lessor.sort_by_expiry(&mut ids);
        let leases = ids.into_iter().map(|id| pb::LeaseStatus { id }).collect();
        Ok(Response::new(pb::LeaseLeasesResponse {
            header: self.context.header(view.machine.store().current_revision()),
            leases,
        }))
    }
}

impl LeaseService {
    /// Serves one keepalive stream (from gRPC or the JSON gateway) on a task of its own.
    pub fn keep_alive_stream(
        &self,
        mut inbound: Inbound<pb::LeaseKeepAliveRequest>,
        requires_leader: bool,
    ) -> KeepAliveStream {
        let (sender, receiver) = mpsc::channel(KEEPALIVE_RESPONSES_QUEUED_MAX);

        let context = self.context.clone();
        tokio::spawn(async move {
            let leader_lost = context.until_leader_lost(requires_leader);
            tokio::pin!(leader_lost);
            loop {
                let message = tokio::select! {
                    message = next_message(&mut inbound) => message,
                    () = &mut leader_lost => {
                        let _ = sender.send(Err(status(EtcdError::NoLeader))).await;
                        return;
                    }
                };
                let request = match message {
                    Ok(Some(request)) => request,
                    // etcd ends the stream with OK once the client closes its side.
                    Ok(None) => return,
                    // Bytes that are not a LeaseKeepAliveRequest: end with the decoder's
                    // error, never with OK.
                    Err(status) => {
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                };
                let response = match context.lessor.keep_alive(request.id).await {
                    Ok(ttl) => Ok(pb::LeaseKeepAliveResponse {
                        header: context.header(context.current_revision()),
                        id: request.id,
                        ttl,
                    }),
                    // etcd answers a keepalive for an unknown lease with TTL 0, not an error.
                    Err(NodeError::Etcd(EtcdError::LeaseNotFound)) => {
                        Ok(pb::LeaseKeepAliveResponse {
                            header: context.header(context.current_revision()),
                            id: request.id,
                            ttl: 0,
                        })
                    }
                    Err(error) => Err(status(error)),
                };
                let failed = response.is_err();
                if sender.send(response).await.is_err() || failed {
                    return;
                }
            }
        });
        Box::pin(ReceiverStream::new(receiver))
    }
}

//! etcd's v3 gRPC API on a `RaftNode`: one file per service, request validation, etcd's
//! error codes and messages, and the conversion between protobuf and domain types.

mod auth;
mod authorize;
mod cluster;
pub mod convert;
mod election;
mod error;
pub mod gateway;
mod grpc_health;
mod health;
pub mod http;
mod kv;
mod lease;
mod lock;
mod maintenance;
pub mod metrics;
mod peer;
mod recipes;
mod snapshot_stream;
mod tokens;
mod txn_operations;
mod watch;

/// How a watch create request becomes a watcher (public for the fuzz targets).
pub use watch::watch_spec;

pub mod pb {
    //! Generated protobuf messages and services, with etcd's packages.
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
        include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
    }
    pub mod authpb {
        tonic::include_proto!("authpb");
        include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
    }
    pub mod etcdserverpb {
        pub use crate::api::txn_operations::{request_op, response_op, RequestOp, ResponseOp};
        tonic::include_proto!("etcdserverpb");
        include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
    }
    pub mod v3lockpb {
        tonic::include_proto!("v3lockpb");
        include!(concat!(env!("OUT_DIR"), "/v3lockpb.serde.rs"));
    }
    pub mod v3electionpb {
        tonic::include_proto!("v3electionpb");
        include!(concat!(env!("OUT_DIR"), "/v3electionpb.serde.rs"));
    }
    pub mod cairnpeerpb {
        tonic::include_proto!("cairnpeerpb");
    }
    pub mod grpc_health_v1 {
        tonic::include_proto!("grpc.health.v1");
    }
}

pub use auth::AuthService;
pub use cluster::ClusterService;
pub use election::ElectionService;
pub use grpc_health::HealthService;
pub use kv::KvService;
pub use lease::LeaseService;
pub use lock::LockService;
pub use maintenance::MaintenanceService;
pub use peer::{GrpcPeerTransport, PeerService, PEER_CONNECT_TIMEOUT, PEER_MESSAGE_BYTES_MAX};
pub use watch::WatchService;

pub use authorize::{guarded, Caller, ClientConnectInfo, Credentials};
pub use error::{status, WireError};
pub use tokens::Tokens;

use crate::apply::{Alarm, AlarmKind, Applied, Command};
use crate::base::{EtcdError, Limits, Revision};
use crate::raft::{Lessor, NodeError, RaftNode};
use pb::etcdserverpb::ResponseHeader;

use std::time::Duration;
use tonic::Status;

/// The etcd version whose API behaviour this member matches, reported in Status and
/// `/version`. 3.5.13 is the first release whose watch progress notifications Kubernetes
/// trusts (it enables consistent reads from its watch cache only from 3.5.13, and from
/// 3.4.31); Cairn implements those semantics (a progress notification never precedes an
/// event at its revision; RequestProgress answers only synced streams). It claims no later
/// 3.5 patch, so a client gating a fix Cairn lacks on a newer version does not assume it.
pub const SERVER_VERSION: &str = "3.5.13";
/// The cluster version (etcd reports major.minor.0 once every member runs that version).
pub const CLUSTER_VERSION: &str = "3.5.0";
/// Cairn's own version, beside the etcd version it matches (logs, `cairn --version`).
pub const CAIRN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Bytes gRPC may add around the largest request (etcd's `grpcOverheadBytes`).
pub use crate::base::limits::GRPC_OVERHEAD_BYTES;

/// The requests of a client stream: a gRPC stream, or the JSON gateway's decoded body.
pub type Inbound<T> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The next request of a client stream; None once the client closed its side.
pub async fn next_message<T>(inbound: &mut Inbound<T>) -> Result<Option<T>, Status> {
    use tokio_stream::StreamExt;
    inbound.next().await.transpose()
}

/// Everything a service needs, shared by all of them.
#[derive(Clone)]
pub struct Context {
    pub node: RaftNode,
    pub lessor: Lessor,
    pub cluster_id: u64,
    pub limits: Limits,
    pub watch: WatchLimits,
    /// This member's tokens (`--auth-token`, `--auth-token-ttl`).
    pub tokens: Tokens,
    /// `--bcrypt-cost`: the work factor of password hashes made here.
    pub bcrypt_cost: u32,
    /// `--client-cert-auth`: a verified client certificate's common name authenticates.
    pub client_cert_auth: bool,
    /// Whom requests made through this context are made for (the recipes' proposals and
    /// reads); anonymous in the services' own context.
    pub acting_for: Caller,
}

/// Limits of watch streams; each has a flag.
#[derive(Debug, Clone, Copy)]
pub struct WatchLimits {
    /// Watchers one stream may hold.
    pub watchers_per_stream_max: usize,
    /// Events gathered for one watcher before a response goes out.
    pub events_per_response_max: usize,
    /// Responses queued for a slow client before the stream waits for it.
    pub responses_queued_max: usize,
    /// How often watchers that asked for progress notifications get one.
    pub progress_notify_interval: Duration,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits {
            watchers_per_stream_max: 10_000,
            events_per_response_max: 1000,
            responses_queued_max: 128,
            progress_notify_interval: Duration::from_secs(600),
        }
    }
}

impl Context {
    /// Proposes a client's command. A write refused for space raises NOSPACE for this
    /// member first, as etcd's quota check does, so `alarm list` shows why writes fail.
    ///
    /// While this member's own disk is full, a command that may add data is refused with
    /// NOSPACE before it is proposed (the member's `alarms` show NOSPACE then): it could
    /// not be written here, and a client deserves a definite answer, not a timeout.
    pub async fn propose(&self, command: Command) -> Result<Applied, NodeError> {
        if self.node.disk_full() && command.may_add_data() {
            return Err(NodeError::Etcd(EtcdError::NoSpace));
        }
        let applied = self.node.propose(command).await?;
        if applied.result == Err(EtcdError::NoSpace)
            && !self.node.view().machine.has_alarm(AlarmKind::NoSpace)
        {
            let alarm = Alarm {
                member_id: self.node.config().member_id,
                kind: AlarmKind::NoSpace,
            };
            tracing::warn!(
                quota_bytes = self.limits.backend_bytes_quota,
                "the store is over --quota-backend-bytes: raising the NOSPACE alarm"
            );
            if let Err(error) = self
                .node
                .propose(Command::Alarm {
                    activate: true,
                    alarm,
                })
                .await
            {
                tracing::warn!(%error, "raising the NOSPACE alarm failed");
            }
        }
        Ok(applied)
    }

    pub fn header(&self, revision: Revision) -> Option<ResponseHeader> {
        Some(ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.node.member_id(),
            revision,
            raft_term: self.node.status().term,
        })
    }

    pub fn current_revision(&self) -> Revision {
        self.node.current_revision()
    }

    /// Whether a client sent `hasleader: true`: it wants answers only from a member that
    /// has a leader.
    pub fn requires_leader<T>(request: &tonic::Request<T>) -> bool {
        request
            .metadata()
            .get("hasleader")
            .is_some_and(|value| value == "true")
    }

    /// For a stream opened with `hasleader`, resolves once the member has had no leader for
    /// 3 election timeouts (then the stream ends with "no leader"); never otherwise.
    pub async fn until_leader_lost(&self, requires_leader: bool) {
        if !requires_leader {
            return std::future::pending().await;
        }
        let mut lost = self.node.subscribe_leader_lost();
        if lost.wait_for(|lost| *lost).await.is_err() {
            // The member stopped: its streams end with it, not with "no leader".
            std::future::pending::<()>().await;
        }
    }

    /// etcd's gates before any RPC is served, as its gRPC interceptors: a learner serves
    /// only what `learner_serves` allows (Status, a serializable Range, Snapshot), and a
    /// client that sent `hasleader: true` gets "no leader" while there is none. Every RPC
    /// handler calls this first, so the JSON gateway passes the same gates.
    pub fn admit<T>(
        &self,
        request: &tonic::Request<T>,
        learner_serves: bool,
    ) -> Result<(), Status> {
        let status_now = self.node.status();
        if status_now.is_learner && !learner_serves {
            return Err(status(EtcdError::NotSupportedForLearner));
        }
        if Self::requires_leader(request) && status_now.leader.is_none() {
            return Err(status(EtcdError::NoLeader));
        }
        Ok(())
    }

    /// The message of a request that writes, once `admit` and `check_size` let it in, and
    /// a context acting for its sender: what the recipes (Lock, Election) propose on its
    /// behalf is checked against the sender's permissions, as etcd's in-process client
    /// passes the caller's token on.
    pub fn accept<T: prost::Message>(
        &self,
        request: tonic::Request<T>,
    ) -> Result<(Context, T), Status> {
        self.admit(&request, false)?;
        let acting_for = self.caller(&request)?;
        let message = request.into_inner();
        self.check_size(&message)?;
        let context = Context {
            acting_for,
            ..self.clone()
        };
        Ok((context, message))
    }

    /// etcd refuses requests over `--max-request-bytes` before they reach raft.
    pub fn check_size(&self, message: &impl prost::Message) -> Result<(), Status> {
        if message.encoded_len() > self.limits.request_bytes_max {
            return Err(status(EtcdError::RequestTooLarge));
        }
        Ok(())
    }
}

/// The answer for an RPC Cairn does not serve yet: a clear Unimplemented, never a hang.
pub fn unimplemented(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "cairn: {rpc} is not implemented by this version of Cairn"
    ))
}

//! cairnpeerpb.Peer: member-to-member traffic on the peer URLs. The server side checks that a
//! message belongs to this cluster and this member, then hands the raft layer its bytes; the
//! client side is the `PeerTransport` raft sends through, with a deadline on every call.

use super::pb::cairnpeerpb::{peer_client::PeerClient, peer_server::Peer, PeerMessage};
use crate::base::metrics::Metrics;
use crate::base::MemberId;
use crate::io::clock;
use crate::io::PeerConnector;
use crate::raft::{PeerHandler, PeerTransport, TransportError};
use futures::future::BoxFuture;
use prost::Message;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};

/// Largest peer message (the largest append of entries or a snapshot chunk fits, see
/// `base::limits`); this bounds what a peer can make us buffer.
pub use crate::base::limits::PEER_MESSAGE_BYTES_MAX;
/// How long dialing a peer may take (TCP connect; a TLS handshake has its own bound in io).
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A refusal (wrong cluster) is logged at most this often per peer URL.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

pub struct PeerService {
    handler: PeerHandler,
    cluster_id: u64,
    member_id: MemberId,
    metrics: Arc<Metrics>,
}

impl PeerService {
    pub fn new(
        handler: PeerHandler,
        cluster_id: u64,
        member_id: MemberId,
        metrics: Arc<Metrics>,
    ) -> Self {
        PeerService {
            handler,
            cluster_id,
            member_id,
            metrics,
        }
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn call(&self, request: Request<PeerMessage>) -> Result<Response<PeerMessage>, Status> {
        let message = request.into_inner();
        self.metrics
            .peers
            .received_bytes
            .with(&[&format!("{:x}", message.from)], |counter| {
                counter.add(message.encoded_len() as u64)
            });
        if message.cluster_id != 0 && message.cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster ID mismatch: member {:x} belongs to cluster {:x}, the message from member {:x} to cluster {:x} (check --initial-cluster-token and --initial-cluster)",
                self.member_id, self.cluster_id, message.from, message.cluster_id
            )));
        }
        if message.to != 0 && message.to != self.member_id {
            return Err(Status::failed_precondition(format!(
                "member ID mismatch: a message for member {:x} reached member {:x}",
                message.to, self.member_id
            )));
        }
        let payload = self
            .handler
            .handle(&message.payload, message.cluster_id != 0)
            .await;
        Ok(Response::new(PeerMessage {
            cluster_id: self.cluster_id,
            from: self.member_id,
            to: message.from,
            payload: payload.into(),
        }))
    }
}

/// Peer client over gRPC: one lazily connected channel per peer URL.
#[derive(Clone)]
pub struct GrpcPeerTransport {
    inner: Arc<TransportState>,
}

struct TransportState {
    member_id: MemberId,
    /// 0 until known (a joining member learns it from the cluster).
    cluster_id: AtomicU64,
    /// Dials peers: from this member's own peer address when it has one, with peer TLS
    /// for `https://` URLs.
    connector: PeerConnector,
    channels: Mutex<BTreeMap<String, Channel>>,
    refusals_logged: Mutex<BTreeMap<String, clock::Instant>>,
    metrics: Arc<Metrics>,
}

impl GrpcPeerTransport {
    pub fn new(member_id: MemberId, connector: PeerConnector, metrics: Arc<Metrics>) -> Self {
        let inner = TransportState {
            member_id,
            cluster_id: AtomicU64::new(0),
            connector,
            channels: Mutex::default(),
            refusals_logged: Mutex::default(),
            metrics,
        };
        GrpcPeerTransport {
            inner: Arc::new(inner),
        }
    }

    pub fn set_cluster_id(&self, cluster_id: u64) {
        self.inner.cluster_id.store(cluster_id, Ordering::Relaxed);
    }

    fn channel(&self, url: &str) -> Result<Channel, TransportError> {
        let mut channels = self.inner.channels.lock().unwrap();
        if let Some(channel) = channels.get(url) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|error| TransportError::Unreachable(format!("bad peer URL {url}: {error}")))?;
        let channel = endpoint
            .connect_timeout(PEER_CONNECT_TIMEOUT)
            .connect_with_connector_lazy(self.inner.connector.clone());
        channels.insert(url.to_string(), channel.clone());
        Ok(channel)
    }
}

impl TransportState {
    /// Logged on the sender's side, so the operator of a misconfigured member sees which
    /// peer refused it and why, without a line per heartbeat.
    fn log_refusal(&self, url: &str, reason: &str) {
        let mut logged = self.refusals_logged.lock().unwrap();
        let now = clock::now();
        if logged
            .get(url)
            .is_none_or(|last| now.duration_since(*last) >= REFUSAL_LOG_INTERVAL)
        {
            logged.insert(url.to_string(), now);
            tracing::error!(peer = url, reason, "peer refused this member");
        }
    }
}

impl PeerTransport for GrpcPeerTransport {
    fn call(
        &self,
        target: MemberId,
        peer_urls: &[String],
        payload: Vec<u8>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, TransportError>> {
        let Some(url) = peer_urls.first().cloned() else {
            return Box::pin(async move {
                Err(TransportError::Unreachable(format!(
                    "member {target:x} has no peer URL"
                )))
            });
        };
        let channel = self.channel(&url);
        let message = PeerMessage {
            cluster_id: self.inner.cluster_id.load(Ordering::Relaxed),
            from: self.inner.member_id,
            to: target,
            payload: payload.into(),
        };
        let state = self.inner.clone();
        Box::pin(async move {
            let peers = &state.metrics.peers;
            let to = format!("{target:x}");
            peers
                .sent_bytes
                .with(&[&to], |counter| counter.add(message.encoded_len() as u64));
            let mut client = PeerClient::new(channel?)
                .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
                .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
            let started = clock::now();
            let answer = clock::timeout(timeout, client.call(message)).await;
            match &answer {
                Ok(Ok(_)) => peers.round_trip_seconds.with(&[&to], |histogram| {
                    histogram.observe(started.elapsed().as_secs_f64())
                }),
                _ => peers.sent_failures.with(&[&to], |counter| counter.inc()),
            }
            match answer {
                Err(_) => Err(TransportError::Unreachable(format!(
                    "{url}: no answer within {timeout:?}"
                ))),
                Ok(Err(status)) if status.code() == Code::FailedPrecondition => {
                    state.log_refusal(&url, status.message());
                    Err(TransportError::Refused(status.message().to_string()))
                }
                Ok(Err(status)) => Err(TransportError::Unreachable(format!("{url}: {status}"))),
                Ok(Ok(response)) => Ok(response.into_inner().payload.to_vec()),
            }
        })
    }
}

//! The gRPC listeners: etcd's services (the six of etcdserverpb, Lock, Election, and gRPC
//! health) on every client URL, the peer service on every
//! peer URL. Each stops when the member shuts down.

use super::error::StartError;
use crate::api::metrics::Detail;
use crate::api::pb::cairnpeerpb::peer_server::PeerServer;
use crate::api::pb::etcdserverpb::{
    auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use crate::api::pb::grpc_health_v1::health_server::HealthServer;
use crate::api::pb::v3electionpb::election_server::ElectionServer;
use crate::api::pb::v3lockpb::lock_server::LockServer;
use crate::api::{
    AuthService, ClusterService, Context, ElectionService, HealthService, KvService, LeaseService,
    LockService, MaintenanceService, PeerService, WatchService, GRPC_OVERHEAD_BYTES,
    PEER_MESSAGE_BYTES_MAX,
};
use crate::io::tls::ServerTls;
use crate::io::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub type Listener = JoinHandle<Result<(), tonic::transport::Error>>;

/// What a client listener serves over HTTP beside gRPC.
// madsim has no HTTP: the simulation build carries these options but never reads them.
#[cfg_attr(madsim, allow(dead_code))]
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// How much `/metrics` shows (`--metrics`).
    pub detail: Detail,
    /// Whether `/v3/...` is etcd's JSON gateway (`--enable-grpc-gateway`).
    pub gateway: bool,
    /// `--cors` and `--host-whitelist`; None on metrics URLs, which etcd serves without.
    pub access: Option<std::sync::Arc<crate::api::http::AccessControl>>,
}

/// Whether a listen URL is served with TLS.
pub fn is_https(url: &str) -> bool {
    url.starts_with("https://")
}

/// Parses `http://host:port` or `https://host:port` into a socket address (`localhost`
/// resolves to loopback).
pub fn socket_address(url: &str) -> Result<SocketAddr, StartError> {
    let host_port = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            StartError::Flag(format!("URL {url:?} must start with http:// or https://"))
        })?;
    let host_port = host_port.trim_end_matches('/');
    match crate::io::resolve_ipv4(host_port) {
        Ok(Some(address)) => Ok(address),
        Ok(None) => Err(StartError::Flag(format!("cannot resolve {url:?}"))),
        Err(error) => Err(StartError::Flag(format!("cannot resolve {url:?}: {error}"))),
    }
}

async fn until_stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Serves etcd's gRPC services on a client URL, and beside them (production only: madsim
/// has no HTTP) etcd's HTTP endpoints over HTTP/1.1 and HTTP/2.
pub async fn serve_clients(
    context: &Context,
    address: SocketAddr,
    tls: Option<ServerTls>,
    http: HttpOptions,
    stop: watch::Receiver<bool>,
) -> Result<Listener, StartError> {
    let bytes_max = context.limits.request_bytes_max + GRPC_OVERHEAD_BYTES;
    #[cfg(not(madsim))]
    let mut builder = tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(super::http::HttpLayer {
            context: context.clone(),
            endpoints: crate::api::http::Endpoints::Client,
            options: http,
            secure: tls.is_some(),
        });
    #[cfg(madsim)]
    let mut builder = {
        let _ = http;
        tonic::transport::Server::builder()
    };
    let router = builder
        .add_service(
            KvServer::new(KvService::new(context.clone())).max_decoding_message_size(bytes_max),
        )
        .add_service(
            WatchServer::new(WatchService::new(context.clone()))
                .max_decoding_message_size(bytes_max),
        )
        .add_service(
            LeaseServer::new(LeaseService::new(context.clone()))
                .max_decoding_message_size(bytes_max),
        )
        .add_service(
            ClusterServer::new(ClusterService::new(context.clone()))
                .max_decoding_message_size(bytes_max),
        )
        .add_service(
            MaintenanceServer::new(MaintenanceService::new(context.clone()))
                .max_decoding_message_size(bytes_max),
        )
        .add_service(
            AuthServer::new(AuthService::new(context.clone())).max_decoding_message_size(bytes_max),
        )
        .add_service(
            LockServer::new(LockService::new(context.clone())).max_decoding_message_size(bytes_max),
        )
        .add_service(
            ElectionServer::new(ElectionService::new(context.clone()))
                .max_decoding_message_size(bytes_max),
        )
        .add_service(HealthServer::new(HealthService::new(context.clone())));
    #[cfg(not(madsim))]
    {
        use crate::io::client_connection::ClientConnection;
        use futures::StreamExt;
        let incoming = bind(address, tls, "clients").await?;
        // Client connections pass through the authority fix; peers need none.
        Ok(tokio::spawn(router.serve_with_incoming_shutdown(
            incoming.map(|connection| connection.map(ClientConnection::new)),
            until_stopped(stop),
        )))
    }
    #[cfg(madsim)]
    {
        // Never built with TLS in simulation: `ServerTls` cannot be made there.
        let _ = tls;
        Ok(tokio::spawn(
            router.serve_with_shutdown(address, until_stopped(stop)),
        ))
    }
}

/// Serves `/metrics` and the health endpoints on a `--listen-metrics-urls` URL (with the
/// client TLS for `https://`), over HTTP/1.1 and HTTP/2. None in simulation: madsim has no
/// HTTP.
pub async fn serve_metrics(
    context: &Context,
    address: SocketAddr,
    tls: Option<ServerTls>,
    detail: Detail,
    stop: watch::Receiver<bool>,
) -> Result<Option<Listener>, StartError> {
    #[cfg(not(madsim))]
    {
        let router = tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(super::http::HttpLayer {
                context: context.clone(),
                endpoints: crate::api::http::Endpoints::Metrics,
                options: HttpOptions {
                    detail,
                    gateway: false,
                    access: None,
                },
                secure: tls.is_some(),
            })
            .add_routes(tonic::service::Routes::default());
        let incoming = bind(address, tls, "metrics").await?;
        Ok(Some(tokio::spawn(router.serve_with_incoming_shutdown(
            incoming,
            until_stopped(stop),
        ))))
    }
    #[cfg(madsim)]
    {
        let _ = (context, address, tls, detail, stop);
        tracing::warn!("--listen-metrics-urls is not served in simulation");
        Ok(None)
    }
}

#[cfg(not(madsim))]
impl tonic::transport::server::Connected for crate::io::client_connection::ClientConnection {
    type ConnectInfo = crate::api::ClientConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        crate::api::ClientConnectInfo {
            remote_address: self.transport().tcp().peer_addr().ok(),
            certificate_common_name: self.transport().client_common_name(),
        }
    }
}

#[cfg(not(madsim))]
impl tonic::transport::server::Connected for crate::io::transport::Transport {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tcp().connect_info()
    }
}

/// Serves peers on `address`, bound before this returns: a port that cannot be bound fails
/// the start (a member whose peer port is taken must not look alive to its supervisor).
pub async fn serve_peers(
    service: PeerService,
    address: SocketAddr,
    tls: Option<ServerTls>,
    stop: watch::Receiver<bool>,
) -> Result<Listener, StartError> {
    let server = PeerServer::new(service)
        .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
    let router = tonic::transport::Server::builder().add_service(server);
    #[cfg(not(madsim))]
    {
        let incoming = bind(address, tls, "peers").await?;
        Ok(tokio::spawn(router.serve_with_incoming_shutdown(
            incoming,
            until_stopped(stop),
        )))
    }
    #[cfg(madsim)]
    {
        let _ = tls;
        Ok(tokio::spawn(
            router.serve_with_shutdown(address, until_stopped(stop)),
        ))
    }
}

/// Binds `address` (before serving starts, so a port that cannot be bound fails the start)
/// and accepts on it through Cairn's own accept loop (`io::transport`), with TLS when `tls`
/// is given.
#[cfg(not(madsim))]
async fn bind(
    address: SocketAddr,
    tls: Option<ServerTls>,
    what: &'static str,
) -> Result<crate::io::transport::Incoming, StartError> {
    let listener = crate::io::transport::bind(address)
        .await
        .map_err(|source| StartError::Listen {
            what,
            address,
            source,
        })?;
    Ok(crate::io::transport::Incoming::new(listener, tls, what))
}

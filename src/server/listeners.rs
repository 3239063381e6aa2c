//! The gRPC listeners: etcd's six services on every client URL, the peer service on every
//! peer URL. Each stops when the member shuts down.

use super::error::StartError;
use crate::api::pb::cairnpeerpb::peer_server::PeerServer;
use crate::api::pb::etcdserverpb::{
    auth_server::AuthServer, cluster_server::ClusterServer, kv_server::KvServer,
    lease_server::LeaseServer, maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use crate::api::{
    AuthService, ClusterService, Context, KvService, LeaseService, MaintenanceService, PeerService,
    WatchService, GRPC_OVERHEAD_BYTES, PEER_MESSAGE_BYTES_MAX,
};
use crate::io::tls::ServerTls;
use crate::io::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub type Listener = JoinHandle<Result<(), tonic::transport::Error>>;

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

pub async fn serve_clients(
    context: &Context,
    address: SocketAddr,
    tls: Option<ServerTls>,
    stop: watch::Receiver<bool>,
) -> Result<Listener, StartError> {
    let bytes_max = context.limits.request_bytes_max + GRPC_OVERHEAD_BYTES;
    let router = tonic::transport::Server::builder()
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
        );
    serve(router, address, Side::Clients, tls, stop).await
}

#[cfg(not(madsim))]
impl tonic::transport::server::Connected for crate::io::client_connection::ClientConnection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.transport().connect_info()
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
    serve(router, address, Side::Peers, tls, stop).await
}

/// Whom a listener serves.
enum Side {
    Clients,
    Peers,
}

/// Binds `address` (before returning, so a port that cannot be bound fails the start) and
/// serves `router` on it until `stop`, through Cairn's own accept loop (`io::transport`),
/// with TLS when `tls` is given.
async fn serve(
    router: tonic::transport::server::Router,
    address: SocketAddr,
    side: Side,
    tls: Option<ServerTls>,
    stop: watch::Receiver<bool>,
) -> Result<Listener, StartError> {
    #[cfg(not(madsim))]
    {
        use crate::io::client_connection::ClientConnection;
        use crate::io::transport::{bind, Incoming};
        use futures::StreamExt;
        let what = match side {
            Side::Clients => "clients",
            Side::Peers => "peers",
        };
        let listener = bind(address).await.map_err(|source| StartError::Listen {
            what,
            address,
            source,
        })?;
        let incoming = Incoming::new(listener, tls, what);
        let stopped = until_stopped(stop);
        Ok(match side {
            // Client connections pass through the authority fix; peers need none.
            Side::Clients => tokio::spawn(router.serve_with_incoming_shutdown(
                incoming.map(|connection| connection.map(ClientConnection::new)),
                stopped,
            )),
            Side::Peers => tokio::spawn(router.serve_with_incoming_shutdown(incoming, stopped)),
        })
    }
    #[cfg(madsim)]
    {
        // Never built with TLS in simulation: `ServerTls` cannot be made there.
        let _ = (side, tls);
        Ok(tokio::spawn(
            router.serve_with_shutdown(address, until_stopped(stop)),
        ))
    }
}

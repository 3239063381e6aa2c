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
use crate::io::SocketAddr;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub type Listener = JoinHandle<Result<(), tonic::transport::Error>>;

/// Parses `http://host:port` into a socket address (`localhost` resolves to loopback).
pub fn socket_address(url: &str) -> Result<SocketAddr, StartError> {
    let host_port = url.strip_prefix("http://").ok_or_else(|| {
        StartError::Flag(format!(
            "URL {url:?} must start with http:// (TLS is not supported yet)"
        ))
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
    serve(router, address, Side::Clients, stop).await
}

#[cfg(not(madsim))]
impl tonic::transport::server::Connected for crate::io::client_connection::ClientConnection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream().connect_info()
    }
}

/// Serves peers on `address`, bound before this returns: a port that cannot be bound fails
/// the start (a member whose peer port is taken must not look alive to its supervisor).
pub async fn serve_peers(
    service: PeerService,
    address: SocketAddr,
    stop: watch::Receiver<bool>,
) -> Result<Listener, StartError> {
    let server = PeerServer::new(service)
        .max_decoding_message_size(PEER_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(PEER_MESSAGE_BYTES_MAX);
    let router = tonic::transport::Server::builder().add_service(server);
    serve(router, address, Side::Peers, stop).await
}

/// Whom a listener serves.
enum Side {
    Clients,
    Peers,
}

/// Binds `address` (before returning, so a port that cannot be bound fails the start) and
/// serves `router` on it until `stop`, through Cairn's own accept loop (see `io`).
async fn serve(
    router: tonic::transport::server::Router,
    address: SocketAddr,
    side: Side,
    stop: watch::Receiver<bool>,
) -> Result<Listener, StartError> {
    #[cfg(not(madsim))]
    {
        use crate::io::client_connection::{accept, accept_peers, bind};
        let what = match side {
            Side::Clients => "clients",
            Side::Peers => "peers",
        };
        let listener = bind(address).await.map_err(|source| StartError::Listen {
            what,
            address,
            source,
        })?;
        let stopped = until_stopped(stop);
        Ok(match side {
            // Client connections pass through the authority fix; peers need none.
            Side::Clients => {
                tokio::spawn(router.serve_with_incoming_shutdown(accept(listener), stopped))
            }
            Side::Peers => {
                tokio::spawn(router.serve_with_incoming_shutdown(accept_peers(listener), stopped))
            }
        })
    }
    #[cfg(madsim)]
    {
        let _ = side;
        Ok(tokio::spawn(
            router.serve_with_shutdown(address, until_stopped(stop)),
        ))
    }
}

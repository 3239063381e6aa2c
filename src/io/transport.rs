//! Connections over real sockets, plain or TLS: what the listeners accept (`Incoming`) and
//! what a member dials its peers with (`PeerConnector`). Production only; madsim brings its
//! own network.

use super::clock;
use super::tls::{ClientTls, ServerTls};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long a client has to finish its TLS handshake: a client that opens a connection and
/// says nothing must not hold a handshake slot for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress on one listener at most. At the bound the listener stops
/// accepting until one finishes (connections wait in the kernel's backlog), so a flood of
/// silent connections costs bounded memory and never stops the listener.
const HANDSHAKES_IN_FLIGHT_MAX: usize = 1024;
/// How long the accept loop pauses after a failed accept, so a process out of file
/// descriptors (or memory) does not spin while connections close and free them.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Refused handshakes are logged at most this often per listener or peer (with a count of
/// those not logged), so a misconfigured peer retrying every few milliseconds, or a hostile
/// client, cannot flood the log.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One connection, plain TCP or TLS over it.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Transport {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(stream) => stream.get_ref().0,
        }
    }

    /// The common name of the certificate the client presented, once rustls verified it
    /// against the trusted CA (etcd's `AuthInfoFromTLS` authenticates it as that user).
    pub fn client_common_name(&self) -> Option<String> {
        super::tls::common_name(self.peer_certificates()?.first()?)
    }

    /// The certificate chain the other side presented (TLS with a client certificate).
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(stream) => stream.get_ref().1.peer_certificates(),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write(context, data),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write_vectored(context, buffers),
            Transport::Tls(stream) => {
                Pin::new(stream.as_mut()).poll_write_vectored(context, buffers)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(stream) => stream.is_write_vectored(),
            Transport::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(context),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

/// Distinct refusal reasons remembered for rate limiting; beyond it the oldest is forgotten
/// (so at worst a reason is logged again early).
const REFUSAL_REASONS_MAX: usize = 64;

/// Refusals, each reason logged at most once per `REFUSAL_LOG_INTERVAL` with how many were
/// not: a peer with a foreign CA and another with a wrong name each get their line, and
/// neither a retrying peer nor a hostile client floods the log.
struct RefusalLog {
    what: String,
    reasons: Mutex<std::collections::VecDeque<(String, clock::Instant, u64)>>,
}

impl RefusalLog {
    fn new(what: String) -> Self {
        RefusalLog {
            what,
            reasons: Mutex::default(),
        }
    }

    fn refused(&self, other_side: &str, reason: &str) {
        let mut reasons = self.reasons.lock().unwrap();
        let now = clock::now();
        let not_logged = match reasons.iter_mut().find(|(known, _, _)| known == reason) {
            Some((_, last, count)) if now.duration_since(*last) < REFUSAL_LOG_INTERVAL => {
                *count += 1;
                return;
            }
            Some((_, last, count)) => {
                *last = now;
                std::mem::take(count)
            }
            None => {
                if reasons.len() == REFUSAL_REASONS_MAX {
                    reasons.pop_front();
                }
                reasons.push_back((reason.to_string(), now, 0));
                0
            }
        };
        tracing::warn!(
            what = %self.what,
            other_side,
            reason,
            not_logged_since_last = not_logged,
            "TLS handshake refused"
        );
    }
}

/// Binds a listener; bind errors (address in use) surface before serving starts.
pub async fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Accepted connections, each through its TLS handshake when the listener has TLS. No
/// accept error and no failed handshake ends the stream: each is logged, and after a failed
/// accept the loop pauses briefly. Handshakes run concurrently (a slow client delays only
/// itself), at most `HANDSHAKES_IN_FLIGHT_MAX` at once, each within `HANDSHAKE_TIMEOUT`.
pub struct Incoming {
    listener: TcpListener,
    tls: Option<ServerTls>,
    handshakes: FuturesUnordered<BoxFuture<'static, Option<Transport>>>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    what: &'static str,
    refusals: Arc<RefusalLog>,
}

impl Incoming {
    pub fn new(listener: TcpListener, tls: Option<ServerTls>, what: &'static str) -> Self {
        Incoming {
            listener,
            tls,
            handshakes: FuturesUnordered::new(),
            pause: None,
            what,
            refusals: Arc::new(RefusalLog::new(format!("{what} listener"))),
        }
    }

    fn handshake(&self, tls: &ServerTls, stream: TcpStream, remote: SocketAddr) {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
        let refusals = self.refusals.clone();
        self.handshakes.push(Box::pin(async move {
            let remote = remote.to_string();
            match clock::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => Some(Transport::Tls(Box::new(stream.into()))),
                Ok(Err(error)) => {
                    refusals.refused(&remote, &error.to_string());
                    None
                }
                Err(_) => {
                    refusals.refused(&remote, "no handshake within 10 s");
                    None
                }
            }
        }));
    }
}

impl futures::Stream for Incoming {
    type Item = io::Result<Transport>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            // Finished handshakes first: their clients are waiting.
            while let Poll::Ready(Some(finished)) = this.handshakes.poll_next_unpin(context) {
                if let Some(connection) = finished {
                    return Poll::Ready(Some(Ok(connection)));
                }
            }
            if let Some(pause) = this.pause.as_mut() {
                if pause.as_mut().poll(context).is_pending() {
                    return Poll::Pending;
                }
                this.pause = None;
            }
            if this.handshakes.len() >= HANDSHAKES_IN_FLIGHT_MAX {
                // Woken when a handshake finishes (polled above).
                return Poll::Pending;
            }
            match this.listener.poll_accept(context) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok((stream, remote))) => {
                    let _ = stream.set_nodelay(true);
                    match &this.tls {
                        None => return Poll::Ready(Some(Ok(Transport::Plain(stream)))),
                        // Polled at the top of the loop, which registers it for wake-ups.
                        Some(tls) => this.handshake(tls, stream, remote),
                    }
                }
                Poll::Ready(Err(error)) => {
                    tracing::warn!(%error, listener = this.what, "accepting a connection failed; retrying");
                    this.pause = Some(Box::pin(tokio::time::sleep(ACCEPT_RETRY_PAUSE)));
                }
            }
        }
    }
}

/// Dials peers for the HTTP/2 client: plain TCP for `http://` URLs, TLS for `https://`,
/// from this member's peer address when it listens on one specific address.
#[derive(Clone)]
pub struct PeerConnector {
    local_address: Option<IpAddr>,
    connect_timeout: Duration,
    tls: Option<ClientTls>,
    refusals: Arc<RefusalLog>,
}

impl PeerConnector {
    pub fn new(
        local_address: Option<IpAddr>,
        connect_timeout: Duration,
        tls: Option<ClientTls>,
    ) -> Self {
        PeerConnector {
            local_address,
            connect_timeout,
            tls,
            refusals: Arc::new(RefusalLog::new("connection to a peer".into())),
        }
    }

    async fn connect(self, uri: http::Uri) -> io::Result<hyper_util::rt::TokioIo<Transport>> {
        let invalid =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: {why}"));
        let host = uri.host().ok_or_else(|| invalid("no host"))?.to_string();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let address = super::resolve_ipv4(&format!("{host}:{port}"))?
            .ok_or_else(|| invalid("cannot resolve the host"))?;
        let socket = TcpSocket::new_v4()?;
        if let Some(local) = self.local_address {
            socket.bind(SocketAddr::new(local, 0))?;
        }
        let stream = clock::timeout(self.connect_timeout, socket.connect(address))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, format!("{uri}: connect timed out"))
            })??;
        let _ = stream.set_nodelay(true);
        if !https {
            return Ok(hyper_util::rt::TokioIo::new(Transport::Plain(stream)));
        }
        let tls = self
            .tls
            .as_ref()
            .ok_or_else(|| invalid("https peer URL, but no peer TLS"))?;
        let server_name = rustls::pki_types::ServerName::try_from(host)
            .map_err(|error| invalid(&error.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(tls.config());
        match clock::timeout(HANDSHAKE_TIMEOUT, connector.connect(server_name, stream)).await {
            Ok(Ok(stream)) => Ok(hyper_util::rt::TokioIo::new(Transport::Tls(Box::new(
                stream.into(),
            )))),
            Ok(Err(error)) => {
                self.refusals.refused(&uri.to_string(), &error.to_string());
                Err(error)
            }
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{uri}: TLS handshake timed out"),
            )),
        }
    }
}

impl tower_service::Service<http::Uri> for PeerConnector {
    type Response = hyper_util::rt::TokioIo<Transport>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Self::Response>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

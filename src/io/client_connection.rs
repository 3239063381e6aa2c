//! Accepted client connections (production only: madsim has its own network and needs no
//! rewriting). Reads pass through `AuthorityRewriter`; writes go straight to the socket.

use super::http2_authority::AuthorityRewriter;
use futures::StreamExt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Bytes read from the socket per poll.
const READ_CHUNK_BYTES: usize = 16 * 1024;

pin_project_lite::pin_project! {
    pub struct ClientConnection {
        #[pin]
        stream: TcpStream,
        rewriter: AuthorityRewriter,
        ready: Vec<u8>,
        ready_offset: usize,
    }
}

impl ClientConnection {
    pub fn new(stream: TcpStream) -> Self {
        ClientConnection {
            stream,
            rewriter: AuthorityRewriter::default(),
            ready: Vec::new(),
            ready_offset: 0,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsyncRead for ClientConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut this = self.project();
        loop {
            if *this.ready_offset < this.ready.len() {
                let available = &this.ready[*this.ready_offset..];
                let count = available.len().min(buffer.remaining());
                buffer.put_slice(&available[..count]);
                *this.ready_offset += count;
                return Poll::Ready(Ok(()));
            }
            let mut scratch = [0u8; READ_CHUNK_BYTES];
            let mut scratch_buffer = ReadBuf::new(&mut scratch);
            ready!(this.stream.as_mut().poll_read(context, &mut scratch_buffer))?;
            let filled = scratch_buffer.filled();
            if filled.is_empty() {
                return Poll::Ready(Ok(()));
            }
            this.ready.clear();
            *this.ready_offset = 0;
            // A partial frame yields nothing yet: read again.
            this.rewriter.feed(filled, this.ready);
        }
    }
}

impl AsyncWrite for ClientConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write(context, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(context)
    }
}

/// Binds a client listener; bind errors (address in use) surface before serving starts.
pub async fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Accepts client connections forever, each through the authority fix.
pub fn accept(listener: TcpListener) -> impl futures::Stream<Item = io::Result<ClientConnection>> {
    accept_streams(listener, "client").map(|stream| stream.map(ClientConnection::new))
}

/// Accepts peer connections forever (no authority fix: members send plain authorities).
pub fn accept_peers(listener: TcpListener) -> impl futures::Stream<Item = io::Result<TcpStream>> {
    accept_streams(listener, "peer")
}

/// How long the accept loop pauses after a failed accept, so a process out of file
/// descriptors (or memory) does not spin while connections close and free them.
const ACCEPT_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Accepts connections forever, each with TCP_NODELAY (gRPC is request/response). No accept
/// error ends the stream: each is logged (a listener that stopped accepting while the
/// process stays up is invisible to a supervisor), and after one the loop pauses briefly.
fn accept_streams(
    listener: TcpListener,
    what: &'static str,
) -> impl futures::Stream<Item = io::Result<TcpStream>> {
    futures::stream::unfold(listener, move |listener| async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((Ok(stream), listener));
                }
                Err(error) => {
                    tracing::warn!(%error, listener = what, "accepting a connection failed; retrying");
                    tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
                }
            }
        }
    })
}

//! Accepted client connections (production only: madsim has its own network and needs no
//! rewriting). Reads pass through `AuthorityRewriter` (after TLS, on the HTTP/2 bytes);
//! writes go straight to the connection.

use super::http2_authority::AuthorityRewriter;
use super::transport::Transport;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket per poll.
const READ_CHUNK_BYTES: usize = 16 * 1024;

pin_project_lite::pin_project! {
    pub struct ClientConnection {
        #[pin]
        stream: Transport,
        rewriter: AuthorityRewriter,
        ready: Vec<u8>,
        ready_offset: usize,
    }
}

impl ClientConnection {
    pub fn new(stream: Transport) -> Self {
        ClientConnection {
            stream,
            rewriter: AuthorityRewriter::default(),
            ready: Vec::new(),
            ready_offset: 0,
        }
    }

    pub fn transport(&self) -> &Transport {
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

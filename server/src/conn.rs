//! A connection's socket as hyper sees it, shared with the connection's requests so that a
//! waiting `/next-job` can see its client go away.
//!
//! hyper notices a client's close while a request is in flight only when it has nothing of
//! that client's buffered (no pipelined request, no body still to come). [`Peer::gone`]
//! watches the socket itself for the client's FIN or reset, whatever hyper holds.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// How often [`Peer::gone`] looks again at a socket whose receive buffer holds bytes hyper
/// has not read (pipelined past hyper's read buffer): a FIN behind them cannot be waited for,
/// only seen in the socket's readiness.
const UNREAD_BYTES_RECHECK: Duration = Duration::from_millis(500);

/// The socket of one connection, for hyper (through `TokioIo`): reads and writes as the
/// `TcpStream` does, and lends it to the connection's requests ([`Conn::peer`]).
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Arc<TcpStream>,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream: Arc::new(stream),
        }
    }

    /// A watch on this connection's client, for the requests it carries.
    pub(crate) fn peer(&self) -> Peer {
        Peer(Arc::downgrade(&self.stream))
    }

    /// One write with `write` once the socket is writable; `Pending` until it is.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match write(&self.stream) {
                // The readiness was stale (`try_write` cleared it): wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            // Into the unfilled part, initialised or not (hyper's buffers are not).
            match self.stream.try_read_buf(buf) {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |stream| stream.try_write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_with(cx, |stream| stream.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TcpStream buffers nothing of its own.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Arc::get_mut(&mut self.get_mut().stream) {
            Some(stream) => Pin::new(stream).poll_shutdown(cx),
            // A request still watches the client: hyper shuts a connection down only once its
            // requests are done, so this does not happen; the socket closes when both let go.
            None => Poll::Ready(Ok(())),
        }
    }
}

/// A request's watch on its connection's client (it does not keep the connection open).
#[derive(Clone, Debug)]
pub(crate) struct Peer(Weak<TcpStream>);

impl Peer {
    /// Completes once the client has closed its side of the connection (its FIN has arrived)
    /// or reset it; stays pending while the client is there.
    ///
    /// It looks at the socket, not at hyper: bytes hyper has read into its own buffer (a
    /// pipelined request) do not hide the FIN, since the socket then holds only the FIN and a
    /// `peek` returns 0. Bytes hyper has not read yet do: then the socket's readiness says
    /// whether a FIN came after them (EPOLLRDHUP on Linux, EV_EOF on the BSDs), checked every
    /// [`UNREAD_BYTES_RECHECK`]. A client that half-closes (shuts down its writing side and
    /// waits for the answer) counts as gone, as hyper itself treats it mid-request.
    ///
    /// Cancel-safe; it reads nothing from the connection.
    pub(crate) async fn gone(&self) {
        // Only a request's own connection can be watched; once hyper has dropped it, the
        // connection is over.
        let Some(stream) = self.0.upgrade() else {
            return;
        };
        let mut byte = [0u8; 1];
        loop {
            match stream.peek(&mut byte).await {
                // End of stream: the FIN, with nothing before it that hyper has not read.
                Ok(0) => return,
                Ok(_) => match stream.ready(Interest::READABLE).await {
                    Ok(ready) if !ready.is_read_closed() => {
                        tokio::time::sleep(UNREAD_BYTES_RECHECK).await
                    }
                    _ => return,
                },
                // Reset, or the socket failed: the client is not there either way.
                Err(_) => return,
            }
        }
    }
}

//! A connection's socket as hyper sees it, with a write timeout, and shared with the
//! connection's requests so that a waiting `/next-job` can see its client go away.
//!
//! hyper stops reading a connection while its writes block, and notices a client's close
//! while a request is in flight only when it has nothing of that client's buffered (no
//! pipelined request, no body still to come). [`Conn`] fails a write that has made no
//! progress for the write timeout (the connection is then closed), and [`Peer::gone`] watches
//! the socket itself for the client's FIN or reset, whatever hyper holds.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How often [`Peer::gone`] looks again at a socket whose receive buffer holds bytes hyper
/// has not read (pipelined past hyper's read buffer): a FIN behind them cannot be waited for,
/// only seen in the socket's readiness.
const UNREAD_BYTES_RECHECK: Duration = Duration::from_millis(500);

/// The socket of one connection, for hyper (through `TokioIo`): reads and writes as the
/// `TcpStream` does, but a write that makes no progress for `write_timeout` fails with
/// [`io::ErrorKind::TimedOut`], so that a client that does not read its answers cannot hold
/// the connection.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Arc<TcpStream>,
    write_timeout: Duration,
    /// Runs from the first write that blocked with no write done since (created at the first).
    stall: Option<Pin<Box<Sleep>>>,
    /// Whether `stall` runs: a write blocked and none has made progress since.
    stalled: bool,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream, write_timeout: Duration) -> Conn {
        Conn {
            stream: Arc::new(stream),
            write_timeout,
            stall: None,
            stalled: false,
        }
    }

    /// A watch on this connection's client, for the requests it carries.
    pub(crate) fn peer(&self) -> Peer {
        Peer(Arc::downgrade(&self.stream))
    }

    /// One write with `write` once the socket is writable; if it is not, `Pending` until it
    /// is, or an error once no write has made progress for the write timeout.
    fn poll_write_with(
        &mut self,
        cx: &mut Context<'_>,
        mut write: impl FnMut(&TcpStream) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match self.stream.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => match write(&self.stream) {
                    // The readiness was stale (`try_write` cleared it): wait again.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    result => {
                        self.stalled = false;
                        return Poll::Ready(result);
                    }
                },
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        // Blocked: the client is not reading (or not fast enough to take anything).
        if !self.stalled {
            // A timeout too long to reach is none (the socket still wakes the task).
            let Some(deadline) = Instant::now().checked_add(self.write_timeout) else {
                return Poll::Pending;
            };
            match &mut self.stall {
                Some(stall) => stall.as_mut().reset(deadline),
                None => self.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.stalled = true;
        }
        // The task is woken by whichever comes first, the socket or the deadline.
        match &mut self.stall {
            Some(stall) => ready!(stall.as_mut().poll(cx)),
            None => return Poll::Pending,
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no write progress in {:?}: the client does not read",
                self.write_timeout
            ),
        )))
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
            // The requests' `Peer`s hold weak references for as long as the connection is
            // served, so this is the usual case: the write side is not shut down here, and the
            // socket's close, when hyper drops the connection right after, sends the FIN.
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

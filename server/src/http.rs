//! The HTTP side: hyper's HTTP/1.1 server on tokio, four routes.
//!
//! - `GET /hit/{user}`: one transaction counts the request, updates the user's session and
//!   appends a log record; answers the user's hit count.
//! - `GET /stats` (or `HEAD`): one consistent snapshot, as JSON.
//! - `POST /job` (body: the job, UTF-8, at most [`Limits::max_job_bytes`]): queues a job.
//! - `GET /next-job`: waits (without holding a thread) until a job is queued, takes it and
//!   answers it with `200 OK`; if none comes within [`Limits::next_job_max_wait`], answers
//!   `204 No Content`, and the client asks again (a long poll).
//!
//! Another method on one of these paths gets `405 Method Not Allowed` with an `Allow` header;
//! another path, `404 Not Found`; a job over the limit, `413 Payload Too Large`; a job whose
//! body does not arrive within [`Limits::body_read_timeout`], `408 Request Timeout`. A
//! connection that does not send a whole request head within [`Limits::header_read_timeout`]
//! (also while idle between requests) is closed, and so is one whose client does not take
//! the answers: a write that makes no progress for [`Limits::write_timeout`] (the client's
//! receive window and the server's send buffer full) fails, and the connection with it.
//!
//! # `/next-job` and clients that go away
//!
//! A `GET /next-job` takes no body: a body it declares is read and thrown away before the
//! request waits, at most [`NEXT_JOB_MAX_BODY`] bytes (a longer one gets `413`, one that
//! does not arrive within [`Limits::body_read_timeout`] `408`, one cut off `400`); reading
//! it lets hyper see the connection's end again.
//!
//! While it waits, the request watches its connection's socket, and once the client has
//! closed it (its FIN has arrived, also behind a request it pipelined, which hyper holds
//! unread) or reset it, the wait ends before it takes a job: it is no longer counted in
//! `/stats`'s `waiting`, the connection closes, and the next job goes to a live waiter. A
//! client that only shuts down its sending side (a half-close) counts as gone too, as hyper
//! treats it mid-request. When a client pipelined more than hyper has read, the FIN behind
//! those bytes is seen from the socket's readiness (Linux's EPOLLRDHUP, the BSDs' EV_EOF),
//! checked twice a second. A client that vanishes without a FIN or a reset (its host or
//! network gone) cannot be seen: its request ends after [`Limits::next_job_max_wait`] with a
//! `204` that no one reads, and the connection with the write timeout or the next header
//! timeout. Delivery is at most once: a job whose answer is written just as its client goes
//! away is lost (nothing confirms that an answer arrived).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::conn::{Conn, Peer};
use crate::state::AppState;

/// The most body a `GET /next-job` may carry (read and thrown away; a longer one gets
/// `413 Payload Too Large`): 1 KiB.
pub const NEXT_JOB_MAX_BODY: usize = 1024;

/// What one client may hold of the server.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let limits = commute_server::http::Limits {
///     header_read_timeout: Duration::from_secs(5),
///     ..Default::default()
/// };
/// assert_eq!(limits.max_job_bytes, 1 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection may take to send a request's head, and stay idle between
    /// requests; it is closed then. Default: 30 s (hyper's).
    pub header_read_timeout: Duration,
    /// The largest job `POST /job` takes, in bytes; a larger one gets `413 Payload Too Large`
    /// (jobs are held in memory until taken). Default: 1 MiB.
    pub max_job_bytes: usize,
    /// How long a request's body (a job, or what a `GET /next-job` carries) may take to arrive
    /// once its head has; the request gets `408 Request Timeout` then, and its connection is
    /// closed. Default: 30 s.
    pub body_read_timeout: Duration,
    /// How long a write to a connection may make no progress (the client reads nothing, so
    /// the server's send buffer stays full); the connection is closed then. hyper does not
    /// read a connection while its writes block, so without it a client that pipelines
    /// requests and reads no answer would hold its connection for ever. Default: 30 s.
    pub write_timeout: Duration,
    /// How long a `GET /next-job` waits for a job before it answers `204 No Content` (the
    /// client asks again). It bounds how long a client that vanished without closing its
    /// connection holds it. Default: 30 s.
    pub next_job_max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(30),
            max_job_bytes: 1 << 20,
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            next_job_max_wait: Duration::from_secs(30),
        }
    }
}

/// How long the accept loop waits after an error that is not the connection's own (out of
/// file descriptors or memory), before it accepts again: the connections that hold them close.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts connections on `listener` for ever, serving each on a task of its own, with the
/// default [`Limits`]. Returns only when its task is dropped (or its runtime shut down).
///
/// A failed `accept` does not end it: an error of the connection itself (reset or aborted
/// before it was accepted) is skipped; any other (out of file descriptors, of memory) is
/// printed to stderr and accepting resumes after a short pause.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) {
    serve_with(listener, state, Limits::default()).await
}

/// [`serve`] with the given [`Limits`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use commute_server::http::{Limits, serve_with};
/// use commute_server::{AppState, Mode};
///
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// runtime.block_on(async {
///     let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
///     let limits = Limits { max_job_bytes: 4096, ..Limits::default() };
///     let state = Arc::new(AppState::new(Mode::Commute));
///     let server = tokio::spawn(serve_with(listener, state, limits));
///     // It serves until its task is dropped or aborted.
///     server.abort();
///     assert!(server.await.unwrap_err().is_cancelled());
/// });
/// ```
pub async fn serve_with(listener: TcpListener, state: Arc<AppState>, limits: Limits) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if connection_error(&e) => continue,
            Err(e) => {
                eprintln!("commute-server: accept: {e}; accepting again in {ACCEPT_BACKOFF:?}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // Latency only: a connection without it is still served.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let conn = Conn::new(stream, limits.write_timeout);
            let peer = conn.peer();
            let service = service_fn(move |req| {
                let state = state.clone();
                let peer = peer.clone();
                async move { Ok::<_, Infallible>(route(&state, req, limits, &peer).await) }
            });
            // A client that goes away mid-request, too slowly, or does not read its answers,
            // is not the server's error.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(conn), service)
                .await;
        });
    }
}

/// True for an `accept` error that concerns only the connection being accepted.
fn connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// Binds `127.0.0.1:port` (0: any free port) and serves `state` on the current runtime with
/// the default [`Limits`]; returns the address bound.
///
/// # Errors
///
/// If the port cannot be bound.
pub async fn start(state: Arc<AppState>, port: u16) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener, state));
    Ok(addr)
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// `405 Method Not Allowed`, naming the methods `path` takes.
fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response.headers_mut().insert(
        hyper::header::ALLOW,
        hyper::header::HeaderValue::from_static(allow),
    );
    response
}

/// The same, marked to close the connection once written.
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}

async fn route(
    state: &AppState,
    req: Request<Incoming>,
    limits: Limits,
    peer: &Peer,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    match path.as_str() {
        "/stats" => match method {
            // hyper sends no body in the answer to a HEAD.
            Method::GET | Method::HEAD => {
                let mut response = text(StatusCode::OK, state.stats().to_json(state.mode()));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                response
            }
            _ => not_allowed("GET, HEAD"),
        },
        "/next-job" => match method {
            Method::GET => next_job(state, req, limits, peer).await,
            _ => not_allowed("GET"),
        },
        "/job" => match method {
            Method::POST => post_job(state, req, limits).await,
            _ => not_allowed("POST"),
        },
        p if p.starts_with("/hit/") && p.len() > "/hit/".len() => match method {
            Method::GET => {
                let user = &p["/hit/".len()..];
                let hits = state.hit(user, p);
                text(StatusCode::OK, hits.to_string())
            }
            _ => not_allowed("GET"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Why a request's body was not read.
enum BodyError {
    /// Over the limit, declared or cut off there.
    TooLarge,
    /// Not all there within `limits.body_read_timeout`.
    TimedOut,
    /// The connection failed or ended first.
    Unreadable,
}

/// Reads the request's body, if it is at most `max` bytes long and arrives within
/// `limits.body_read_timeout`; a body declared longer is refused before it is read.
async fn read_body(req: Request<Incoming>, max: usize, limits: Limits) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    // A body without a declared length (chunked) is cut off at the limit too.
    let body = Limited::new(req.into_body(), max).collect();
    match tokio::time::timeout(limits.body_read_timeout, body).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Unreadable),
    }
}

/// `408 Request Timeout`, closing the connection (the rest of the body may still come).
fn body_timed_out(what: &str) -> Response<Full<Bytes>> {
    closing(text(
        StatusCode::REQUEST_TIMEOUT,
        format!("{what} took too long"),
    ))
}

/// Queues the request's body as a job, if it is UTF-8, at most `limits.max_job_bytes` long and
/// arrives within `limits.body_read_timeout`.
async fn post_job(
    state: &AppState,
    req: Request<Incoming>,
    limits: Limits,
) -> Response<Full<Bytes>> {
    let max = limits.max_job_bytes;
    match read_body(req, max, limits).await {
        Ok(body) => match String::from_utf8(Vec::from(body)) {
            Ok(job) => {
                state.push_job(job);
                text(StatusCode::OK, "queued")
            }
            Err(_) => text(StatusCode::BAD_REQUEST, "the job must be UTF-8"),
        },
        Err(BodyError::TooLarge) => text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a job takes at most {max} bytes"),
        ),
        Err(BodyError::TimedOut) => body_timed_out("the job's body"),
        Err(BodyError::Unreadable) => text(StatusCode::BAD_REQUEST, "unreadable body"),
    }
}

/// How a `/next-job`'s wait ended.
enum Waited {
    Job(String),
    ClientGone,
    TooLong,
}

/// `GET /next-job`: reads (and drops) the request's body, then waits for a job until one
/// comes, the client goes away, or `limits.next_job_max_wait` passes (see the module docs).
async fn next_job(
    state: &AppState,
    req: Request<Incoming>,
    limits: Limits,
    peer: &Peer,
) -> Response<Full<Bytes>> {
    let _counted = state.count_waiting();
    // While a body is due, hyper does not watch the connection for its end; once it is read,
    // it does again (and `peer` sees the socket's end either way).
    match read_body(req, NEXT_JOB_MAX_BODY, limits).await {
        Ok(_) => {}
        Err(BodyError::TooLarge) => {
            return closing(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("GET /next-job takes no body (at most {NEXT_JOB_MAX_BODY} bytes, ignored)"),
            ));
        }
        Err(BodyError::TimedOut) => return body_timed_out("the request's body"),
        Err(BodyError::Unreadable) => {
            return closing(text(StatusCode::BAD_REQUEST, "unreadable body"));
        }
    }
    let mut job = std::pin::pin!(state.take_job());
    let mut gone = std::pin::pin!(peer.gone());
    let mut too_long = std::pin::pin!(tokio::time::sleep(limits.next_job_max_wait));
    // In this order: a client that has gone takes no job, even one that is there; a job that
    // is there is taken, even at the deadline. Dropping `job` unfinished takes none.
    let waited = std::future::poll_fn(|cx| {
        if gone.as_mut().poll(cx).is_ready() {
            Poll::Ready(Waited::ClientGone)
        } else if let Poll::Ready(job) = job.as_mut().poll(cx) {
            Poll::Ready(Waited::Job(job))
        } else if too_long.as_mut().poll(cx).is_ready() {
            Poll::Ready(Waited::TooLong)
        } else {
            Poll::Pending
        }
    })
    .await;
    match waited {
        Waited::Job(job) => text(StatusCode::OK, job),
        Waited::TooLong => text(StatusCode::NO_CONTENT, ""),
        // If it only half-closed, the client still reads this.
        Waited::ClientGone => closing(text(StatusCode::NO_CONTENT, "")),
    }
}

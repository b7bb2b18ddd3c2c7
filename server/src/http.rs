//! The HTTP side: hyper's HTTP/1.1 server on tokio, four routes.
//!
//! - `GET /hit/{user}`: one transaction counts the request, updates the user's session and
//!   appends a log record; answers the user's hit count.
//! - `GET /stats`: one consistent snapshot, as JSON.
//! - `POST /job` (body: the job): queues a job.
//! - `GET /next-job`: waits (without holding a thread) until a job is queued, takes it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::state::AppState;

/// Accepts connections on `listener` for ever, serving each on a task of its own.
///
/// # Errors
///
/// If accepting fails.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, req).await) }
            });
            // A client that goes away mid-request is not the server's error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds `127.0.0.1:port` (0: any free port) and serves `state` on the current runtime;
/// returns the address bound.
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

async fn route(state: &AppState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/stats") => {
            let mut response = text(StatusCode::OK, state.stats().to_json(state.mode()));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            response
        }
        (&Method::GET, "/next-job") => text(StatusCode::OK, state.next_job().await),
        (&Method::POST, "/job") => match req.into_body().collect().await {
            Ok(body) => match String::from_utf8(body.to_bytes().to_vec()) {
                Ok(job) => {
                    state.push_job(job);
                    text(StatusCode::OK, "queued")
                }
                Err(_) => text(StatusCode::BAD_REQUEST, "the job must be UTF-8"),
            },
            Err(_) => text(StatusCode::BAD_REQUEST, "unreadable body"),
        },
        (&Method::GET, p) if p.starts_with("/hit/") && p.len() > "/hit/".len() => {
            let user = &p["/hit/".len()..];
            let hits = state.hit(user, p);
            text(StatusCode::OK, hits.to_string())
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}

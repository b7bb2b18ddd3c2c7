//! Helpers shared by the server's test files (each test file is its own crate and includes this
//! module with `mod common;`).

use std::net::SocketAddr;
use std::sync::Arc;

use commute_server::http::{Limits, serve_with};
use commute_server::{AppState, Mode};
use tokio::runtime::Runtime;

/// Starts a server with `limits` over a fresh state of `mode`, on a local port, in a runtime of
/// one worker thread that the caller keeps (the server stops when it is dropped); returns the
/// runtime, the server's address and its state.
pub(crate) fn serve_limited(mode: Mode, limits: Limits) -> (Runtime, SocketAddr, Arc<AppState>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(AppState::new(mode));
    runtime.spawn(serve_with(listener, state.clone(), limits));
    (runtime, addr, state)
}

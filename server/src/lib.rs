//! commute-server: a small HTTP server on hyper and tokio whose state lives in commute's
//! collections, or, for comparison, in one `std::sync::Mutex`.
//!
//! `GET /hit/{user}` runs one transaction over a [`TCounter`](commute::TCounter) (requests),
//! a [`TMap`](commute::TMap) (sessions) and a [`TQueue`](commute::TQueue) (the log);
//! `GET /stats` reads all of them in one transaction; `GET /next-job` awaits a job through
//! [`pop_wait_async`](commute::Atomic::pop_wait_async), which waits on the task's waker, not on
//! a thread (for at most [`Limits::next_job_max_wait`](http::Limits::next_job_max_wait), and no
//! longer once its client has gone, see [`http`]); `POST /job` queues one. The binary is
//! `commute-server --state commute|mutex --workers N --port P [--write-timeout S]
//! [--next-job-max-wait S]`; `load` drives it (see the README's "In a tokio server").
//!
//! # Examples
//!
//! ```
//! use commute_server::{Mode, start_in_process, client::Connection, state::Stats};
//!
//! let server = start_in_process(Mode::Commute, 1).unwrap();
//! let client = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let stats = client.block_on(async {
//!     let mut conn = Connection::open(server.addr).await.unwrap();
//!     assert_eq!(conn.get("/hit/ada").await.unwrap(), "1");
//!     assert_eq!(conn.get("/hit/ada").await.unwrap(), "2");
//!     Stats::from_json(&conn.get("/stats").await.unwrap()).unwrap()
//! });
//! assert_eq!((stats.requests, stats.sessions, stats.log_len, stats.hits_sum), (2, 1, 2, 2));
//! ```

pub mod client;
mod conn;
pub mod http;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

pub use state::{AppState, Mode};

/// A server running in this process on a runtime of its own.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, to inspect directly.
    pub state: Arc<AppState>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Waiting requests (`/next-job`) are cancelled, not waited for.
            rt.shutdown_background();
        }
    }
}

/// Starts a server with a fresh state of `mode` on 127.0.0.1, any free port, on a
/// multi-thread tokio runtime with `workers` worker threads.
///
/// # Errors
///
/// If the runtime cannot start or no port can be bound.
pub fn start_in_process(mode: Mode, workers: usize) -> std::io::Result<Running> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .thread_name("server-worker")
        .enable_all()
        .build()?;
    let state = Arc::new(AppState::new(mode));
    let addr = runtime.block_on(http::start(state.clone(), 0))?;
    Ok(Running {
        addr,
        state,
        runtime: Some(runtime),
    })
}

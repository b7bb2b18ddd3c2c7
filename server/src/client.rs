//! A real HTTP/1.1 client (hyper's, one keep-alive connection per task) and the load
//! generator that the integration test and the `load` benchmark share.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What can go wrong on the client side.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// If the connection or the HTTP handshake fails.
    pub async fn open(addr: SocketAddr) -> Result<Connection, Error> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes.
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            host: addr.to_string(),
        })
    }

    /// Sends one request and reads the whole answer.
    ///
    /// # Errors
    ///
    /// If the connection fails or the body is not UTF-8.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: &str,
    ) -> Result<(StatusCode, String), Error> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host)
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8(bytes.to_vec())?))
    }

    /// `GET path`; the body, if the status is 200.
    ///
    /// # Errors
    ///
    /// As [`request`](Connection::request), or a status other than 200.
    pub async fn get(&mut self, path: &str) -> Result<String, Error> {
        match self.request(Method::GET, path, "").await? {
            (StatusCode::OK, body) => Ok(body),
            (status, body) => Err(format!("GET {path}: {status} {body}").into()),
        }
    }

    /// `POST path` with `body`; the answer's body, if the status is 200.
    ///
    /// # Errors
    ///
    /// As [`get`](Connection::get).
    pub async fn post(&mut self, path: &str, body: &str) -> Result<String, Error> {
        match self.request(Method::POST, path, body).await? {
            (StatusCode::OK, answer) => Ok(answer),
            (status, answer) => Err(format!("POST {path}: {status} {answer}").into()),
        }
    }
}

/// The user of the `i`-th request of a load run: every user in `0..users` is hit when
/// `requests >= users`, spread over the connections.
///
/// # Panics
///
/// If `users` is 0.
pub fn user_of(i: usize, users: usize) -> usize {
    i % users
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Requests sent (and answered with 200).
    pub requests: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Latency of every request, sorted.
    pub latencies: Vec<Duration>,
}

impl LoadReport {
    /// Requests per second.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which a fraction `q` of the requests finished.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }
}

/// Sends `requests` `GET /hit/u{n}` requests over `connections` concurrent keep-alive
/// connections (request `i` goes to connection `i % connections`, user [`user_of`]`(i)`).
///
/// # Errors
///
/// The first failed request; the requests still in flight on other connections are
/// cancelled.
///
/// # Panics
///
/// If `connections` or `users` is 0.
pub async fn run_load(
    addr: SocketAddr,
    connections: usize,
    requests: usize,
    users: usize,
) -> Result<LoadReport, Error> {
    assert!(connections > 0, "run_load: connections must be at least 1");
    assert!(users > 0, "run_load: users must be at least 1");
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(Connection::open(addr).await?);
    }
    let started = Instant::now();
    // Dropped on the first error: that aborts the other connections' tasks.
    let mut tasks = tokio::task::JoinSet::new();
    for (c, mut conn) in opened.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            for i in (c..requests).step_by(connections) {
                let path = format!("/hit/u{}", user_of(i, users));
                let sent = Instant::now();
                conn.get(&path).await?;
                latencies.push(sent.elapsed());
            }
            Ok::<_, Error>(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(requests);
    while let Some(task) = tasks.join_next().await {
        latencies.extend(task??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(LoadReport {
        requests: latencies.len(),
        elapsed,
        latencies,
    })
}

//! A client that sends requests and never reads the answers held its connection for ever: once
//! the server's writes block, hyper stops reading, so the header-read timeout (the one limit on
//! a connection's life then) never ran, and there was no write timeout. With enough such
//! connections the server was out of file descriptors and answered no one, though the README
//! says "a client cannot take it down" (the idle-connection case of the same attack was fixed
//! with the header timeout, `binaries.rs`). Now a write that makes no progress for
//! `Limits::write_timeout` (`--write-timeout`, short here) closes the connection. (An auditor's
//! test; it failed before the fix.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use commute_test_support::with_watchdog;

/// A child process killed when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How long a write of the client's may wait before the test counts it as blocked.
const BLOCKED: Duration = Duration::from_millis(100);

/// A connection that pipelines requests until its writes block (the server has stopped
/// reading it) and then reads nothing; its receive buffer is small, so the server's answers
/// fill the server's send buffer quickly.
fn stalled(addr: SocketAddr, runtime: &tokio::runtime::Runtime) -> TcpStream {
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        stream.into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream.set_write_timeout(Some(BLOCKED)).unwrap();
    // Jobs of 256 KiB, each taken back by the `GET /next-job` behind it: 8 MiB of answers, more
    // than the server's send buffer (4 MB at most here) and hyper's hold, from a few dozen
    // requests (`GET /stats` took some 200,000 requests and a second of the server's time).
    // Then `GET /stats`.
    let job = 256 << 10;
    let mut jobs = Vec::new();
    for _ in 0..32 {
        jobs.extend_from_slice(
            format!("POST /job HTTP/1.1\r\nHost: x\r\nContent-Length: {job}\r\n\r\n").as_bytes(),
        );
        jobs.resize(jobs.len() + job, b'j');
        jobs.extend_from_slice(b"GET /next-job HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    let requests = b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    let mut stream = stream;
    let mut sent = 0usize;
    // The jobs and at most 8 MB more; stop once a write has blocked (the server has stopped
    // reading, or will once it has answered what it has: the jobs' answers alone fill it).
    while sent < jobs.len() + (8 << 20) {
        let chunk = jobs.get(sent..).filter(|rest| !rest.is_empty());
        let started = Instant::now();
        match stream.write(chunk.unwrap_or(&requests)) {
            Ok(n) if started.elapsed() < BLOCKED => sent += n,
            _ => break,
        }
    }
    stream
}

#[test]
fn clients_that_do_not_read_their_answers_do_not_take_the_server_down() {
    with_watchdog(90, || {
        let bin = env!("CARGO_BIN_EXE_commute-server");
        // The server process may hold 24 descriptors (some are the runtime's own); a write
        // that makes no progress for 2 s closes its connection.
        let mut server = Server(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "ulimit -n 24 && exec '{bin}' --port 0 --workers 1 --write-timeout 2"
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("sh starts"),
        );
        let mut line = String::new();
        BufReader::new(server.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr: SocketAddr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // As many connections as the server has descriptors; the client keeps them open and
        // reads none of them.
        let held: Vec<TcpStream> = (0..24).map(|_| stalled(addr, &runtime)).collect();

        // A well-behaved client. The write timeout is 2 s and the other limits 30 s: give the
        // server 20 s to shed the connections that do not read (bounded by a read timeout, not
        // a sleep; it ends as soon as the answer comes).
        let mut asking = TcpStream::connect(addr).unwrap();
        asking
            .write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        asking
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut answer = String::new();
        let read = asking.read_to_string(&mut answer);
        let exited = server.0.try_wait().unwrap();
        // Once the client closes them, the server recovers: they, not its load, held it.
        drop(held);
        let mut after = TcpStream::connect(addr).unwrap();
        after
            .write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        after
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut recovered = String::new();
        let _ = after.read_to_string(&mut recovered);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "with 24 connections that do not read their answers held open, a new client's \
             GET /stats got {read:?} {answer:?} within 20 s; the server: {exited:?}; once they \
             closed, a GET /stats got {:?}",
            recovered.lines().next()
        );
    });
}

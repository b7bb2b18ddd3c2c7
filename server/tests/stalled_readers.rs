//! A client that sends requests and never reads the answers holds its connection for ever: once
//! the server's writes block, hyper stops reading, so the header-read timeout (the one limit on
//! a connection's life) never runs, and there is no write timeout. With enough such connections
//! the server is out of file descriptors and answers no one, though the README says "a client
//! cannot take it down" (the idle-connection case of the same attack was fixed with the header
//! timeout, `binaries.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use commute_test_support::with_watchdog;

/// A child process killed when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A connection that pipelines `GET /stats` until its writes block (the server has stopped
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
    stream
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let requests = b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    let mut stream = stream;
    let mut sent = 0usize;
    // At most 8 MB; stop once a write has blocked for 300 ms.
    while sent < 8 << 20 {
        match stream.write(&requests) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    stream
}

#[test]
fn clients_that_do_not_read_their_answers_do_not_take_the_server_down() {
    with_watchdog(150, || {
        let bin = env!("CARGO_BIN_EXE_commute-server");
        // The server process may hold 24 descriptors (some are the runtime's own).
        let mut server = Server(
            Command::new("sh")
                .arg("-c")
                .arg(format!("ulimit -n 24 && exec '{bin}' --port 0 --workers 1"))
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

        // A well-behaved client. The other limits are 30 s: give the server twice that to shed
        // the connections that do not read (bounded by a read timeout, not a sleep).
        let mut asking = TcpStream::connect(addr).unwrap();
        asking
            .write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        asking
            .set_read_timeout(Some(Duration::from_secs(65)))
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
             GET /stats got {read:?} {answer:?} within 65 s; the server: {exited:?}; once they \
             closed, a GET /stats got {:?}",
            recovered.lines().next()
        );
    });
}

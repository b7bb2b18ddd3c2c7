//! A `GET /next-job` whose client has gone away must not stay a waiter: it must not be counted
//! in `/stats`'s `waiting`, hold its connection, or take a job that no one will receive.
//!
//! hyper notices a closed connection while a request is in flight only when nothing else is
//! buffered on it: a client that pipelines a second request behind its `/next-job` (or declares
//! a body it does not send) and then closes leaves a waiter for ever, its socket in CLOSE_WAIT,
//! and the next job posted goes to that waiter and is lost ("queued", then no `/next-job`
//! gets it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use commute_server::{Mode, Running, start_in_process};
use commute_test_support::with_watchdog;

/// Sends `raw` on a fresh connection and reads until the server closes it or `timeout` passes.
fn exchange(addr: SocketAddr, raw: &[u8], timeout: Duration) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Polls the server's own count of waiting `/next-job` requests until it equals `n`, for at
/// most `within`; returns the last count seen.
fn wait_for_waiting(server: &Running, n: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let waiting = server.state.stats().waiting;
        if waiting == n || Instant::now() > deadline {
            return waiting;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn a_closed_waiter_takes_no_job(mode: Mode, request: &[u8]) {
    let server = start_in_process(mode, 1).unwrap();
    let mut problems = Vec::new();

    let mut gone = TcpStream::connect(server.addr).unwrap();
    gone.write_all(request).unwrap();
    assert_eq!(
        wait_for_waiting(&server, 1, Duration::from_secs(10)),
        1,
        "the request is waiting"
    );
    // The client goes away (FIN, as a process that exits or a cancelled fetch does).
    drop(gone);
    let left = wait_for_waiting(&server, 0, Duration::from_secs(10));
    if left != 0 {
        problems.push(format!(
            "10 s after its client closed, /stats still counts {left} waiting /next-job"
        ));
    }

    let posted = exchange(
        server.addr,
        b"POST /job HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        Duration::from_secs(10),
    );
    assert!(posted.ends_with("queued"), "POST /job: {posted:?}");
    let taken = exchange(
        server.addr,
        b"GET /next-job HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    if !taken.ends_with("\r\n\r\nhello") {
        let stats = server.state.stats();
        problems.push(format!(
            "the job posted after the waiter's client closed is lost: a new GET /next-job got \
             {taken:?} within 10 s; /stats then: jobs {}, waiting {}",
            stats.jobs, stats.waiting
        ));
    }
    assert!(problems.is_empty(), "{mode:?}:\n{}", problems.join("\n"));
}

const PIPELINED: &[u8] =
    b"GET /next-job HTTP/1.1\r\nHost: x\r\n\r\nGET /stats HTTP/1.1\r\nHost: x\r\n\r\n";
const BODY_NOT_SENT: &[u8] = b"GET /next-job HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";

#[test]
fn a_pipelined_waiter_whose_client_closed_takes_no_job_commute() {
    with_watchdog(60, || {
        a_closed_waiter_takes_no_job(Mode::Commute, PIPELINED)
    });
}

#[test]
fn a_pipelined_waiter_whose_client_closed_takes_no_job_mutex() {
    with_watchdog(60, || a_closed_waiter_takes_no_job(Mode::Mutex, PIPELINED));
}

#[test]
fn a_waiter_with_an_unsent_body_whose_client_closed_takes_no_job() {
    with_watchdog(60, || {
        a_closed_waiter_takes_no_job(Mode::Commute, BODY_NOT_SENT)
    });
}

/// More pipelined behind the `/next-job` than hyper reads at once (it reads 8 KiB first): the
/// client's FIN lies behind bytes that hyper has not read, where a `peek` cannot see it; the
/// socket's readiness shows it (checked twice a second). (Added with the fix.)
#[test]
fn a_waiter_pipelined_past_hypers_buffer_whose_client_closed_takes_no_job() {
    with_watchdog(60, || {
        let mut request = b"GET /next-job HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        request.extend_from_slice(&b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000));
        a_closed_waiter_takes_no_job(Mode::Commute, &request)
    });
}

/// The control: a plain `/next-job` whose client closes is cancelled (this holds today).
#[test]
fn a_plain_waiter_whose_client_closed_takes_no_job() {
    with_watchdog(60, || {
        a_closed_waiter_takes_no_job(Mode::Commute, b"GET /next-job HTTP/1.1\r\nHost: x\r\n\r\n")
    });
}

//! What the server does with requests it does not serve, and with clients that hold on to it:
//! a wrong method, a job too large, a request head that never ends; and the load generator's
//! refusal of a run that would send nothing. (A reviewer's tests; each failed before its fix.)

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use commute_server::client::run_load;
use commute_server::http::{Limits, NEXT_JOB_MAX_BODY};
use commute_server::{Mode, start_in_process};
use commute_test_support::{panic_message, with_watchdog};

/// Sends `head` (and `body`) on a fresh connection and reads the whole answer; the server may
/// close its side early, so a failed write ends the sending.
fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(64 << 10) {
        if stream.write_all(chunk).is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn ask(addr: SocketAddr, method: &str, path: &str) -> String {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    exchange(addr, &head, &[])
}

/// A known path asked with another method is `405` with an `Allow` header, not `404`; `HEAD`
/// works where `GET` does (`/stats`), without a body. Nothing changes the state.
#[test]
fn a_wrong_method_is_405_and_head_works_where_get_does() {
    with_watchdog(30, || {
        let server = start_in_process(Mode::Mutex, 1).unwrap();
        for (method, path, allow) in [
            ("POST", "/stats", "GET, HEAD"),
            ("GET", "/job", "POST"),
            ("DELETE", "/hit/ada", "GET"),
            ("POST", "/next-job", "GET"),
            ("HEAD", "/hit/ada", "GET"),
        ] {
            let answer = ask(server.addr, method, path);
            assert!(
                answer.starts_with("HTTP/1.1 405")
                    && answer
                        .to_ascii_lowercase()
                        .contains(&format!("\r\nallow: {}\r\n", allow.to_ascii_lowercase())),
                "{method} {path}: {answer:?}"
            );
        }
        assert!(ask(server.addr, "GET", "/nowhere").starts_with("HTTP/1.1 404"));
        let head = ask(server.addr, "HEAD", "/stats");
        assert!(head.starts_with("HTTP/1.1 200"), "HEAD /stats: {head:?}");
        assert!(
            head.ends_with("\r\n\r\n"),
            "a HEAD answer has no body: {head:?}"
        );
        let stats = server.state.stats();
        assert_eq!(
            (stats.requests, stats.jobs),
            (0, 0),
            "nothing was hit or queued"
        );
    });
}

/// A job over [`Limits::max_job_bytes`] gets `413` and is not queued, whether its length is
/// declared (refused before its body is read) or its body is chunked (cut off at the limit);
/// one of exactly the limit is queued.
#[test]
fn a_job_over_the_limit_is_413_and_not_queued() {
    with_watchdog(60, || {
        let server = start_in_process(Mode::Commute, 1).unwrap();
        let max = Limits::default().max_job_bytes;
        let over = vec![b'j'; max + 1];
        let declared = format!(
            "POST /job HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            over.len()
        );
        let answer = exchange(server.addr, &declared, &over);
        assert!(answer.starts_with("HTTP/1.1 413"), "declared: {answer:?}");

        let mut chunked = Vec::new();
        for piece in over.chunks(64 << 10) {
            chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            chunked.extend_from_slice(piece);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let head = "POST /job HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        let answer = exchange(server.addr, head, &chunked);
        assert!(answer.starts_with("HTTP/1.1 413"), "chunked: {answer:?}");
        assert_eq!(
            server.state.stats().jobs,
            0,
            "no job over the limit was queued"
        );

        let exact = format!(
            "POST /job HTTP/1.1\r\nHost: x\r\nContent-Length: {max}\r\nConnection: close\r\n\r\n"
        );
        let answer = exchange(server.addr, &exact, &over[..max]);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "at the limit: {answer:?}"
        );
        assert_eq!(server.state.stats().jobs, 1);
    });
}

/// A connection that sends part of a request head and then nothing is closed once
/// [`Limits::header_read_timeout`] has passed (it was held for ever: hyper's timeout needs a
/// timer, which the server did not give it); a job whose body stops coming gets `408` once
/// [`Limits::body_read_timeout`] has passed (it was held for ever too), and is not queued.
#[test]
fn a_request_that_never_ends_is_closed_after_its_timeout() {
    with_watchdog(60, || {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(500),
            body_read_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let (_runtime, addr, state) = common::serve_limited(Mode::Commute, limits);

        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(b"GET /sta").unwrap();
        // Forty times the timeout: a connection still open then is held for good.
        slow.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 256];
        let read = slow.read(&mut buf);
        let still_open = matches!(&read, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        assert!(
            !still_open,
            "the server still holds the connection: {read:?}"
        );

        let head = "POST /job HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
        let answer = exchange(addr, head, b"abc");
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a body that stopped: {answer:?}"
        );
        assert_eq!(state.stats().jobs, 0, "nothing was queued");
    });
}

/// A `GET /next-job` reads its body before it waits: a small one is ignored (the request then
/// takes a job as any does), one declared over [`NEXT_JOB_MAX_BODY`] gets `413`, one that
/// stops coming `408` after [`Limits::body_read_timeout`]; and with no job for
/// [`Limits::next_job_max_wait`], the answer is `204 No Content`. None of them is left
/// waiting. (Added with the fix for waiters whose clients had gone.)
#[test]
fn next_job_reads_its_body_first_and_waits_at_most_its_limit() {
    with_watchdog(60, || {
        let limits = Limits {
            body_read_timeout: Duration::from_millis(500),
            next_job_max_wait: Duration::from_millis(500),
            ..Limits::default()
        };
        let (_runtime, addr, state) = common::serve_limited(Mode::Mutex, limits);

        state.push_job("resize".to_owned());
        let head =
            "GET /next-job HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
        let answer = exchange(addr, head, b"hello");
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\nresize"),
            "a small body: {answer:?}"
        );

        let over = NEXT_JOB_MAX_BODY + 1;
        let head = format!(
            "GET /next-job HTTP/1.1\r\nHost: x\r\nContent-Length: {over}\r\nConnection: close\r\n\r\n"
        );
        let answer = exchange(addr, &head, &vec![b'b'; over]);
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "a long body: {answer:?}"
        );

        let head = "GET /next-job HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
        let answer = exchange(addr, head, b"abc");
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "a body that stopped: {answer:?}"
        );

        let started = Instant::now();
        let answer = ask(addr, "GET", "/next-job");
        assert!(
            answer.starts_with("HTTP/1.1 204") && started.elapsed() >= limits.next_job_max_wait,
            "no job: {answer:?} after {:?}",
            started.elapsed()
        );
        let stats = state.stats();
        assert_eq!((stats.jobs, stats.waiting), (0, 0), "none waits");
    });
}

/// `run_load` with no connections, or no users, panics (documented) instead of reporting an
/// empty success (no connections) or panicking in a task while the others go on (no users).
#[test]
fn run_load_without_connections_or_users_panics() {
    with_watchdog(30, || {
        let server = start_in_process(Mode::Commute, 1).unwrap();
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for (connections, users, expected) in [(0, 5, "connections"), (4, 0, "users")] {
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                client.block_on(run_load(server.addr, connections, 100, users))
            }));
            let message = panic_message(&*run.expect_err("run_load panics"));
            assert!(
                message.contains(&format!("{expected} must be at least 1")),
                "{message}"
            );
        }
        assert_eq!(server.state.stats().requests, 0, "nothing was sent");
    });
}

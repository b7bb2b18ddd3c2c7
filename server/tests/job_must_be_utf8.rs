//! `POST /job` takes a UTF-8 body only: another body gets `400 Bad Request` and is not queued
//! (not queued with its bytes replaced), and the UTF-8 job posted next is the one a
//! `GET /next-job` takes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use commute_server::{Mode, start_in_process};
use commute_test_support::with_watchdog;

fn exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn post(addr: SocketAddr, body: &[u8]) -> String {
    let mut raw = format!(
        "POST /job HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw)
}

#[test]
fn a_job_that_is_not_utf8_is_400_and_not_queued() {
    with_watchdog(30, || {
        for mode in [Mode::Commute, Mode::Mutex] {
            let server = start_in_process(mode, 1).unwrap();
            let answer = post(server.addr, b"resize \xff\xfe photo");
            assert!(answer.starts_with("HTTP/1.1 400"), "{mode:?}: {answer:?}");
            assert_eq!(server.state.stats().jobs, 0, "{mode:?}: nothing queued");
            let answer = post(server.addr, "resize ☃".as_bytes());
            assert!(answer.starts_with("HTTP/1.1 200"), "{mode:?}: {answer:?}");
            let taken = exchange(
                server.addr,
                b"GET /next-job HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            );
            assert!(
                taken.starts_with("HTTP/1.1 200") && taken.ends_with("\r\n\r\nresize ☃"),
                "{mode:?}: {taken:?}"
            );
            assert_eq!(server.state.stats().jobs, 0, "{mode:?}");
        }
    });
}

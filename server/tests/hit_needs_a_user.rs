//! `GET /hit/` names no user: it is `404 Not Found` and counts nothing (no session for an
//! empty name).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use commute_server::{Mode, start_in_process};
use commute_test_support::with_watchdog;

#[test]
fn hit_without_a_user_is_404_and_counts_nothing() {
    with_watchdog(30, || {
        for mode in [Mode::Commute, Mode::Mutex] {
            let server = start_in_process(mode, 1).unwrap();
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            stream
                .write_all(b"GET /hit/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            assert!(answer.starts_with("HTTP/1.1 404"), "{mode:?}: {answer:?}");
            let stats = server.state.stats();
            assert_eq!(
                (stats.requests, stats.sessions, stats.log_len),
                (0, 0, 0),
                "{mode:?}"
            );
        }
    });
}

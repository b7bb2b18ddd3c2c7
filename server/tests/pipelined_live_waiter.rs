//! A `GET /next-job` pipelined with more requests than hyper reads at once (so that bytes of
//! its client stay unread in the socket) whose client stays connected is a live waiter: it
//! keeps waiting, and a job posted later goes to it. (The watch for clients that went away
//! looks at unread bytes too: they must not count as a close.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use commute_server::{Mode, Running, start_in_process};
use commute_test_support::with_watchdog;

/// Polls the server's count of waiting `/next-job` requests until it equals `n` (or 10 s
/// pass); returns the last count seen.
fn wait_for_waiting(server: &Running, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = server.state.stats().waiting;
        if waiting == n || Instant::now() > deadline {
            return waiting;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_pipelining_client_that_stays_gets_the_job() {
    with_watchdog(60, || {
        let server = start_in_process(Mode::Commute, 1).unwrap();
        let mut request = b"GET /next-job HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        request.extend_from_slice(&b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000));
        let mut client = TcpStream::connect(server.addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        client.write_all(&request).unwrap();
        assert_eq!(wait_for_waiting(&server, 1), 1, "the request waits");
        // Past the watch's recheck of unread bytes (twice a second): still waiting, and no
        // answer sent yet.
        let deadline = Instant::now() + Duration::from_millis(1200);
        while Instant::now() < deadline {
            assert_eq!(
                server.state.stats().waiting,
                1,
                "the live client still waits"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server.state.push_job("thumbnail 7".to_owned());
        // The first answer on the connection is the job's.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            let n = client.read(&mut buf).expect("an answer within 20 s");
            assert!(
                n > 0,
                "the server closed: {:?}",
                String::from_utf8_lossy(&answer)
            );
            answer.extend_from_slice(&buf[..n]);
            if let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n")
                && answer.len() >= i + 4 + "thumbnail 7".len()
            {
                break i + 4;
            }
        };
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 200") && answer[head_end..].starts_with(b"thumbnail 7"),
            "the first answer: {:?}",
            &text[..text.len().min(300)]
        );
        assert_eq!(server.state.stats().jobs, 0, "the job was taken");
    });
}

//! A client that reads its answer slowly, pausing for less than the write timeout each time
//! and then taking megabytes, is served to the end: the write timeout counts from the last
//! write that made progress, not from the first write that blocked.

mod common;

use std::io::Read;
use std::time::Duration;

use commute_server::Mode;
use commute_server::http::Limits;
use commute_test_support::with_watchdog;

#[test]
fn a_slow_reader_that_makes_progress_is_not_cut_off() {
    with_watchdog(60, || {
        let write_timeout = Duration::from_secs(4);
        let limits = Limits {
            write_timeout,
            max_job_bytes: 64 << 20,
            ..Limits::default()
        };
        let (runtime, addr, state) = common::serve_limited(Mode::Mutex, limits);

        // 24 MiB: more than the server's send buffer (4 MB at most here) several times over.
        let job = 24 << 20;
        state.push_job("j".repeat(job));
        let mut client = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.connect(addr).await.unwrap().into_std().unwrap()
        });
        client.set_nonblocking(false).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        std::io::Write::write_all(
            &mut client,
            b"GET /next-job HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        let mut read = |client: &mut std::net::TcpStream, at_least: usize| -> usize {
            let mut n = 0;
            while n < at_least {
                match client.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => n += k,
                }
            }
            n
        };
        // Six pauses of a quarter of the write timeout (the slow client's behaviour, not a
        // synchronisation; a quarter leaves room for a loaded machine), each followed by a read
        // of 3 MiB, so that the server's writes make progress after each pause and block again
        // before the next; together longer than the timeout.
        for _ in 0..6 {
            std::thread::sleep(write_timeout / 4);
            got += read(&mut client, 3 << 20);
        }
        got += read(&mut client, usize::MAX);
        // The head (under 200 bytes) and the whole job.
        assert!(
            got > job && got < job + 200,
            "read {got} bytes of a {job}-byte job's answer before the server closed"
        );
    });
}

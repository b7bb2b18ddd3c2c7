//! The two binaries as a user runs them: `commute-server` survives running out of file
//! descriptors, and `--help` is not an error. (A reviewer's tests; each failed before its fix.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use commute_test_support::{output_within, with_watchdog};

/// A child process killed when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// More connections than the server's file descriptors: its `accept` fails (EMFILE) while
/// they are open, and the server waits them out instead of ending (it printed "Too many open
/// files" and exited with status 1, and a server in-process stopped accepting). Once the idle
/// clients go, the request that waited behind them is answered.
#[test]
fn running_out_of_file_descriptors_does_not_end_the_server() {
    with_watchdog(60, || {
        let bin = env!("CARGO_BIN_EXE_commute-server");
        // The server process may hold 32 descriptors (some are the runtime's own).
        let mut server = Server(
            Command::new("sh")
                .arg("-c")
                .arg(format!("ulimit -n 32 && exec '{bin}' --port 0 --workers 1"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
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

        // 64 idle connections: more than the server can hold at once.
        let idle: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut asking = TcpStream::connect(addr).unwrap();
        asking
            .write_all(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        // The idle clients go away: their descriptors free up, and the server can take the
        // waiting request (bounded by a read timeout, not a sleep).
        drop(idle);
        asking
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut answer = String::new();
        let read = asking.read_to_string(&mut answer);
        let exited = server.0.try_wait().unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains("\"requests\":0"),
            "the waiting request got {read:?} {answer:?}; the server: {exited:?}"
        );
        assert!(exited.is_none(), "the server is still running");
    });
}

/// `--help` prints the usage to stdout and exits 0, for both binaries (`commute-server` exited
/// 2, as for a bad flag; `load` said "--help needs a value").
#[test]
fn help_is_not_an_error() {
    for bin in [
        env!("CARGO_BIN_EXE_commute-server"),
        env!("CARGO_BIN_EXE_load"),
    ] {
        let out = output_within(Command::new(bin).arg("--help"), 30);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.starts_with("usage:"),
            "{bin} --help: {}, stdout {stdout:?}, stderr {:?}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// More worker threads than the server takes is a usage error (status 2, the usage on stderr),
/// not an abort of the process ("fatal runtime error", status 134, when the system could not
/// start them all).
#[test]
fn too_many_workers_is_a_usage_error() {
    let bin = env!("CARGO_BIN_EXE_commute-server");
    let out = output_within(
        Command::new(bin).args(["--port", "0", "--workers", "100000"]),
        30,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && stderr.contains("usage:"),
        "--workers 100000: {}, stderr {stderr:?}",
        out.status
    );
}

/// A worker count within the range (1 to 1,024) that the system cannot start (here: an
/// address space too small for 1,024 thread stacks) is a usage error too (`cannot start N
/// worker threads`), not a process that panics in tokio's `Builder::build` ("OS can't spawn
/// worker thread") and then hangs for ever, neither listening nor exiting (a reviewer's test;
/// it failed before).
#[test]
fn workers_the_system_cannot_start_are_a_usage_error_not_a_hang() {
    let bin = env!("CARGO_BIN_EXE_commute-server");
    let out = output_within(
        Command::new("sh").arg("-c").arg(format!(
            "ulimit -v 800000 && exec '{bin}' --port 0 --workers 1024"
        )),
        20,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(2) && stderr.contains("usage:"),
        "--workers 1024 under ulimit -v 800000: {}, stdout {:?}, stderr {stderr:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

//! `--write-timeout` and `--next-job-max-wait` take at least one second: 0 (a write that blocks
//! once would close its connection, a `/next-job` would never wait) is a usage error, status 2
//! with the usage on stderr, not a server that starts.

use std::process::Command;

use commute_test_support::output_within;

#[test]
fn zero_seconds_is_a_usage_error() {
    let bin = env!("CARGO_BIN_EXE_commute-server");
    for flag in ["--write-timeout", "--next-job-max-wait"] {
        let out = output_within(Command::new(bin).args(["--port", "0", flag, "0"]), 20);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(2)
                && stderr.contains("1 to 86400")
                && stderr.contains("usage:"),
            "{flag} 0: {}, stdout {:?}, stderr {stderr:?}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

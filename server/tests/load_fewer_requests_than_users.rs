//! The `load` binary with fewer requests than users: only `requests` users are hit, and the
//! run's `/stats` check expects that many sessions (it must pass, not report a wrong count).

use std::process::Command;

use commute_test_support::output_within;

#[test]
fn fewer_requests_than_users_passes_its_check() {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_load")).args([
            "--requests",
            "30",
            "--users",
            "100",
            "--connections",
            "4",
            "--workers",
            "1",
            "--reps",
            "1",
        ]),
        120,
    );
    assert!(
        out.status.success(),
        "load: {}, stdout {:?}, stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

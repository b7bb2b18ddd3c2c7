//! The `vacation` binary end to end on a tiny configuration: both presets at two clients, the
//! cross-check of final states at one client, the JSON, and bad options.

use commute_test_support::output_within;
use std::process::{Command, Output};

fn vacation(args: &[&str]) -> Output {
    output_within(Command::new(env!("CARGO_BIN_EXE_vacation")).args(args), 120)
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The table's row of `implementation`, as its words.
fn row<'a>(table: &'a str, implementation: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|words| words.first() == Some(&implementation))
        .unwrap_or_else(|| panic!("no row for {implementation}:\n{table}"))
}

#[test]
fn both_presets_run_all_three_implementations_and_pass_the_checks() {
    for preset in ["low", "high"] {
        let out = vacation(&[
            "--preset", preset, "-r", "1000", "-t", "5000", "-c", "2", "--reps", "2",
        ]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{preset}:\n{stdout}\n{stderr}");
        assert!(stdout.contains(&format!("vacation-{preset}: ")), "{stdout}");
        for implementation in ["sequential", "global-lock", "commute"] {
            let words = row(&stdout, implementation);
            let threads = if implementation == "sequential" {
                "1"
            } else {
                "2"
            };
            assert_eq!(words[1], threads, "{stdout}");
            assert_eq!(words.last(), Some(&"ok"), "{stdout}");
            assert!(words.contains(&"5000"), "transactions: {stdout}");
        }
        assert_eq!(row(&stdout, "sequential")[4], "1.00", "{stdout}");
        assert!(stdout.contains("sequential's runs identical"), "{stdout}");
        assert!(stderr.contains("[run 2/2]"), "{stderr}");
    }
}

#[test]
fn one_client_ends_in_the_same_state_in_every_implementation() {
    let json = std::env::temp_dir().join(format!("vacation-cli-{}.json", std::process::id()));
    let out = vacation(&[
        "-n3",
        "-q50",
        "-u80",
        "-r500",
        "-t3000",
        "-c1",
        "--reps=1",
        "--seed",
        "7",
        "--json",
        json.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("vacation: -n3 -q50 -u80 -r500 -t3000 -c1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("final states: identical in every run of sequential, global-lock, commute"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(
        written.matches("\"implementation\"").count(),
        3,
        "{written}"
    );
    assert!(written.contains("\"commits\": 3000"), "{written}");
    assert!(
        written.contains("\"ratio_to_sequential\": 1.000000"),
        "{written}"
    );
    assert_eq!(
        written.matches("\"checks_passed\": true").count(),
        3,
        "{written}"
    );
}

#[test]
fn bad_options_exit_with_status_2() {
    for args in [
        &["--preset", "medium"][..],
        &["-q0"][..],
        &["--impl", "tl2"][..],
    ] {
        let out = vacation(args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("vacation: "), "{stderr}");
    }
    let out = vacation(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out).0.contains("--preset low|high"));
}

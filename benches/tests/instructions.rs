//! The cases of the `instructions` binary, run without valgrind for a few operations: each one
//! works, leaves the state its operations should (the cases check it themselves), and computes
//! the same checksum as the other cases of its row, which do the same work on other structures.
//! Also the binary's behaviour without valgrind. CI runs these; it does not run the callgrind
//! measurement.

use std::process::Command;

use commute_benches::instructions::{CASES, ROWS_TABLE, Side, WARMUP};
use commute_test_support::output_within;

/// Operations after the warm-up (a multiple of the event case's log batch).
const OPS: u64 = 128;

fn checksums() -> Vec<(&'static str, &'static str, u64)> {
    // The map cases fill 100,000 keys each: run the cases on two threads.
    let half = CASES.len() / 2;
    let (first, second) = CASES.split_at(half);
    let run = |cases: &'static [commute_benches::instructions::Case]| {
        cases
            .iter()
            .map(|c| (c.row, c.name, c.run(OPS)))
            .collect::<Vec<_>>()
    };
    let other = std::thread::spawn(move || run(second));
    let mut all = run(first);
    all.extend(other.join().expect("a case panicked"));
    all
}

#[test]
fn every_case_runs_and_agrees_with_its_row() {
    let all = checksums();
    let total = WARMUP + OPS;
    for row in ROWS_TABLE {
        let sums: Vec<_> = all.iter().filter(|(r, _, _)| *r == row.name).collect();
        assert!(sums.len() >= 2, "row {} has no baseline", row.name);
        assert!(
            sums.iter().all(|s| s.2 == sums[0].2),
            "row {}: checksums differ: {sums:?}",
            row.name
        );
        let expected = match row.name {
            // The variable's or the counter's final value.
            "rmw" | "counter" => Some(total),
            // Operation i pops item i; the consumer pops every record once.
            "queue" | "event" => Some(total * (total - 1) / 2),
            _ => None,
        };
        if let Some(expected) = expected {
            assert_eq!(sums[0].2, expected, "row {}", row.name);
        }
        assert!(sums[0].2 > 0, "row {}: nothing done", row.name);
    }
}

#[test]
fn every_row_has_one_baseline_and_commute_cases() {
    for row in ROWS_TABLE {
        let cases: Vec<_> = CASES.iter().filter(|c| c.row == row.name).collect();
        assert_eq!(
            cases.iter().filter(|c| c.side == Side::Baseline).count(),
            1,
            "{}",
            row.name
        );
        assert!(
            cases.iter().any(|c| c.side == Side::Commute),
            "{}",
            row.name
        );
        assert!(cases.iter().all(|c| c.name.starts_with(row.name)));
    }
    assert_eq!(
        CASES
            .iter()
            .filter(|c| !ROWS_TABLE.iter().any(|r| r.name == c.row))
            .count(),
        0
    );
}

fn instructions(args: &[&str], valgrind: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_instructions"));
    command.args(args);
    if let Some(valgrind) = valgrind {
        command.env("VALGRIND", valgrind);
    }
    output_within(&mut command, 60)
}

#[test]
fn run_mode_prints_the_checksum() {
    let out = instructions(&["--run", "counter/mutex", "--ops", "64"], None);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("checksum {}", WARMUP + 64)),
        "{stdout}"
    );
}

#[test]
fn measure_without_valgrind_says_how_to_install_it() {
    let out = instructions(
        &["--measure", "--case", "rmw"],
        Some("/nonexistent/valgrind"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("apt-get install valgrind"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_arguments_are_reported() {
    let out = instructions(&["--measure", "--case", "nope"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = instructions(&["--list"], None);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), CASES.len(), "{stdout}");
}

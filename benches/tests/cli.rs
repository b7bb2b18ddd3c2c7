//! The `conflicts` binary end to end: the table, the targets, the JSON file, with each structure
//! run in a child process (the default) and all in one process (`--in-process`); and the
//! `memory` binary's table and its refusal of bad arguments.

use commute_test_support::output_within;
use std::process::Command;

fn conflicts(args: &[&str]) -> (String, String) {
    let out = output_within(Command::new(env!("CARGO_BIN_EXE_conflicts")).args(args), 60);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// The table rows of `structure` (workload counter), as (threads, ops).
fn rows(table: &str, structure: &str) -> Vec<(usize, u64)> {
    table
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words.len() > 3 && words[0] == "counter" && words[1] == structure)
                .then(|| (words[2].parse().unwrap(), words[3].parse().unwrap()))
        })
        .collect()
}

#[test]
fn child_processes_and_in_process_runs_report_the_same_cells() {
    let json = std::env::temp_dir().join(format!("conflicts-cli-{}.json", std::process::id()));
    for mode in [None, Some("--in-process")] {
        let mut args = vec![
            "--duration-ms",
            "10",
            "--repeat",
            "2",
            "--threads",
            "1,2",
            "--workload",
            "counter",
            "--structure",
            "TCounter,naive-counter,AtomicU64",
            "--json",
            json.to_str().unwrap(),
        ];
        args.extend(mode);
        let (table, progress) = conflicts(&args);
        for structure in ["TCounter", "naive-counter", "AtomicU64"] {
            let cells = rows(&table, structure);
            assert_eq!(cells.len(), 2, "{mode:?} {structure}:\n{table}");
            assert_eq!(cells[0].0, 1);
            assert_eq!(cells[1].0, 2);
            assert!(cells.iter().all(|&(_, ops)| ops > 0), "{table}");
        }
        assert!(table.contains("targets at 2 threads:"), "{table}");
        assert!(table.contains("TCounter/counter"), "{table}");
        assert!(progress.contains("round 2/2"), "{progress}");
        // One probe per workload and round, and one at the end; none on a one-core machine.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores >= 2 {
            assert!(progress.contains("(handoff "), "{progress}");
            assert!(table.contains("in the median of 3 probes"), "{table}");
        } else {
            assert!(!table.contains("machine:"), "{table}");
        }
        let written = std::fs::read_to_string(&json).unwrap();
        assert_eq!(written.matches("\"workload\": \"counter\"").count(), 6);
    }
    let _ = std::fs::remove_file(&json);
}

#[test]
fn a_child_reports_its_cells_one_per_line() {
    let (out, _) = conflicts(&[
        "--child",
        "--workload",
        "counter",
        "--structure",
        "AtomicU64",
        "--threads",
        "1",
        "--duration-ms",
        "5",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let words: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(words[..4], ["cell", "counter", "AtomicU64", "1"], "{out}");
    assert_eq!(
        words[6..],
        ["-", "-", "-"],
        "a lock-based structure has no commits, and it is no long-read cell: {out}"
    );
}

#[test]
fn long_read_cells_come_back_from_the_children_with_their_reader() {
    let (table, _) = conflicts(&[
        "--quick",
        "--threads",
        "2",
        "--workload",
        "long-read",
        "--structure",
        "TMap,DashMap",
    ]);
    let section = table
        .split_once("long-read: ")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no long-read table:\n{table}"));
    for structure in ["TMap", "DashMap"] {
        let row: Vec<&str> = section
            .lines()
            .find(|line| line.starts_with(structure))
            .unwrap_or_else(|| panic!("no {structure} row:\n{table}"))
            .split_whitespace()
            .collect();
        assert_eq!(row[1], "2", "{table}");
        assert!(row[2].parse::<u64>().unwrap() >= 1, "a sum each: {table}");
    }
    let tmap = section.lines().find(|l| l.starts_with("TMap")).unwrap();
    assert!(
        tmap.contains(" yes "),
        "every sum of TMap is exact: {table}"
    );
}

#[test]
fn a_quick_run_does_not_judge_the_targets() {
    let (table, _) = conflicts(&[
        "--quick",
        "--workload",
        "counter",
        "--structure",
        "TCounter",
    ]);
    assert!(table.contains("targets: not checked"), "{table}");
    assert!(
        !table.contains("held") && !table.contains("missed"),
        "{table}"
    );
}

#[test]
fn memory_prints_a_row_per_key_count_and_value_and_refuses_bad_counts() {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_memory")).args(["--keys", "500,2_000"]),
        60,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| keys"))
        .map(|line| line.split('|').map(str::trim).collect())
        .collect();
    let keys_and_values: Vec<(&str, &str)> = rows.iter().map(|r| (r[1], r[2])).collect();
    assert_eq!(
        keys_and_values,
        [
            ("500", "`u64`"),
            ("500", "`[u64; 4]`"),
            ("2000", "`u64`"),
            ("2000", "`[u64; 4]`")
        ],
        "{stdout}"
    );
    for row in &rows {
        // Bytes per entry of HashMap, TMap::new and TMap::with_capacity: at least a key and
        // a value each.
        for column in [3, 4, 6] {
            let bytes: f64 = row[column].parse().unwrap_or_else(|_| panic!("{stdout}"));
            assert!(bytes >= 16.0, "{stdout}");
        }
        assert!(["met", "missed"].contains(&row[8]), "{stdout}");
    }
    for bad in [&["--keys", "0"][..], &["--keys", "x"], &["--frobnicate"]] {
        let out = output_within(Command::new(env!("CARGO_BIN_EXE_memory")).args(bad), 60);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

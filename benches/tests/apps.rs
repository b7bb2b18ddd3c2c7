//! The application suite: the `retry` variant of labyrinth under a watchdog (a lost wake-up
//! would hang it, as rust-stm #17's router did), and the `apps` binary end to end on the
//! smoke preset.

use std::process::{Command, Output};

use commute_benches::apps::labyrinth::{LabyrinthParams, check_grid, pairs, run_blocking};
use commute_test_support::{output_within, with_watchdog};

fn apps(args: &[&str]) -> Output {
    output_within(Command::new(env!("CARGO_BIN_EXE_apps")).args(args), 300)
}

#[test]
fn blocking_routers_never_deadlock_and_leave_a_sound_grid() {
    // A crowded grid: routers often find no path and wait in retry for the rip-up thread.
    for (seed, routers, keep) in [(1, 2, 2), (2, 3, 3), (3, 4, 1)] {
        let params = LabyrinthParams {
            x: 12,
            y: 12,
            z: 1,
            paths: 5,
        };
        let out = with_watchdog(120, move || {
            run_blocking(&params, &pairs(&params, seed), routers, keep, 40)
        });
        assert!(out.run.check.is_ok(), "seed {seed}: {:?}", out.run.check);
        assert_eq!(out.run.work, 200);
        assert!(out.ripped > 0, "{out:?}");
    }
}

#[test]
fn the_grid_check_rejects_two_paths_on_one_cell() {
    let params = LabyrinthParams {
        x: 3,
        y: 3,
        z: 1,
        paths: 2,
    };
    let pairs = [
        commute_benches::apps::labyrinth::Pair { src: 0, dst: 2 },
        commute_benches::apps::labyrinth::Pair { src: 6, dst: 8 },
    ];
    // Path 2 was written over the middle of path 1 (a lost update).
    let grid = [1, 2, 1, 0, 2, 0, 2, 0, 2];
    let paths = [Some(vec![0, 1, 2]), Some(vec![6, 3, 4, 1, 5, 8])];
    let err = check_grid(&params, &grid, &pairs, &paths).unwrap_err();
    assert!(err.contains("cell 1 of path 1"), "{err}");
}

/// Every benchmark but PyPy's shared-counter test, whose abort floor depends on the threads
/// running at once (no timing assertions in tests: CI runs it through the binary instead).
#[test]
fn the_smoke_preset_runs_every_benchmark_and_passes_its_checks() {
    let json = std::env::temp_dir().join(format!("apps-cli-{}.json", std::process::id()));
    let out = apps(&[
        "--preset",
        "smoke",
        "--threads",
        "1,2",
        "--only",
        "labyrinth,labyrinth-retry,kmeans,btree,vacation",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for bench in [
        "labyrinth ",
        "labyrinth-retry",
        "kmeans-low",
        "kmeans-high",
        "btree",
        "vacation-low",
        "vacation-high",
    ] {
        assert!(stdout.contains(bench), "{bench}:\n{stdout}");
    }
    assert!(!stdout.contains("FAILED"), "{stdout}");
    let written = std::fs::read_to_string(&json).unwrap();
    let _ = std::fs::remove_file(&json);
    assert!(written.starts_with("[\n"), "{written}");
    assert!(!written.contains("\"check_passed\": false"), "{written}");
    assert!(
        written
            .contains("\"benchmark\": \"btree\", \"implementation\": \"commute\", \"threads\": 2"),
        "{written}"
    );
}

#[test]
fn thread_local_work_does_not_abort_and_commutative_adds_never_do() {
    for test in ["pypy-local", "pypy-shared-add"] {
        let run = commute_benches::apps::pypy_conflicts::run(test, 0.1);
        assert!(run.check.is_ok(), "{test}: {:?}", run.check);
        assert!(run.work > 0);
    }
}

#[test]
fn bad_options_exit_with_status_2() {
    let out = apps(&["--only", "genome"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("genome"));
    let out = apps(&["--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--preset NAME"));
}

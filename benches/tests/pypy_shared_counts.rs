//! PyPy's shared `x += 1` test (`pypy-shared`, left out of the other tests because its abort
//! floor depends on the machine): whatever the floor's verdict, no increment may be lost, `x`
//! ends equal to the steps run.

use commute_benches::apps::pypy_conflicts::run;

#[test]
fn a_shared_increment_loses_no_update() {
    let run = run("pypy-shared", 0.2);
    assert!(run.work > 0);
    if let Err(problem) = &run.check {
        // Only the abort floor may fail on a busy machine; a lost increment never may.
        assert!(
            problem.contains("aborts on a shared x += 1") && !problem.starts_with("x = "),
            "{problem}"
        );
    }
}

//! Single-variable commits outside transactions (`TVar::commit_alone`): a stale commit is
//! refused and counted in the statistics as the aborted attempt it is.

use commute_stm::{TVar, stats};

#[test]
fn a_stale_commit_alone_is_refused_and_counted_as_an_abort() {
    let v = TVar::new(1u64);
    let (value, seen) = v.load_seen();
    let before = stats::thread();
    assert_eq!(v.commit_alone(seen, value + 1), Ok(()));
    assert_eq!(
        v.commit_alone(seen, 100),
        Err(100),
        "the variable changed since `seen`"
    );
    let after = stats::thread();
    assert_eq!(v.load(), 2);
    assert_eq!(after.commits - before.commits, 1);
    assert_eq!(
        after.aborts_read_validation - before.aborts_read_validation,
        1
    );
}

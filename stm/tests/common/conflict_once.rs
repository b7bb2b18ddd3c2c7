//! A transaction that conflicts exactly once, shared by the tests of conflict statistics.

use commute_stm::{StmResult, TVar, Transaction, atomically};

/// Runs one transaction that conflicts exactly once, by read validation: its first attempt
/// reads through `read`, then another thread runs `change` (a commit to what `read` reads) and
/// ends, and the attempt's commit (it writes a variable of its own) finds the read changed.
/// The second attempt commits. The transaction's site is the caller's line
/// (`#[track_caller]`).
#[track_caller]
pub(crate) fn conflict_once<R: Send + 'static>(
    read: impl Fn(&Transaction) -> StmResult<u64>,
    change: impl FnOnce() -> R + Send + 'static,
) {
    let out = TVar::new(0u64);
    let mut change = Some(change);
    atomically(|tx| {
        let seen = read(tx)?;
        if let Some(change) = change.take() {
            std::thread::spawn(change).join().unwrap();
        }
        out.write(tx, seen);
        Ok(())
    });
}

//! An attempt that registered a publishing closure (`TVar::publish_on_commit`) and was rolled
//! back left its write set marked as holding closures to drop, with nothing left in it: the
//! thread's next plain attempt then failed the end of the attempt's debug assertion that no
//! closure is left to drop (debug builds; release builds carried the stale mark along).

use commute_stm::{TVar, atomically, try_atomically};

#[test]
fn a_plain_commit_after_a_rolled_back_publishing_closure() {
    let published = TVar::new(0u64);
    let plain = TVar::new(0u64);
    let aborted: Result<(), &str> = try_atomically(|tx| {
        // SAFETY: the operation neither panics nor blocks nor touches other memory.
        unsafe { published.publish_on_commit(tx, |old, _| old + 1) };
        tx.abort("rolled back")
    });
    assert_eq!(aborted, Err("rolled back"));
    atomically(|tx| {
        plain.write(tx, 1);
        Ok(())
    });
    assert_eq!((published.load(), plain.load()), (0, 1));
}

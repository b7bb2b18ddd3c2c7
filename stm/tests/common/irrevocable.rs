//! Driving a transaction into the irrevocable mode, shared by the tests that need one.

use commute_stm::{StmResult, TVar, Transaction, atomically};
use std::sync::Arc;

/// Makes every optimistic attempt conflict (another thread changes `y` after this one read it),
/// so that the transaction ends up running irrevocably; returns once `tx` is irrevocable.
pub(crate) fn conflict_unless_irrevocable(tx: &Transaction, y: &Arc<TVar<u64>>) -> StmResult<()> {
    y.read(tx)?;
    if tx.is_irrevocable() {
        return Ok(());
    }
    let y2 = y.clone();
    std::thread::spawn(move || atomically(|tx| y2.modify(tx, |v| v + 1)))
        .join()
        .unwrap();
    y.read(tx)?; // a newer version than the attempt's: it conflicts here
    unreachable!("the second read conflicts");
}

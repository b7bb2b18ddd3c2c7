//! How the collections' `Debug` reads what it shows.
//!
//! Outside transactions, each collection shows a snapshot of its own (a `read_only`
//! transaction, or its one-call `iter`). Inside a transaction, which may not start another, a
//! collection shows a placeholder, `<in a transaction>`, as `TVar`'s does; `Debug` never panics
//! there. One exception: a [`TMap`](crate::TMap) formats its values inside its own snapshot,
//! and the collections among them (per-key counters, maps of maps) read that snapshot too, so
//! they show their contents, consistent with the map's, where they would otherwise show the
//! placeholder. A key or value whose own `Debug` starts a transaction therefore panics there
//! ("transactions do not nest"; documented on the map's `Debug`), where the other collections
//! copy their items out and format them after their snapshot.

use core::cell::Cell;
use core::fmt;

use crate::{StmResult, Transaction, in_transaction, read_only};

crate::sync::thread_local! {
    /// The snapshot a map's `Debug` is formatting its entries in, while it does.
    static FORMATTING: Cell<*const Transaction> = Cell::new(core::ptr::null());
}

/// Where a collection's `Debug` stands.
pub(crate) enum Place<'a> {
    /// Outside transactions: take a snapshot.
    Outside,
    /// Inside the snapshot a map's `Debug` formats its entries in: read through it.
    Snapshot(&'a Transaction),
    /// Inside another transaction: show the placeholder.
    InTransaction,
}

/// Runs `show` with where the caller's `Debug` stands.
pub(crate) fn show<R>(show: impl FnOnce(Place<'_>) -> R) -> R {
    let tx = FORMATTING.with(Cell::get);
    if tx.is_null() {
        if in_transaction() {
            show(Place::InTransaction)
        } else {
            show(Place::Outside)
        }
    } else {
        // SAFETY: set by `in_snapshot` below only for the duration of its closure, which
        // borrows the transaction, and on this thread; nested formatting runs inside it.
        show(Place::Snapshot(unsafe { &*tx }))
    }
}

/// Runs `f` (a map's `Debug` formatting its entries) in a snapshot of its own, in which the
/// collections among the entries read ([`Place::Snapshot`]).
pub(crate) fn in_snapshot(mut f: impl FnMut(&Transaction) -> fmt::Result) -> fmt::Result {
    /// Clears the snapshot however the formatting ends.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            FORMATTING.with(|t| t.set(core::ptr::null()));
        }
    }
    read_only(|tx| {
        FORMATTING.with(|t| t.set(tx as *const Transaction));
        let _clear = Clear;
        Ok(f(tx))
    })
}

/// A collection's `Debug` that shows what `read` reads, formatted by `format`: in a snapshot
/// of its own outside transactions, in the map's inside a map's `Debug`; `name(<in a
/// transaction>)` inside another transaction.
pub(crate) fn items<I>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    read: impl Fn(&Transaction) -> StmResult<I>,
    format: impl FnOnce(&mut fmt::Formatter<'_>, I) -> fmt::Result,
) -> fmt::Result {
    show(|place| match place {
        Place::Outside => format(f, read_only(&read)),
        // A snapshot's reads do not fail.
        Place::Snapshot(tx) => format(f, read(tx).map_err(|_| fmt::Error)?),
        Place::InTransaction => f.debug_tuple(name).field(&Placeholder).finish(),
    })
}

/// The placeholder shown inside a transaction.
pub(crate) struct Placeholder;

impl fmt::Debug for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<in a transaction>")
    }
}

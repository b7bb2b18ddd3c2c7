//! Drop audit of the collections: every way a `TCounter`, `TQueue`, `TBoundedQueue`, `TMap` or
//! `TSet` can die while the running transaction still refers to it (pending adds, pushes, pops,
//! inserts, removes and leaf splits). The harness is the core's (`stm/tests/common/audit.rs`):
//! each test runs in a child process, so a case that corrupts memory fails alone, with its
//! signal.

#[macro_use]
#[path = "../../stm/tests/common/audit.rs"]
mod audit;

use std::borrow::Borrow;
use std::sync::Arc;

use audit::{End, Ledger, Origin, Subject, Tracked, run_case};
use commute::{StmResult, TBoundedQueue, TCounter, TMap, TQueue, TSet, Transaction, atomically};

/// Sets of payloads are looked up by number (`Tracked` hashes and compares its number).
impl Borrow<u64> for Tracked {
    fn borrow(&self) -> &u64 {
        &self.n
    }
}

/// A collection as the audit uses it: made empty (with small leaves, for maps and sets), then
/// read, given an element (added, pushed, inserted) or deprived of one (popped, removed).
trait Collection: Sized {
    fn make() -> Self;
    fn read(&self, tx: &Transaction) -> StmResult<()>;
    fn put(&self, tx: &Transaction, ledger: &Arc<Ledger>, n: u64) -> StmResult<()>;
    fn take(&self, tx: &Transaction, n: u64) -> StmResult<()>;
}

impl Collection for TCounter {
    fn make() -> Self {
        TCounter::new()
    }
    fn read(&self, tx: &Transaction) -> StmResult<()> {
        self.get(tx).map(drop)
    }
    fn put(&self, tx: &Transaction, _: &Arc<Ledger>, _: u64) -> StmResult<()> {
        self.add(tx, 1);
        Ok(())
    }
    fn take(&self, tx: &Transaction, _: u64) -> StmResult<()> {
        self.add(tx, -1);
        Ok(())
    }
}

impl Collection for TQueue<Tracked> {
    fn make() -> Self {
        TQueue::new()
    }
    fn read(&self, tx: &Transaction) -> StmResult<()> {
        self.peek(tx).map(drop)
    }
    fn put(&self, tx: &Transaction, ledger: &Arc<Ledger>, n: u64) -> StmResult<()> {
        self.push(tx, Tracked::new(ledger, n));
        Ok(())
    }
    fn take(&self, tx: &Transaction, _: u64) -> StmResult<()> {
        self.pop(tx).map(drop)
    }
}

impl Collection for TBoundedQueue<Tracked> {
    fn make() -> Self {
        TBoundedQueue::with_capacity(64)
    }
    fn read(&self, tx: &Transaction) -> StmResult<()> {
        self.peek(tx).map(drop)
    }
    fn put(&self, tx: &Transaction, ledger: &Arc<Ledger>, n: u64) -> StmResult<()> {
        self.push(tx, Tracked::new(ledger, n))
    }
    fn take(&self, tx: &Transaction, _: u64) -> StmResult<()> {
        self.pop(tx).map(drop)
    }
}

/// The trie shape of maps and sets: one root slot, binary inner nodes, leaves of
/// [`LEAF_CAPACITY`], so that [`Act::Split`]'s inserts split leaves.
const SHAPE: (usize, usize) = (1, 2);
const LEAF_CAPACITY: usize = 4;

impl Collection for TMap<u64, Tracked> {
    fn make() -> Self {
        TMap::with_config(SHAPE.0, SHAPE.1, LEAF_CAPACITY)
    }
    fn read(&self, tx: &Transaction) -> StmResult<()> {
        self.get(tx, &0).map(drop)
    }
    fn put(&self, tx: &Transaction, ledger: &Arc<Ledger>, n: u64) -> StmResult<()> {
        self.insert(tx, n, Tracked::new(ledger, n)).map(drop)
    }
    fn take(&self, tx: &Transaction, n: u64) -> StmResult<()> {
        self.remove(tx, &n).map(drop)
    }
}

impl Collection for TSet<Tracked> {
    fn make() -> Self {
        TSet::with_config(SHAPE.0, SHAPE.1, LEAF_CAPACITY)
    }
    fn read(&self, tx: &Transaction) -> StmResult<()> {
        self.contains(tx, &0).map(drop)
    }
    fn put(&self, tx: &Transaction, ledger: &Arc<Ledger>, n: u64) -> StmResult<()> {
        self.insert(tx, Tracked::new(ledger, n)).map(drop)
    }
    fn take(&self, tx: &Transaction, n: u64) -> StmResult<()> {
        self.remove(tx, &n).map(drop)
    }
}

/// What the attempt does to the collection before it dies.
#[derive(Clone, Copy, Debug)]
enum Act {
    Read,
    /// One add, push or insert.
    Put,
    /// One pop or remove (of an element the collection made before holds).
    Take,
    /// Enough inserts to split leaves.
    Split,
}

impl<C: Collection> Subject for C {
    type Act = Act;
    fn make(_: &Arc<Ledger>) -> Self {
        C::make()
    }
    fn prepare(&self, ledger: &Arc<Ledger>) {
        // Two committed elements (fewer than a leaf holds).
        atomically(|tx| {
            self.put(tx, ledger, 0)?;
            self.put(tx, ledger, 1)
        });
    }
    fn act(&self, tx: &Transaction, act: Act, ledger: &Arc<Ledger>) -> StmResult<()> {
        match act {
            Act::Read => self.read(tx),
            Act::Put => self.put(tx, ledger, 100),
            Act::Take => self.take(tx, 0),
            Act::Split => {
                (10..10 + 4 * LEAF_CAPACITY as u64).try_for_each(|n| self.put(tx, ledger, n))
            }
        }
    }
}

audit_matrix! {
    counter_dropped_after_read: TCounter, Act::Read;
    counter_dropped_after_add: TCounter, Act::Put;
    queue_dropped_after_push: TQueue<Tracked>, Act::Put;
    queue_dropped_after_pop: TQueue<Tracked>, Act::Take;
    bounded_queue_dropped_after_push: TBoundedQueue<Tracked>, Act::Put;
    bounded_queue_dropped_after_pop: TBoundedQueue<Tracked>, Act::Take;
    map_dropped_after_get: TMap<u64, Tracked>, Act::Read;
    map_dropped_after_insert: TMap<u64, Tracked>, Act::Put;
    map_dropped_after_remove: TMap<u64, Tracked>, Act::Take;
    map_dropped_after_split: TMap<u64, Tracked>, Act::Split;
    set_dropped_after_insert: TSet<Tracked>, Act::Put;
    set_dropped_after_remove: TSet<Tracked>, Act::Take;
    set_dropped_after_split: TSet<Tracked>, Act::Split;
}

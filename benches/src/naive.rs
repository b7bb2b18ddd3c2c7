//! Naive TVar-only structures on commute's core: what a program gets by putting its shared data
//! in plain `TVar`s, with no care for conflicts.
//!
//! - [`NaiveCounter`]: one `TVar<u64>`, read-modify-write per increment: every two concurrent
//!   increments conflict.
//! - [`NaiveQueue`]: a linked queue whose `tail` variable every push reads and rewrites: every
//!   two concurrent pushes conflict, and a push conflicts with a pop when the queue is short.
//! - [`NaiveMap`]: one fixed table of bucket variables (each a `TBox` holding the bucket's
//!   entries) plus one `size` variable that every insert of a new key (and every removal)
//!   read-modify-writes: two inserts of different new keys conflict on `size`.

use std::sync::Arc;

use commute_stm::{StmResult, TBox, TVar, Transaction};

/// Buckets in a naive map's table (fixed: the naive map never resizes).
pub(crate) const NAIVE_BUCKETS: usize = 1 << 14;

/// One shared count, incremented by read-modify-write.
#[derive(Debug)]
pub(crate) struct NaiveCounter {
    value: TVar<u64>,
}

impl NaiveCounter {
    pub(crate) fn new() -> Self {
        NaiveCounter {
            value: TVar::new(0).with_label("naive-counter"),
        }
    }

    pub(crate) fn incr(&self, tx: &Transaction) -> StmResult<()> {
        self.value.modify(tx, |n| n + 1).map(drop)
    }

    pub(crate) fn load(&self) -> u64 {
        self.value.load()
    }
}

type Link = Option<Arc<Node>>;

struct Node {
    value: u64,
    next: TBox<Link>,
}

impl Drop for Node {
    /// Unlinks the uniquely owned rest of the chain iteratively: dropping a long queue must not
    /// recurse once per node.
    fn drop(&mut self) {
        let mut next = self.next.get_mut().take();
        while let Some(node) = next {
            match Arc::try_unwrap(node) {
                Ok(mut node) => next = node.next.get_mut().take(),
                // Someone else (a retired value, another link) still holds it and will drop it.
                Err(_) => break,
            }
        }
    }
}

/// A linked FIFO queue on `TBox` links; every push reads and rewrites `tail`, every pop `head`
/// and the link of the node it takes.
pub(crate) struct NaiveQueue {
    head: TBox<Link>,
    tail: TBox<Link>,
}

impl std::fmt::Debug for NaiveQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NaiveQueue").finish_non_exhaustive()
    }
}

impl NaiveQueue {
    pub(crate) fn new() -> Self {
        NaiveQueue {
            head: TBox::new(None).with_label("naive-queue.head"),
            tail: TBox::new(None).with_label("naive-queue.tail"),
        }
    }

    pub(crate) fn push(&self, tx: &Transaction, value: u64) -> StmResult<()> {
        let node = Arc::new(Node {
            value,
            next: TBox::new(None),
        });
        match self.tail.read(tx)? {
            Some(last) => last.next.write(tx, Some(node.clone())),
            None => self.head.write(tx, Some(node.clone())),
        }
        self.tail.write(tx, Some(node));
        Ok(())
    }

    pub(crate) fn pop(&self, tx: &Transaction) -> StmResult<Option<u64>> {
        let Some(first) = self.head.read(tx)? else {
            return Ok(None);
        };
        let next = first.next.read(tx)?.clone();
        if next.is_none() {
            self.tail.write(tx, None);
        } else {
            // As the peers' queues do (they need it: see `peer::PeerQueue::pop`).
            first.next.write(tx, None);
        }
        let value = first.value;
        self.head.write(tx, next);
        Ok(Some(value))
    }
}

impl Drop for NaiveQueue {
    fn drop(&mut self) {
        // Release the tail's reference first so that the chain from head is uniquely owned and
        // `Node::drop` frees it iteratively.
        self.tail.get_mut().take();
    }
}

/// One bucket of a naive map: its entries, replaced whole by every change.
type Bucket = TBox<Vec<(u64, u64)>>;

/// A fixed table of bucket `TBox`es plus one `size` variable.
pub(crate) struct NaiveMap {
    buckets: Box<[Bucket]>,
    size: TVar<u64>,
    hasher: ahash::RandomState,
}

impl std::fmt::Debug for NaiveMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NaiveMap")
            .field("size", &self.size.load())
            .finish_non_exhaustive()
    }
}

impl NaiveMap {
    pub(crate) fn new() -> Self {
        NaiveMap {
            buckets: (0..NAIVE_BUCKETS).map(|_| TBox::new(Vec::new())).collect(),
            size: TVar::new(0).with_label("naive-map.size"),
            hasher: ahash::RandomState::new(),
        }
    }

    fn bucket(&self, key: u64) -> &Bucket {
        &self.buckets[self.hasher.hash_one(key) as usize & (NAIVE_BUCKETS - 1)]
    }

    pub(crate) fn get(&self, tx: &Transaction, key: u64) -> StmResult<Option<u64>> {
        Ok(self
            .bucket(key)
            .read(tx)?
            .iter()
            .find(|e| e.0 == key)
            .map(|e| e.1))
    }

    pub(crate) fn insert(&self, tx: &Transaction, key: u64, value: u64) -> StmResult<Option<u64>> {
        let bucket = self.bucket(key);
        let entries = bucket.read(tx)?;
        let mut updated = entries.clone();
        match updated.iter_mut().find(|e| e.0 == key) {
            Some(e) => {
                let old = core::mem::replace(&mut e.1, value);
                bucket.write(tx, updated);
                Ok(Some(old))
            }
            None => {
                updated.push((key, value));
                bucket.write(tx, updated);
                self.size.modify(tx, |n| n + 1)?;
                Ok(None)
            }
        }
    }

    pub(crate) fn remove(&self, tx: &Transaction, key: u64) -> StmResult<Option<u64>> {
        let bucket = self.bucket(key);
        let entries = bucket.read(tx)?;
        let Some(i) = entries.iter().position(|e| e.0 == key) else {
            return Ok(None);
        };
        let mut updated = entries.clone();
        let (_, old) = updated.swap_remove(i);
        bucket.write(tx, updated);
        self.size.modify(tx, |n| n - 1)?;
        Ok(Some(old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commute_stm::atomically;

    /// As the peers' queues (`peer::tests`): a stalled transaction's handle on the first node,
    /// let go after everything behind it was popped, frees no chain of popped nodes.
    #[test]
    fn a_stale_first_node_frees_no_chain() {
        const CHAIN: u64 = 100_000;
        let queue = NaiveQueue::new();
        atomically(|tx| queue.push(tx, 0));
        let stale = atomically(|tx| Ok(queue.head.read(tx)?.clone()));
        assert!(stale.is_some());
        for i in 1..=CHAIN {
            atomically(|tx| queue.push(tx, i));
        }
        for i in 0..=CHAIN {
            assert_eq!(atomically(|tx| queue.pop(tx)), Some(i));
        }
        assert_eq!(atomically(|tx| queue.pop(tx)), None);
        drop(stale);
    }
}

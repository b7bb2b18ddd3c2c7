//! Peer STM crates behind one small interface, and the naive structures built on it.
//!
//! fast-stm 0.7, stm-core 0.4 and kovan-stm 0.2 run the same transactions as commute's naive
//! structures ([`crate::naive`]), in the same shapes, on their own `TVar`s: a counter variable,
//! a linked queue with a `tail` variable, a table of bucket variables plus a `size` variable.
//! Their `TVar`s hold any `Clone` value (behind an `Arc`), so buckets are `Arc<Vec<_>>` and links
//! `Option<Arc<Node>>`: reads clone an `Arc`, not the data.
//!
//! None of the three reports commits or aborts, so [`atomically`] counts them: every call of
//! the closure is an attempt, every return of `atomically` a commit, and aborts are attempts
//! minus commits (per thread, in thread-local cells read by [`counters`]).

use std::any::Any;
use std::cell::Cell;
use std::sync::Arc;

use crate::naive::NAIVE_BUCKETS;

/// What a peer `TVar` may hold.
pub(crate) trait Value: Any + Clone + Send + Sync {}

impl<T: Any + Clone + Send + Sync> Value for T {}

/// The part of a peer STM crate's API that the workloads use.
pub(crate) trait PeerStm: 'static {
    /// The crate's transactional variable.
    type Var<T: Send + Sync + 'static>: Send + Sync;
    /// The crate's transaction handle.
    type Tx<'a>;
    /// The crate's error type (a conflict or retry signal).
    type Error;

    fn var<T: Value>(value: T) -> Self::Var<T>;
    fn read<T: Value>(tx: &mut Self::Tx<'_>, var: &Self::Var<T>) -> Result<T, Self::Error>;
    fn write<T: Value>(
        tx: &mut Self::Tx<'_>,
        var: &Self::Var<T>,
        value: T,
    ) -> Result<(), Self::Error>;
    /// The crate's own `atomically`.
    fn run<R>(f: impl Fn(&mut Self::Tx<'_>) -> Result<R, Self::Error>) -> R;
}

/// fast-stm 0.7 (a faster fork of stm-core: read-set validation at commit, no opacity).
#[derive(Debug)]
pub(crate) enum FastStm {}

impl PeerStm for FastStm {
    type Var<T: Send + Sync + 'static> = fast_stm::TVar<T>;
    type Tx<'a> = fast_stm::Transaction;
    type Error = fast_stm::StmError;

    fn var<T: Value>(value: T) -> Self::Var<T> {
        fast_stm::TVar::new(value)
    }
    fn read<T: Value>(tx: &mut Self::Tx<'_>, var: &Self::Var<T>) -> Result<T, Self::Error> {
        var.read(tx)
    }
    fn write<T: Value>(
        tx: &mut Self::Tx<'_>,
        var: &Self::Var<T>,
        value: T,
    ) -> Result<(), Self::Error> {
        var.write(tx, value)
    }
    fn run<R>(f: impl Fn(&mut Self::Tx<'_>) -> Result<R, Self::Error>) -> R {
        fast_stm::atomically(f)
    }
}

/// stm-core 0.4 (clock-free: values compared at commit, no global version clock).
#[derive(Debug)]
pub(crate) enum StmCore {}

impl PeerStm for StmCore {
    type Var<T: Send + Sync + 'static> = stm_core::TVar<T>;
    type Tx<'a> = stm_core::Transaction;
    type Error = stm_core::StmError;

    fn var<T: Value>(value: T) -> Self::Var<T> {
        stm_core::TVar::new(value)
    }
    fn read<T: Value>(tx: &mut Self::Tx<'_>, var: &Self::Var<T>) -> Result<T, Self::Error> {
        var.read(tx)
    }
    fn write<T: Value>(
        tx: &mut Self::Tx<'_>,
        var: &Self::Var<T>,
        value: T,
    ) -> Result<(), Self::Error> {
        var.write(tx, value)
    }
    fn run<R>(f: impl Fn(&mut Self::Tx<'_>) -> Result<R, Self::Error>) -> R {
        stm_core::atomically(f)
    }
}

/// kovan-stm 0.2 (TL2 with one global version clock, values reclaimed by kovan).
#[derive(Debug)]
pub(crate) enum KovanStm {}

impl PeerStm for KovanStm {
    type Var<T: Send + Sync + 'static> = kovan_stm::TVar<T>;
    type Tx<'a> = kovan_stm::Transaction<'a>;
    type Error = kovan_stm::StmError;

    fn var<T: Value>(value: T) -> Self::Var<T> {
        kovan_stm::TVar::new(value)
    }
    fn read<T: Value>(tx: &mut Self::Tx<'_>, var: &Self::Var<T>) -> Result<T, Self::Error> {
        tx.load(var)
    }
    fn write<T: Value>(
        tx: &mut Self::Tx<'_>,
        var: &Self::Var<T>,
        value: T,
    ) -> Result<(), Self::Error> {
        tx.store(var, value)
    }
    fn run<R>(f: impl Fn(&mut Self::Tx<'_>) -> Result<R, Self::Error>) -> R {
        kovan_stm::atomically(f)
    }
}

thread_local! {
    static ATTEMPTS: Cell<u64> = const { Cell::new(0) };
    static COMMITS: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` as a transaction of `S`, counting attempts and commits for [`counters`].
#[inline]
pub(crate) fn atomically<S: PeerStm, R>(f: impl Fn(&mut S::Tx<'_>) -> Result<R, S::Error>) -> R {
    let result = S::run(|tx| {
        ATTEMPTS.with(|a| a.set(a.get() + 1));
        f(tx)
    });
    COMMITS.with(|c| c.set(c.get() + 1));
    result
}

/// This thread's peer transactions so far: `(commits, aborts)`.
pub(crate) fn counters() -> (u64, u64) {
    let attempts = ATTEMPTS.with(Cell::get);
    let commits = COMMITS.with(Cell::get);
    (commits, attempts - commits)
}

/// One counter variable, read-modify-write per increment.
pub(crate) struct PeerCounter<S: PeerStm> {
    value: S::Var<u64>,
}

impl<S: PeerStm> PeerCounter<S> {
    pub(crate) fn new() -> Self {
        PeerCounter { value: S::var(0) }
    }

    pub(crate) fn incr(&self, tx: &mut S::Tx<'_>) -> Result<(), S::Error> {
        let n = S::read(tx, &self.value)?;
        S::write(tx, &self.value, n.wrapping_add(1))
    }

    pub(crate) fn load(&self) -> u64 {
        atomically::<S, _>(|tx| S::read(tx, &self.value))
    }
}

type Link<S> = Option<Arc<PeerNode<S>>>;

/// A node of [`PeerQueue`].
pub(crate) struct PeerNode<S: PeerStm> {
    value: u64,
    next: S::Var<Link<S>>,
}

/// A linked FIFO queue; every push reads and rewrites `tail`, every pop `head` and the link of
/// the node it takes.
pub(crate) struct PeerQueue<S: PeerStm> {
    head: S::Var<Link<S>>,
    tail: S::Var<Link<S>>,
}

impl<S: PeerStm> PeerQueue<S> {
    pub(crate) fn new() -> Self {
        PeerQueue {
            head: S::var(None),
            tail: S::var(None),
        }
    }

    pub(crate) fn push(&self, tx: &mut S::Tx<'_>, value: u64) -> Result<(), S::Error> {
        let node = Arc::new(PeerNode::<S> {
            value,
            next: S::var(None),
        });
        match S::read(tx, &self.tail)? {
            Some(last) => S::write(tx, &last.next, Some(node.clone()))?,
            None => S::write(tx, &self.head, Some(node.clone()))?,
        }
        S::write(tx, &self.tail, Some(node))
    }

    pub(crate) fn pop(&self, tx: &mut S::Tx<'_>) -> Result<Option<u64>, S::Error> {
        let Some(first) = S::read(tx, &self.head)? else {
            return Ok(None);
        };
        let next = S::read(tx, &first.next)?;
        if next.is_none() {
            S::write(tx, &self.tail, None)?;
        } else {
            // Unlink the popped node: a stalled transaction may still hold it, and popped
            // nodes left linked would be freed one inside the other when it lets go.
            S::write(tx, &first.next, None)?;
        }
        S::write(tx, &self.head, next)?;
        Ok(Some(first.value))
    }
}

impl<S: PeerStm> Drop for PeerQueue<S> {
    /// Drains the queue one pop at a time: dropping the chain from `head` would recurse once per
    /// node (the peers' variables give no way to unlink a node outside a transaction).
    fn drop(&mut self) {
        while atomically::<S, _>(|tx| self.pop(tx)).is_some() {}
    }
}

type Bucket = Arc<Vec<(u64, u64)>>;

/// A fixed table of bucket variables plus one `size` variable.
pub(crate) struct PeerMap<S: PeerStm> {
    buckets: Box<[S::Var<Bucket>]>,
    size: S::Var<u64>,
    hasher: ahash::RandomState,
}

impl<S: PeerStm> PeerMap<S> {
    pub(crate) fn new() -> Self {
        PeerMap {
            buckets: (0..NAIVE_BUCKETS)
                .map(|_| S::var(Bucket::default()))
                .collect(),
            size: S::var(0),
            hasher: ahash::RandomState::new(),
        }
    }

    fn bucket(&self, key: u64) -> &S::Var<Bucket> {
        &self.buckets[self.hasher.hash_one(key) as usize & (NAIVE_BUCKETS - 1)]
    }

    pub(crate) fn get(&self, tx: &mut S::Tx<'_>, key: u64) -> Result<Option<u64>, S::Error> {
        Ok(S::read(tx, self.bucket(key))?
            .iter()
            .find(|e| e.0 == key)
            .map(|e| e.1))
    }

    pub(crate) fn insert(
        &self,
        tx: &mut S::Tx<'_>,
        key: u64,
        value: u64,
    ) -> Result<Option<u64>, S::Error> {
        let bucket = self.bucket(key);
        let mut entries: Vec<(u64, u64)> = (*S::read(tx, bucket)?).clone();
        let old = match entries.iter_mut().find(|e| e.0 == key) {
            Some(e) => Some(core::mem::replace(&mut e.1, value)),
            None => {
                entries.push((key, value));
                let size = S::read(tx, &self.size)?;
                S::write(tx, &self.size, size.wrapping_add(1))?;
                None
            }
        };
        S::write(tx, bucket, Arc::new(entries))?;
        Ok(old)
    }

    pub(crate) fn remove(&self, tx: &mut S::Tx<'_>, key: u64) -> Result<Option<u64>, S::Error> {
        let bucket = self.bucket(key);
        let entries = S::read(tx, bucket)?;
        let Some(i) = entries.iter().position(|e| e.0 == key) else {
            return Ok(None);
        };
        let mut entries: Vec<(u64, u64)> = (*entries).clone();
        let (_, old) = entries.swap_remove(i);
        S::write(tx, bucket, Arc::new(entries))?;
        let size = S::read(tx, &self.size)?;
        S::write(tx, &self.size, size.wrapping_sub(1))?;
        Ok(Some(old))
    }
}

/// Bank accounts, one variable each.
pub(crate) struct PeerBank<S: PeerStm> {
    accounts: Box<[S::Var<u64>]>,
}

impl<S: PeerStm> PeerBank<S> {
    pub(crate) fn new(accounts: usize, balance: u64) -> Self {
        PeerBank {
            accounts: (0..accounts).map(|_| S::var(balance)).collect(),
        }
    }

    pub(crate) fn transfer(&self, from: usize, to: usize, amount: u64) {
        atomically::<S, _>(|tx| {
            let available = S::read(tx, &self.accounts[from])?;
            if available < amount {
                return Ok(());
            }
            let credited = S::read(tx, &self.accounts[to])?;
            S::write(tx, &self.accounts[from], available - amount)?;
            S::write(tx, &self.accounts[to], credited.wrapping_add(amount))
        })
    }

    pub(crate) fn total(&self) -> u64 {
        atomically::<S, _>(|tx| {
            let mut total = 0;
            for account in self.accounts.iter() {
                total = u64::wrapping_add(total, S::read(tx, account)?);
            }
            Ok(total)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items pushed and popped behind a stale handle: far more than the test thread's stack
    /// could take one frame (or several) per node.
    const CHAIN: u64 = 100_000;

    /// A transaction that read the queue's first node and then stalled (a preempted thread)
    /// holds it while other threads pop everything behind it. Letting go of it must not drop
    /// the popped nodes one inside the other: with the links left in place, that recursed once
    /// per popped node and overflowed the stack (the `queue` workload at 16 threads on 2
    /// cores, fast-stm).
    fn a_stale_first_node_frees_no_chain<S: PeerStm>() {
        let queue = PeerQueue::<S>::new();
        atomically::<S, _>(|tx| queue.push(tx, 0));
        let stale = atomically::<S, _>(|tx| S::read(tx, &queue.head));
        assert!(stale.is_some());
        for i in 1..=CHAIN {
            atomically::<S, _>(|tx| queue.push(tx, i));
        }
        for i in 0..=CHAIN {
            assert_eq!(atomically::<S, _>(|tx| queue.pop(tx)), Some(i));
        }
        assert_eq!(atomically::<S, _>(|tx| queue.pop(tx)), None);
        drop(stale);
    }

    #[test]
    fn fast_stm_a_stale_first_node_frees_no_chain() {
        a_stale_first_node_frees_no_chain::<FastStm>();
    }

    #[test]
    fn stm_core_a_stale_first_node_frees_no_chain() {
        a_stale_first_node_frees_no_chain::<StmCore>();
    }

    #[test]
    fn kovan_stm_a_stale_first_node_frees_no_chain() {
        a_stale_first_node_frees_no_chain::<KovanStm>();
    }
}

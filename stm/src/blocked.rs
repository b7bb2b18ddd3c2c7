//! Which transactions are asleep in [`retry`](crate::Transaction::retry) right now, and on
//! what: for debugging hangs.
//!
//! A transaction is listed from the moment its thread goes to sleep in `retry` (or
//! [`retry_until`](crate::Transaction::retry_until)) until it wakes up. Attempts that retry
//! but find a change before sleeping (most hand-offs between busy threads) are never listed:
//! listing is done only on the way to sleep, so it costs nothing to transactions that do not
//! block.

use core::fmt;
use std::panic::Location;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::internal::var::Origin;
use crate::internal::wait::sleepers::{self, Sleeper};

/// Every transaction asleep in [`retry`](crate::Transaction::retry) right now, the one
/// asleep longest first.
///
/// A snapshot: by the time it returns, some may have woken up and others fallen asleep. See
/// "Debugging a hang" in the docs of [`retry`](crate::Transaction::retry).
///
/// Threads only: a future of [`atomically_async`](crate::atomically_async) waiting for a
/// change holds no thread and is not listed (its executor shows the pending task).
///
/// # Examples
///
/// ```
/// // Nothing blocks here.
/// assert!(commute_stm::blocked_transactions().is_empty());
/// ```
pub fn blocked_transactions() -> Vec<BlockedTx> {
    let now = Instant::now();
    sleepers::snapshot()
        .into_iter()
        .map(|sleeper| {
            let vars = sleeper
                .vars
                .iter()
                .map(|&(addr, origin)| BlockedVar { addr, origin })
                .collect();
            BlockedTx { sleeper, vars, now }
        })
        .collect()
}

/// A transaction asleep in [`retry`](crate::Transaction::retry), as listed by
/// [`blocked_transactions`].
///
/// Its `Display` is one line: thread, `atomically` call site, for how long, and the variables.
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, blocked_transactions, TVar};
/// use std::sync::Arc;
///
/// let go = Arc::new(TVar::new(false).with_label("go"));
/// let g = go.clone();
/// let t = std::thread::spawn(move || atomically(|tx| if g.read(tx)? { Ok(()) } else { tx.retry() }));
/// let blocked = loop {
///     match blocked_transactions().into_iter().find(|b| b.thread_id() == t.thread().id()) {
///         Some(b) => break b,
///         None => std::thread::yield_now(),
///     }
/// };
/// assert_eq!(blocked.waiting_on().len(), 1);
/// assert_eq!(blocked.waiting_on()[0].label(), Some("go"));
/// assert!(blocked.deadline().is_none());
/// atomically(|tx| {
///     go.write(tx, true);
///     Ok(())
/// });
/// t.join().unwrap();
/// ```
#[derive(Clone)]
pub struct BlockedTx {
    sleeper: Sleeper,
    vars: Vec<BlockedVar>,
    /// When the list was taken.
    now: Instant,
}

impl BlockedTx {
    /// The sleeping thread's name, if it has one.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn thread_name(&self) -> Option<&str> {
        self.sleeper.thread.name()
    }

    /// The sleeping thread's id.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn thread_id(&self) -> ThreadId {
        self.sleeper.thread.id()
    }

    /// Where the transaction's [`atomically`](crate::atomically) (or
    /// [`try_atomically`](crate::try_atomically)) was called.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn site(&self) -> &'static Location<'static> {
        self.sleeper.site
    }

    /// When it went to sleep.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn since(&self) -> Instant {
        self.sleeper.since
    }

    /// How long it had been asleep when the list was taken.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn blocked_for(&self) -> Duration {
        self.now.saturating_duration_since(self.sleeper.since)
    }

    /// The deadline of its wait ([`retry_until`](crate::Transaction::retry_until)), if any.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn deadline(&self) -> Option<Instant> {
        self.sleeper.deadline
    }

    /// The variables whose change wakes it: every variable the attempt read (empty for a
    /// `retry_until` that read nothing).
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn waiting_on(&self) -> &[BlockedVar] {
        &self.vars
    }
}

impl fmt::Debug for BlockedTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockedTx")
            .field("thread_name", &self.thread_name())
            .field("thread_id", &self.thread_id())
            .field("site", &format_args!("{}", self.site()))
            .field("blocked_for", &self.blocked_for())
            .field("deadline", &self.deadline())
            .field("waiting_on", &self.waiting_on())
            .finish()
    }
}

impl fmt::Display for BlockedTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.thread_name() {
            Some(name) => write!(f, "thread \"{name}\"")?,
            None => write!(f, "thread {:?}", self.thread_id())?,
        }
        write!(
            f,
            " blocked in retry at {} for {:?}",
            self.site(),
            self.blocked_for()
        )?;
        if let Some(deadline) = self.deadline() {
            let left = deadline.saturating_duration_since(self.now);
            write!(f, " (deadline in {left:?})")?;
        }
        f.write_str(" on ")?;
        for (i, var) in self.waiting_on().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{var}")?;
        }
        if self.waiting_on().is_empty() {
            f.write_str("nothing (a deadline only)")?;
        }
        Ok(())
    }
}

/// A variable a [`BlockedTx`] waits on.
///
/// # Examples
///
/// See [`BlockedTx`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BlockedVar {
    addr: usize,
    origin: Origin,
}

impl BlockedVar {
    /// Its label ([`TVar::with_label`](crate::TVar::with_label)), if it has one.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn label(&self) -> Option<&'static str> {
        self.origin.label
    }

    /// Where it was created.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn created_at(&self) -> &'static Location<'static> {
        self.origin.site
    }

    /// Its address: tells apart variables created at one site (the words of a `TVar`, a
    /// `TBox`, or a collection's inner variable). Only an identity: the variable may be gone
    /// by the time it is read.
    ///
    /// # Examples
    ///
    /// See [`BlockedTx`].
    pub fn address(&self) -> usize {
        self.addr
    }
}

impl fmt::Debug for BlockedVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockedVar")
            .field("label", &self.label())
            .field("created_at", &format_args!("{}", self.created_at()))
            .field("address", &format_args!("{:#x}", self.address()))
            .finish()
    }
}

impl fmt::Display for BlockedVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.label() {
            Some(label) => write!(f, "TVar \"{label}\" ({})", self.created_at()),
            None => write!(
                f,
                "TVar created at {} ({:#x})",
                self.created_at(),
                self.address()
            ),
        }
    }
}

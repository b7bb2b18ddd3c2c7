//! Blocking: `retry` and `or_else`, and the wait list a retried attempt sleeps on.

use std::time::Instant;

use super::{StmError, StmResult, Transaction, TxError, TxResult};
use crate::internal::var::VarCore;

impl Transaction {
    /// Abandons the attempt and blocks until a variable it read changes, then runs it again.
    ///
    /// Use it as `return tx.retry();` when the transaction cannot proceed yet (an empty queue, a
    /// full buffer). Inside [`or_else`](Transaction::or_else) it falls through to the
    /// alternative instead.
    ///
    /// # Errors
    ///
    /// Always returns the retry signal; propagate it.
    ///
    /// # Panics
    ///
    /// [`atomically`](crate::atomically) panics if the attempt retries without having read any
    /// variable (variables its own rollback frees count as unread: they can no longer change;
    /// not so those of a collection dropped in the attempt, whose memory is freed later: an
    /// attempt that read only such variables waits for ever),
    /// or if it would wait inside a pin ([`pinned`](crate::pinned), [`TBox::load_with`]'s
    /// closure, code a collection's one-call operation runs pinned, such as a `Clone`), a
    /// transaction future's attempt polled there included.
    ///
    /// [`TBox::load_with`]: crate::TBox::load_with
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    /// use std::sync::Arc;
    ///
    /// let ready = Arc::new(TVar::new(false));
    /// let r = ready.clone();
    /// let waiter = std::thread::spawn(move || {
    ///     atomically(|tx| if r.read(tx)? { Ok("go") } else { tx.retry() })
    /// });
    /// atomically(|tx| {
    ///     ready.write(tx, true);
    ///     Ok(())
    /// });
    /// assert_eq!(waiter.join().unwrap(), "go");
    /// ```
    ///
    /// # Debugging a hang
    ///
    /// A thread that never comes back from `atomically` is most likely asleep here, waiting
    /// for a change that does not come. [`blocked_transactions`](crate::blocked_transactions)
    /// lists every transaction asleep in `retry` right now: its thread, the `atomically` call
    /// site, the variables it waits on (by [label](crate::TVar::with_label), else creation
    /// site) and since when. Call it from another thread (a watchdog, a signal handler
    /// thread, a debug endpoint):
    ///
    /// ```
    /// use commute_stm::{atomically, blocked_transactions, TVar};
    /// use std::sync::Arc;
    ///
    /// let ready = Arc::new(TVar::new(false).with_label("ready"));
    /// let r = ready.clone();
    /// let waiter = std::thread::Builder::new()
    ///     .name("waiter".into())
    ///     .spawn(move || atomically(|tx| if r.read(tx)? { Ok(()) } else { tx.retry() }))
    ///     .unwrap();
    /// // Wait until it is asleep (a real program would just print the list when stuck).
    /// let stuck = loop {
    ///     let blocked = blocked_transactions();
    ///     if let Some(b) = blocked.into_iter().find(|b| b.thread_name() == Some("waiter")) {
    ///         break b;
    ///     }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(stuck.waiting_on()[0].label(), Some("ready"));
    /// println!("{stuck}"); // thread "waiter" blocked in retry at src/main.rs:9:34 for 2ms on TVar "ready" (...)
    /// atomically(|tx| {
    ///     ready.write(tx, true);
    ///     Ok(())
    /// });
    /// waiter.join().unwrap();
    /// ```
    pub fn retry<T>(&self) -> StmResult<T> {
        Err(StmError::RETRY)
    }

    /// [`retry`](Transaction::retry) with a deadline: abandons the attempt and blocks until a
    /// variable it read changes **or `deadline` passes**, then runs it again; once the deadline
    /// has passed, returns `Ok(())` instead, and the closure goes on (to return a timeout of
    /// its own, usually).
    ///
    /// Precisely: if `Instant::now() >= deadline` when it is called, it returns `Ok(())` and
    /// the attempt continues like any other (what it does next commits as usual). Otherwise
    /// it returns the retry signal (propagate it with `?`); the attempt is rolled back and
    /// the thread sleeps until a variable the attempt read changes or until the deadline,
    /// whichever comes first (several calls in one attempt: the earliest deadline), and then
    /// the closure runs again. In that new attempt the same call, given the same deadline,
    /// returns `Ok(())` if the deadline has passed. Compute the deadline once, **outside**
    /// the closure (`Instant::now() + timeout`): the closure runs again after each wake-up,
    /// and a deadline recomputed in it would move on each time.
    ///
    /// In [`atomically_async`](crate::atomically_async) it panics when the attempt retries
    /// before the deadline (a future has no timer of its own): wrap the future in the
    /// executor's timeout instead; it is cancel-safe.
    ///
    /// An attempt that read nothing may call it: it then just sleeps until the deadline. Inside
    /// [`or_else`](Transaction::or_else), a retry signal falls through to the alternative, as
    /// for `retry`; the deadline still bounds the wait if the whole attempt retries.
    ///
    /// # Errors
    ///
    /// The retry signal while the deadline has not passed; propagate it.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    /// use std::time::{Duration, Instant};
    ///
    /// let ready = TVar::new(false);
    /// let deadline = Instant::now() + Duration::from_millis(10);
    /// let got = atomically(|tx| {
    ///     if ready.read(tx)? {
    ///         return Ok(Some("ready"));
    ///     }
    ///     tx.retry_until(deadline)?; // Ok(()) once the deadline has passed
    ///     Ok(None) // timed out
    /// });
    /// assert_eq!(got, None);
    /// assert!(Instant::now() >= deadline);
    /// ```
    pub fn retry_until(&self, deadline: Instant) -> StmResult<()> {
        if Instant::now() >= deadline {
            return Ok(());
        }
        let mut st = self.state();
        st.deadline = Some(match st.deadline {
            Some(d) if d <= deadline => d,
            _ => deadline,
        });
        st.extras = true; // the end of the attempt clears the deadline
        Err(StmError::RETRY)
    }

    /// Runs `first`; if it calls [`retry`](Transaction::retry), rolls back its writes (and
    /// hooks) and runs `second` instead. Reads of both stay in the attempt, so if both retry the
    /// transaction waits for a change to either. Nests freely. Inside
    /// [`try_atomically`](crate::try_atomically), [`try_or_else`](Transaction::try_or_else) takes
    /// branches that may fail with errors of their own.
    ///
    /// # Errors
    ///
    /// A conflict in either branch, or a retry of `second`.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{atomically, TVar};
    ///
    /// let a = TVar::new(0u32);
    /// let b = TVar::new(7u32);
    /// let got = atomically(|tx| {
    ///     tx.or_else(
    ///         |tx| {
    ///             a.write(tx, 99); // rolled back: this branch retries
    ///             match b.read(tx)? {
    ///                 0 => Ok(0),
    ///                 _ => tx.retry(),
    ///             }
    ///         },
    ///         |tx| b.read(tx),
    ///     )
    /// });
    /// assert_eq!(got, 7);
    /// assert_eq!(a.load(), 0);
    /// ```
    pub fn or_else<T>(
        &self,
        first: impl FnOnce(&Transaction) -> StmResult<T>,
        second: impl FnOnce(&Transaction) -> StmResult<T>,
    ) -> StmResult<T> {
        self.alternatives(first, second, false, |e| {
            if e.is_retry() {
                Branch::Retried
            } else {
                Branch::Kept
            }
        })
    }

    /// [`or_else`](Transaction::or_else) for closures that may fail with an error of their own
    /// (inside [`try_atomically`](crate::try_atomically)): runs `first`; if it calls
    /// [`retry`](Transaction::retry), rolls it back and runs `second` instead.
    ///
    /// An error of `first` (`Err(TxError::Abort(e))`) does not fall through to `second`: `first`
    /// is rolled back (its writes and commit hooks, as a retrying branch's), and the error is
    /// returned. Passed on, it ends the whole transaction (rolled back, its abort hooks run,
    /// `first`'s included); handled, the transaction goes on from where it stood before
    /// `first`. An error of `second` is rolled back and returned the same way.
    ///
    /// # Errors
    ///
    /// A conflict in either branch, a retry of `second`, or the error of the branch that ran
    /// last.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_stm::{try_atomically, TVar};
    ///
    /// let a = TVar::new(0u32);
    /// let b = TVar::new(7u32);
    /// let r: Result<u32, &str> = try_atomically(|tx| {
    ///     tx.try_or_else(
    ///         |tx| {
    ///             a.write(tx, 1);
    ///             tx.abort("refused") // not a retry: `second` does not run
    ///         },
    ///         |tx| Ok(b.read(tx)?),
    ///     )
    /// });
    /// assert_eq!(r, Err("refused"));
    /// assert_eq!(a.load(), 0);
    /// ```
    pub fn try_or_else<T, E>(
        &self,
        first: impl FnOnce(&Transaction) -> TxResult<T, E>,
        second: impl FnOnce(&Transaction) -> TxResult<T, E>,
    ) -> TxResult<T, E> {
        self.alternatives(first, second, true, |e| match e {
            TxError::Stm(e) if e.is_retry() => Branch::Retried,
            TxError::Abort(_) => Branch::Failed,
            TxError::Stm(_) => Branch::Kept,
        })
    }

    /// Runs `first`; what its error is (`ended`) decides whether `second` runs instead
    /// ([`Branch::Retried`]), the error is returned with `first` rolled back
    /// ([`Branch::Failed`]), or as it is ([`Branch::Kept`]: a conflict, which ends the attempt).
    /// If `second` may fail (`second_may_fail`), it is a branch too: a failure of it is rolled
    /// back before it is returned.
    fn alternatives<T, X>(
        &self,
        first: impl FnOnce(&Transaction) -> Result<T, X>,
        second: impl FnOnce(&Transaction) -> Result<T, X>,
        second_may_fail: bool,
        ended: impl Fn(&X) -> Branch,
    ) -> Result<T, X> {
        match self.branch(first, &ended) {
            // The retry signal: `second` runs instead.
            Err((_, Branch::Retried)) => {}
            Err((error, _)) => return Err(error),
            Ok(done) => return Ok(done),
        }
        if second_may_fail {
            self.branch(second, &ended).map_err(|(e, _)| e)
        } else {
            second(self)
        }
    }

    /// Runs `f` as a branch: if it retries or fails with its own error (`ended`), rolls back
    /// what it did (writes, commit hooks, retirements; a failed branch's abort hooks stay, to
    /// run if the attempt is rolled back) and returns the error with what it was.
    fn branch<T, X>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T, X>,
        ended: &impl Fn(&X) -> Branch,
    ) -> Result<T, (X, Branch)> {
        let (saved_writes, commit_hooks, abort_hooks, saved_retirements, forgotten) = {
            let st = self.state();
            (
                st.writes.save(),
                st.on_commit.len(),
                st.on_abort.len(),
                st.retire_on_commit.clone(),
                st.forgotten.len(),
            )
        };
        let error = match f(self) {
            Err(e) => e,
            Ok(done) => return Ok(done),
        };
        let branch = ended(&error);
        if branch == Branch::Kept {
            return Err((error, branch));
        }
        let mut guard = self.state();
        let st = &mut *guard;
        // Variables dropped during the branch (`TxState::forget` took them out of
        // the sets as they went) must not come back with the copies. Their addresses
        // may belong to variables made in the branch since, which the copies never
        // held.
        let dropped = &st.forgotten[forgotten..];
        let reads = self.irrevocable().then_some(st.reads.as_slice());
        let nodes = st.writes.restore_saved(saved_writes, dropped, reads);
        // Values the branch allocated and wrote are no longer in the write set.
        st.allocs_unmatched = true;
        if !nodes.is_empty() {
            // Freed at the end of the attempt (commit or not), with no state borrow
            // held: the end of a commit must take the slow path to see them.
            st.extras = true;
            st.allocs.extend(nodes);
        }
        // The branch's hooks are dropped with the attempt, outside the transaction:
        // they may own transactional variables, whose drop needs this state. A failed
        // branch's abort hooks stay: they run if the attempt is rolled back (as it is when
        // the error is passed on).
        let hooks: Vec<_> = st.on_commit.drain(commit_hooks..).collect();
        let abort_hooks: Vec<_> = match branch {
            Branch::Retried => st.on_abort.drain(abort_hooks..).collect(),
            _ => Vec::new(),
        };
        if !hooks.is_empty() || !abort_hooks.is_empty() {
            st.let_go.push(Box::new((hooks, abort_hooks)));
            st.closures = true;
            st.extras = true;
        }
        // The retirements made before the branch, less those of variables dropped in
        // it (cancelled with them); the branch's own are rolled back.
        st.retire_on_commit = saved_retirements;
        if !dropped.is_empty() {
            st.retire_on_commit
                .retain(|&(_, _, owner)| !dropped.contains(&owner));
        }
        drop(guard);
        Err((error, branch))
    }

    /// The variables (and versions) whose change should wake a retried attempt: those it read
    /// (an irrevocable attempt records its reads of the variables it locks too; those it only
    /// wrote are not waited on).
    pub(super) fn wait_list(&self) -> Vec<(*const VarCore, u64)> {
        let st = self.state();
        st.reads.iter().map(|r| (r.var, r.version)).collect()
    }
}

/// How the first branch of [`Transaction::or_else`] or [`Transaction::try_or_else`] ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Branch {
    /// It retried: rolled back, and the second branch runs.
    Retried,
    /// It failed with an error of its own: rolled back, and the error returned.
    Failed,
    /// It conflicted: the error is returned, and ends the attempt.
    Kept,
}

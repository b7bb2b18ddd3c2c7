//! `TaskPool`: run tasks (events) as transactions on worker threads; tasks may add tasks.
//!
//! The public face is here; the scheduler (queues, stealing, parking, completion, `retry`) is in
//! `sched.rs` and the commit order of ordered mode in `order.rs`, each with its protocol in its
//! module doc. The pool is built on std threads, locks and parking, which loom cannot explore
//! at any useful size: it is compiled out under `--cfg loom` (its correctness rests on the
//! core's transactions, which loom does model, plus the two small handshakes documented in
//! `sched.rs` and `order.rs`).

mod order;
mod park;
mod sched;

use core::any::Any;
use core::cell::{Cell, RefCell};
use core::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::stats::StatsSnapshot;
use crate::{StmResult, Transaction, in_transaction};
use sched::{Run, Task};

/// The closure of a task: one transaction attempt per call.
type Body = dyn FnMut(&Transaction, &TaskCtx) -> StmResult<()> + Send + 'static;

/// A pool that runs tasks as transactions on worker threads until none is left.
///
/// Each task is a closure `FnMut(&Transaction, &TaskCtx) -> StmResult<()>`, run by
/// [`run`](TaskPool::run) as one transaction (called once per attempt, exactly like a closure
/// given to [`atomically`](crate::atomically)). A task may add further tasks with
/// [`TaskCtx::add`]; they join the pool only if the adding attempt commits. The result of a
/// run is always that of running every task alone, one after the other, in some order: the
/// program means what it means on one thread, and the pool only makes it faster, as far as tasks
/// do not conflict. Use commute's collections ([`TCounter`](crate::TCounter),
/// [`TQueue`](crate::TQueue), [`TMap`](crate::TMap)) for the state every task touches, so that
/// they rarely do.
///
/// Two modes:
///
/// - [`TaskPool::new`] (unordered): tasks commit in whatever order they finish. Fastest.
/// - [`TaskPool::ordered`]: tasks commit in the order they were added, so the result equals the
///   serial run in that order, exactly, even when tasks conflict; tasks still *run* in parallel
///   and only wait for their predecessors to commit. Children are placed in the order when their
///   parent commits: after every task added so far (roots and earlier children), in the order the
///   parent added them. Commit hooks ([`Transaction::on_commit`]) run in that order too, so I/O
///   done there comes out deterministically.
///
/// # How the pool stays out of the way
///
/// The pool's own bookkeeping (queues, counts, completion) is not transactional: per-worker
/// queues with work stealing, an atomic count of unfinished tasks updated in batches, and
/// parking for idle workers. A task's transaction contains only what the task does (in ordered
/// mode, plus one private variable that joins each task to its predecessor's commit), so tasks
/// that do not conflict never abort because of the pool, and an empty task costs a few tens of
/// nanoseconds (about 36 ns on one thread, including its `atomically`). [`run`](TaskPool::run)
/// returns a [`PoolReport`] with the commits and aborts of the run, from the core's
/// [statistics](crate::stats).
///
/// Ordered mode wants a free core per worker: while the worker holding the turn is descheduled,
/// the others finish their attempts and wait (spinning briefly, then yielding, then parked).
/// An attempt that waits so while another thread waits for it to end (a [`Taken`](crate::Taken)'s
/// [`into_inner`](crate::Taken::into_inner), in a commit hook or outside the pool, waits for
/// attempts that have read a collection) gives way: it is rolled back, as after a conflict,
/// and runs again at its turn.
///
/// # Effects
///
/// A task's closure may run several times (once per attempt), so effects outside transactional
/// variables belong in [`Transaction::on_commit`] hooks, which run once, after the commit, on
/// the worker thread:
///
/// ```
/// use commute::{TaskPool, TCounter};
/// use std::sync::Arc;
///
/// let served = Arc::new(TCounter::new());
/// let mut pool = TaskPool::new();
/// for user in 0..4u64 {
///     let served = served.clone();
///     pool.add(move |tx, _ctx| {
///         served.incr(tx);
///         // Printed once per committed task, never for an attempt that is rolled back.
///         tx.on_commit(move || println!("served user {user}"));
///         Ok(())
///     });
/// }
/// pool.run().unwrap();
/// assert_eq!(served.load(), 4);
/// ```
///
/// # `retry`
///
/// In unordered mode a task that calls [`Transaction::retry`] is rolled back and put aside
/// without blocking its worker, so the tasks that can unblock it still run. An idle worker runs
/// all the put-aside tasks as alternatives of one transaction: the first that can proceed
/// commits; if none can, the worker blocks until something they read changes. If every remaining task
/// retries and nothing outside the pool changes what they read, `run` waits forever, as every
/// serial order would.
///
/// In ordered mode a task that retries blocks its worker until something it read changes, and
/// no later task can commit before it (later tasks may run their attempts, then wait): as in the
/// serial run in order, a task that retries at its turn waits for a transaction outside the pool.
///
/// # Panics in tasks
///
/// A task that panics is rolled back (nothing of the panicking attempt is visible, and none of
/// its children is added), the pool goes on with every other task, and `run` returns the first
/// panic as a [`TaskPanic`] naming the task (see [`run`](TaskPool::run)). In ordered mode the
/// panicking task gives up its turn, so the order goes on; a task whose first attempt panics
/// before its turn, on a state the tasks before it may not have committed to yet, runs again
/// at its turn, where a panic is its own (as a conflict would). (A panic in one of a task's
/// commit hooks, or in its closure's drop, comes after its commit: the commit stands, every
/// other hook still runs, and every child the task added is added. It is reported all the
/// same, and the task counts as panicked.) The payloads of the other panics are dropped on the
/// workers; a panic in a payload's `Drop` is caught there too.
///
/// A child added by an attempt (or an [`or_else`](Transaction::or_else) branch) that was
/// rolled back is dropped by the pool once the task's transaction has ended; a panic in its
/// `Drop` is the panic of the task that added it, which then counts as panicked and leaves the
/// run (if a later attempt committed, the commit stands, as above). In unordered mode,
/// put-aside tasks run as alternatives of one transaction (see `retry`), where a panic may also
/// come from what an alternative that retried left to drop at the end of the attempt (a value
/// it wrote, a commit hook it registered): a panic there after the transaction committed counts
/// as the committing task's; one at the end of an attempt that was rolled back belongs to no
/// task the pool can name. Then no task counts as panicked or leaves the run: every alternative
/// goes back to the queue and runs alone, where such a panic is its own. The panic itself is
/// kept aside: `run` reports it only if no task panicked, naming an alternative that retried
/// in that attempt, and then [`report().panicked`](PoolReport::panicked) may be 0.
///
/// # Errors in tasks
///
/// Tasks return [`StmResult<()>`](crate::StmResult), like closures given to
/// [`atomically`](crate::atomically): `Ok` commits. A task that must fail and leave no trace
/// (what [`try_atomically`](crate::try_atomically) does for one transaction) panics with its
/// error as the payload, `std::panic::panic_any(e)`: it is rolled back like any panicking task,
/// and `run` hands the error back in the [`TaskPanic`], where
/// `payload().downcast_ref::<E>()` finds it.
///
/// ```
/// use commute::{TaskPool, TVar};
/// use std::sync::Arc;
///
/// #[derive(Debug, PartialEq)]
/// struct InsufficientFunds;
///
/// let balance = Arc::new(TVar::new(100i64));
/// let mut pool = TaskPool::new();
/// let b = balance.clone();
/// pool.add(move |tx, _| {
///     b.modify(tx, |x| x - 400)?;
///     if b.read(tx)? < 0 {
///         std::panic::panic_any(InsufficientFunds); // rolls the task back
///     }
///     Ok(())
/// });
/// let failed = pool.run().unwrap_err();
/// assert_eq!(failed.payload().downcast_ref(), Some(&InsufficientFunds));
/// assert_eq!(balance.load(), 100);
/// ```
///
/// # Examples
///
/// ```
/// use commute::{TaskPool, TMap};
/// use std::sync::Arc;
///
/// // Word counts, one task per word; a task that sees "split" adds two more tasks.
/// let counts = Arc::new(TMap::new());
/// let mut pool = TaskPool::new().with_threads(2);
/// for word in ["to", "be", "or", "not", "to", "be", "split"] {
///     let counts = counts.clone();
///     pool.add(move |tx, ctx| {
///         counts.upsert(tx, word.to_string(), || 0u32, |n| *n += 1)?;
///         if word == "split" {
///             for half in ["sp", "lit"] {
///                 let counts = counts.clone();
///                 ctx.add(tx, move |tx, _ctx| {
///                     counts.upsert(tx, half.to_string(), || 0u32, |n| *n += 1)
///                 });
///             }
///         }
///         Ok(())
///     });
/// }
/// let report = pool.run().unwrap();
/// assert_eq!(report.tasks, 9);
/// assert_eq!(counts.atomic().get("to"), Some(2));
/// assert_eq!(counts.atomic().get("lit"), Some(1));
/// ```
pub struct TaskPool {
    tasks: Vec<Task>,
    threads: usize,
    ordered: bool,
    /// The id the next task gets.
    next_id: u64,
    /// The threads of the run in progress, for [`PoolWatcher`].
    watcher: PoolWatcher,
}

impl TaskPool {
    /// Creates an empty unordered pool running on as many workers as the machine has hardware
    /// threads ([`std::thread::available_parallelism`], 1 if unknown).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = commute::TaskPool::new();
    /// assert!(pool.threads() >= 1);
    /// assert!(!pool.is_ordered());
    /// ```
    pub fn new() -> Self {
        TaskPool {
            tasks: Vec::new(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            ordered: false,
            next_id: 0,
            watcher: PoolWatcher::default(),
        }
    }

    /// Creates an empty ordered pool: tasks commit in the order they were added (see the
    /// [type's documentation](TaskPool)).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{TaskPool, TVar};
    /// use std::sync::Arc;
    ///
    /// // Conflicting tasks, yet a deterministic result: the serial one in insertion order.
    /// let v = Arc::new(TVar::new(1u64));
    /// let mut pool = TaskPool::ordered().with_threads(2);
    /// for i in 0..10u64 {
    ///     let v = v.clone();
    ///     pool.add(move |tx, _| v.modify(tx, |x| x * 3 + i).map(drop));
    /// }
    /// pool.run().unwrap();
    /// let serial = (0..10u64).fold(1u64, |x, i| x * 3 + i);
    /// assert_eq!(v.load(), serial);
    /// ```
    pub fn ordered() -> Self {
        TaskPool {
            ordered: true,
            ..TaskPool::new()
        }
    }

    /// The most worker threads a pool takes ([`with_threads`](TaskPool::with_threads)): a run
    /// starts them all and keeps a queue for each.
    pub const MAX_THREADS: usize = 1 << 16;

    /// Sets the number of worker threads.
    ///
    /// With one worker, [`run`](TaskPool::run) runs every task on the calling thread.
    ///
    /// # Panics
    ///
    /// If `threads` is 0 or above [`MAX_THREADS`](TaskPool::MAX_THREADS).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = commute::TaskPool::new().with_threads(3);
    /// assert_eq!(pool.threads(), 3);
    /// ```
    #[track_caller]
    pub fn with_threads(mut self, threads: usize) -> Self {
        assert!(threads > 0, "commute: a TaskPool needs at least one thread");
        assert!(
            threads <= Self::MAX_THREADS,
            "commute: a TaskPool of {threads} threads is too many (at most {})",
            Self::MAX_THREADS
        );
        self.threads = threads;
        self
    }

    /// The number of worker threads [`run`](TaskPool::run) uses.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute::TaskPool::new().with_threads(2).threads(), 2);
    /// ```
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// True for a pool made by [`TaskPool::ordered`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(commute::TaskPool::ordered().is_ordered());
    /// ```
    pub fn is_ordered(&self) -> bool {
        self.ordered
    }

    /// The number of tasks added and not yet run.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pool = commute::TaskPool::new();
    /// pool.add(|_, _| Ok(()));
    /// assert_eq!(pool.len(), 1);
    /// pool.run().unwrap();
    /// assert_eq!(pool.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True if no task waits for the next run.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(commute::TaskPool::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Adds a task for the next [`run`](TaskPool::run) and returns its id.
    ///
    /// The task is called once per attempt of its transaction, with the transaction and a
    /// [`TaskCtx`] (to add children). Ids count up from 0 over the pool's life, in the order
    /// the pool receives tasks; in ordered mode that is also the commit order.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{TaskPool, TCounter};
    /// use std::sync::Arc;
    ///
    /// let hits = Arc::new(TCounter::new());
    /// let mut pool = TaskPool::new();
    /// let h = hits.clone();
    /// let id = pool.add(move |tx, _ctx| {
    ///     h.incr(tx);
    ///     Ok(())
    /// });
    /// assert_eq!(id.index(), 0);
    /// pool.run().unwrap();
    /// assert_eq!(hits.load(), 1);
    /// ```
    pub fn add<F>(&mut self, task: F) -> TaskId
    where
        F: FnMut(&Transaction, &TaskCtx) -> StmResult<()> + Send + 'static,
    {
        let id = self.next_id;
        self.next_id += 1;
        self.tasks.push(Task {
            id,
            body: Box::new(task),
        });
        TaskId(id)
    }

    /// Runs every added task, and every task they add, until none is left; returns what
    /// happened.
    ///
    /// Workers are scoped threads started for the run (the calling thread is one of them), and
    /// stop when it ends. The pool can be filled and run again afterwards.
    ///
    /// # Errors
    ///
    /// If any task panicked, returns a [`TaskPanic`] with the first panic (in ordered mode: the
    /// panic of the earliest task in the order), the task's id, and the report of the whole run.
    /// Every other task has still run, and nothing of the panicking attempt is visible. Call
    /// [`TaskPanic::resume`] to re-raise the panic instead.
    ///
    /// # Panics
    ///
    /// If called inside a transaction (transactions do not nest; start the pool from plain code
    /// or from a commit hook), or inside a pin ([`pinned`](crate::pinned),
    /// [`TBox::load_with`](crate::TBox::load_with)'s closure), before any task runs: the pin
    /// would hold back reclamation for the whole run, and keep what the tasks' rolled-back
    /// attempts leave (their discarded children among them) until it ends, past the run that
    /// should drop them and blame their panics on their tasks. A panic in a task is not a panic
    /// of `run` (see above).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{TaskPool, TVar};
    /// use std::sync::Arc;
    ///
    /// let v = Arc::new(TVar::new(0u64));
    /// let mut pool = TaskPool::new().with_threads(2);
    /// for i in 0..4u64 {
    ///     let v = v.clone();
    ///     pool.add(move |tx, _| {
    ///         v.write(tx, 99); // rolled back: this task panics
    ///         if i == 2 {
    ///             panic!("task {i} is broken");
    ///         }
    ///         v.write(tx, 0);
    ///         Ok(())
    ///     });
    /// }
    /// let panic = pool.run().unwrap_err();
    /// assert_eq!(panic.task().index(), 2);
    /// assert_eq!(panic.message(), Some("task 2 is broken"));
    /// assert_eq!(panic.report().tasks, 3); // the others committed
    /// assert_eq!(v.load(), 0);
    /// ```
    pub fn run(&mut self) -> Result<PoolReport, TaskPanic> {
        assert!(
            !in_transaction(),
            "commute: TaskPool::run called inside a transaction; transactions do not nest. Run \
             the pool from plain code, or from an on_commit hook"
        );
        assert!(
            !commute_stm::__private::in_pin(),
            "commute: TaskPool::run called inside a pin (pinned, TBox::load_with's closure); run \
             the pool once the pin has ended"
        );
        let started = Instant::now();
        let tasks = core::mem::take(&mut self.tasks);
        let workers = if tasks.is_empty() { 1 } else { self.threads };
        let run = Run::new(tasks, workers, self.ordered, self.next_id);
        let watcher = &self.watcher;
        let _watched = watcher.start();
        let tallies: Vec<sched::Tally> = std::thread::scope(|scope| {
            let run = &run;
            let spawned: Vec<_> = (1..workers)
                .map(|worker| {
                    std::thread::Builder::new()
                        .name(format!("commute-pool-{worker}"))
                        .spawn_scoped(scope, move || {
                            watcher.enter();
                            run.work(worker)
                        })
                        .expect("commute: could not start a TaskPool worker thread")
                })
                .collect();
            let mut tallies = vec![run.work(0)];
            for handle in spawned {
                // Tasks' panics are caught; a worker panic is a bug of the pool: pass it on.
                tallies.push(
                    handle
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                );
            }
            tallies
        });
        self.next_id = run.next_id();
        let mut report = PoolReport {
            threads: workers,
            elapsed: started.elapsed(),
            ..PoolReport::default()
        };
        for tally in tallies {
            report.tasks += tally.committed;
            report.panicked += tally.panicked;
            report.retried += tally.retried;
            report.stats += &tally.stats;
        }
        report.commits = report.stats.commits;
        report.aborts = report.stats.aborts();
        match run.into_first_panic() {
            None => Ok(report),
            Some((id, payload)) => Err(TaskPanic {
                task: TaskId(id),
                payload,
                report: Box::new(report),
            }),
        }
    }
}

impl Default for TaskPool {
    /// Same as [`TaskPool::new`].
    fn default() -> Self {
        TaskPool::new()
    }
}

impl fmt::Debug for TaskPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskPool")
            .field("threads", &self.threads)
            .field("ordered", &self.ordered)
            .field("pending_tasks", &self.tasks.len())
            .field("next_id", &self.next_id)
            .finish()
    }
}

impl TaskPool {
    /// A handle that shows, from another thread, what the pool's workers are blocked on while
    /// [`run`](TaskPool::run) runs (which borrows the pool): for finding out why a run does
    /// not end. Its `Debug` lists the workers' [blocked
    /// transactions](crate::blocked_transactions); so does
    /// [`blocked_transactions`](PoolWatcher::blocked_transactions).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{atomically, TaskPool, TVar};
    /// use std::sync::Arc;
    ///
    /// let gate = Arc::new(TVar::new(false).with_label("gate"));
    /// let mut pool = TaskPool::ordered().with_threads(1);
    /// let g = gate.clone();
    /// pool.add(move |tx, _| if g.read(tx)? { Ok(()) } else { tx.retry() });
    /// let watcher = pool.watcher();
    /// let runner = std::thread::spawn(move || pool.run().map(|r| r.tasks));
    /// // The run is stuck: its worker waits on "gate".
    /// let blocked = loop {
    ///     let blocked = watcher.blocked_transactions();
    ///     if !blocked.is_empty() {
    ///         break blocked;
    ///     }
    ///     std::thread::yield_now();
    /// };
    /// assert_eq!(blocked[0].waiting_on()[0].label(), Some("gate"));
    /// println!("{watcher:?}");
    /// atomically(|tx| Ok(gate.write(tx, true)));
    /// assert_eq!(runner.join().unwrap().unwrap(), 1);
    /// ```
    pub fn watcher(&self) -> PoolWatcher {
        self.watcher.clone()
    }
}

/// A view of a [`TaskPool`]'s workers for debugging a run that does not end, made by
/// [`TaskPool::watcher`]; cheap to clone and to send to another thread.
///
/// Its `Debug` shows whether the pool is running, its worker threads, and each worker's
/// transaction blocked in `retry`, one line each (see
/// [`BlockedTx`](crate::BlockedTx)'s `Display`).
///
/// # Examples
///
/// ```
/// let pool = commute::TaskPool::new();
/// let watcher = pool.watcher();
/// assert!(!watcher.is_running());
/// assert!(watcher.blocked_transactions().is_empty());
/// ```
#[derive(Clone, Default)]
pub struct PoolWatcher {
    /// The threads of the run in progress (empty between runs).
    workers: std::sync::Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>,
}

impl PoolWatcher {
    fn workers(&self) -> std::sync::MutexGuard<'_, Vec<std::thread::ThreadId>> {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lists the calling thread (the thread of `run`) as a worker until the guard drops.
    fn start(&self) -> impl Drop + '_ {
        struct Stop<'a>(&'a PoolWatcher);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.workers().clear();
            }
        }
        self.enter();
        Stop(self)
    }

    /// Lists the calling thread as a worker of the run in progress.
    fn enter(&self) {
        self.workers().push(std::thread::current().id());
    }

    /// True while the pool's [`run`](TaskPool::run) runs.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!commute::TaskPool::new().watcher().is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        !self.workers().is_empty()
    }

    /// The transactions of the pool's workers asleep in [`retry`](Transaction::retry) right
    /// now (the [`blocked_transactions`](crate::blocked_transactions) of the workers' threads).
    ///
    /// # Examples
    ///
    /// See [`TaskPool::watcher`].
    pub fn blocked_transactions(&self) -> Vec<crate::BlockedTx> {
        let workers = self.workers().clone();
        crate::blocked_transactions()
            .into_iter()
            .filter(|b| workers.contains(&b.thread_id()))
            .collect()
    }
}

impl fmt::Debug for PoolWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blocked: Vec<String> = self
            .blocked_transactions()
            .iter()
            .map(ToString::to_string)
            .collect();
        f.debug_struct("PoolWatcher")
            .field("running", &self.is_running())
            .field("workers", &self.workers().len())
            .field("blocked", &blocked)
            .finish()
    }
}

/// What a running task gets besides its transaction: its id, and a way to add tasks.
///
/// # Examples
///
/// ```
/// use commute::{TaskPool, TQueue};
/// use std::sync::Arc;
///
/// let seen = Arc::new(TQueue::new());
/// let mut pool = TaskPool::new().with_threads(1);
/// let s = seen.clone();
/// pool.add(move |tx, ctx| {
///     seen_push(&s, tx, ctx.task().index())?;
///     let s = s.clone();
///     ctx.add(tx, move |tx, ctx| seen_push(&s, tx, ctx.task().index()));
///     Ok(())
/// });
/// fn seen_push(q: &TQueue<u64>, tx: &commute::Transaction, id: u64) -> commute::StmResult<()> {
///     q.push(tx, id);
///     Ok(())
/// }
/// pool.run().unwrap();
/// assert_eq!(seen.atomic().pop(), Some(0));
/// assert_eq!(seen.atomic().pop(), Some(1)); // the child got the next id
/// ```
pub struct TaskCtx {
    /// The id of the task whose closure runs (or ran last): what [`task`](TaskCtx::task) says,
    /// and the owner of the children it adds. The scheduler does not take it for the task a
    /// panic belongs to (see `sched.rs`, `execute_alternatives`).
    current: Cell<u64>,
    worker: usize,
    /// Children of the worker's transactions, moved here by their commit hooks (or, unrun,
    /// by their drop: see [`Child`]).
    spawned: Rc<RefCell<Spawned>>,
}

/// Where the children of a worker's transactions go (see [`TaskCtx::add`]).
#[derive(Default)]
struct Spawned {
    /// Children of the transaction that committed, for the pool to number and queue.
    children: Vec<Box<Body>>,
    /// Children of attempts or `or_else` branches that were rolled back, with the id of the
    /// task that added them: the worker drops them itself after the transaction, each under
    /// its own `catch_unwind`, and a panic in one is that task's.
    discarded: Vec<(u64, Box<Body>)>,
}

/// A child held by its parent's commit hook. Run, the hook moves the closure to the
/// children; dropped unrun (the attempt or branch was rolled back), it moves the closure to
/// the discarded ones. Neither runs user code: the closure's `Drop`, which may panic, runs
/// later on the worker, outside the transaction, where the panic can be blamed on the task
/// that added it (the core drops a rolled-back branch's hooks at the end of the whole attempt,
/// after other tasks' closures ran in it, in `execute_alternatives`).
struct Child {
    owner: u64,
    body: Option<Box<Body>>,
    spawned: Rc<RefCell<Spawned>>,
}

impl Child {
    fn commit(mut self) {
        if let Some(body) = self.body.take() {
            self.spawned.borrow_mut().children.push(body);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Some(body) = self.body.take() {
            // The pool holds no borrow of `spawned` while a transaction runs or ends.
            self.spawned.borrow_mut().discarded.push((self.owner, body));
        }
    }
}

impl TaskCtx {
    fn new(worker: usize) -> Self {
        TaskCtx {
            current: Cell::new(0),
            worker,
            spawned: Rc::new(RefCell::new(Spawned::default())),
        }
    }

    /// How many children of rolled-back attempts and branches wait to be dropped.
    fn discarded_len(&self) -> usize {
        self.spawned.borrow().discarded.len()
    }

    /// Takes the children of rolled-back attempts and branches, if any.
    fn take_discarded(&self) -> Option<Vec<(u64, Box<Body>)>> {
        let mut spawned = self.spawned.borrow_mut();
        if spawned.discarded.is_empty() {
            return None;
        }
        Some(core::mem::take(&mut spawned.discarded))
    }

    /// Adds a task to the pool if, and when, this transaction commits.
    ///
    /// The child is held by a commit hook of the running attempt: it is discarded with the
    /// attempt if that is rolled back (conflict, `retry`, panic, or an
    /// [`or_else`](Transaction::or_else) branch that retries), and handed to the pool after the
    /// commit otherwise, so it never sees a state from before its parent's commit. In ordered
    /// mode it goes after every task added before the parent committed. A discarded child is
    /// dropped by the worker once the transaction has ended; a panic in its `Drop` is the
    /// panic of the task that added it (see [`TaskPool`], "Panics in tasks").
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{StmResult, TCounter, TaskCtx, TaskPool, Transaction};
    /// use std::sync::Arc;
    ///
    /// // A tree of tasks: each task below depth 3 adds two children.
    /// fn node(
    ///     done: Arc<TCounter>,
    ///     depth: u32,
    /// ) -> impl FnMut(&Transaction, &TaskCtx) -> StmResult<()> + Send + 'static {
    ///     move |tx, ctx| {
    ///         done.incr(tx);
    ///         if depth < 3 {
    ///             ctx.add(tx, node(done.clone(), depth + 1));
    ///             ctx.add(tx, node(done.clone(), depth + 1));
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// let done = Arc::new(TCounter::new());
    /// let mut pool = TaskPool::new().with_threads(2);
    /// pool.add(node(done.clone(), 0));
    /// let report = pool.run().unwrap();
    /// assert_eq!(done.load(), 15);
    /// assert_eq!(report.tasks, 15);
    /// ```
    pub fn add<F>(&self, tx: &Transaction, task: F)
    where
        F: FnMut(&Transaction, &TaskCtx) -> StmResult<()> + Send + 'static,
    {
        let child = Child {
            owner: self.current.get(),
            body: Some(Box::new(task)),
            spawned: Rc::clone(&self.spawned),
        };
        tx.on_commit(move || child.commit());
    }

    /// The id of the running task.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{TaskPool, TVar};
    /// use std::sync::Arc;
    ///
    /// let last = Arc::new(TVar::new(u64::MAX));
    /// let mut pool = TaskPool::new();
    /// let l = last.clone();
    /// let id = pool.add(move |tx, ctx| {
    ///     l.write(tx, ctx.task().index());
    ///     Ok(())
    /// });
    /// pool.run().unwrap();
    /// assert_eq!(last.load(), id.index());
    /// ```
    pub fn task(&self) -> TaskId {
        TaskId(self.current.get())
    }

    /// The index of the worker running the task (0 is the thread that called
    /// [`run`](TaskPool::run)).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute::{TaskPool, TVar};
    /// use std::sync::Arc;
    ///
    /// let w = Arc::new(TVar::new(u64::MAX));
    /// let mut pool = TaskPool::new().with_threads(1);
    /// let w2 = w.clone();
    /// pool.add(move |tx, ctx| {
    ///     w2.write(tx, ctx.worker() as u64);
    ///     Ok(())
    /// });
    /// pool.run().unwrap();
    /// assert_eq!(w.load(), 0);
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }
}

impl fmt::Debug for TaskCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskCtx")
            .field("task", &self.task())
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

/// The id of a task: its number in the order the pool received it (from 0, over the pool's life).
///
/// Tasks added with [`TaskPool::add`] are numbered when added; children when their parent
/// commits. In ordered mode ids are the commit order.
///
/// # Examples
///
/// ```
/// let mut pool = commute::TaskPool::new();
/// let a = pool.add(|_, _| Ok(()));
/// let b = pool.add(|_, _| Ok(()));
/// assert!(a < b);
/// assert_eq!(b.index(), 1);
/// assert_eq!(b.to_string(), "task #1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

impl TaskId {
    /// The number of the task.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pool = commute::TaskPool::new();
    /// assert_eq!(pool.add(|_, _| Ok(())).index(), 0);
    /// ```
    pub fn index(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task #{}", self.0)
    }
}

/// What a [`TaskPool::run`] did: tasks, commits, aborts and time.
///
/// `commits` and `aborts` are the core's [statistics](crate::stats) summed over the run's
/// workers: every transaction a worker ran, the pool's tasks and anything a task's commit hooks
/// ran. In unordered mode, a task attempt that retries ends in a (read-only, empty) commit that
/// hands it back to the pool, counted in `commits` and in `retried`.
///
/// # Examples
///
/// ```
/// let mut pool = commute::TaskPool::new().with_threads(2);
/// for _ in 0..100 {
///     pool.add(|_, _| Ok(()));
/// }
/// let report = pool.run().unwrap();
/// assert_eq!(report.tasks, 100);
/// assert_eq!(report.commits, 100);
/// assert_eq!(report.aborts_per_commit(), 0.0);
/// println!("{report}");
/// ```
#[derive(Clone, Debug, Default)]
pub struct PoolReport {
    /// Tasks that committed without a panic (each task counts once, here or in `panicked`).
    pub tasks: u64,
    /// Tasks that panicked: in an attempt (rolled back), or after their commit, in a commit
    /// hook or in their closure's drop (the commit stands).
    pub panicked: u64,
    /// Unordered mode: times a task's attempt retried and was put aside.
    pub retried: u64,
    /// Transactions committed by the workers.
    pub commits: u64,
    /// Conflict aborts on the workers (read validation and busy locks; retries excluded).
    pub aborts: u64,
    /// Worker threads used.
    pub threads: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The workers' statistics, summed (conflicts by variable and site included).
    pub stats: StatsSnapshot,
}

impl PoolReport {
    /// Conflict aborts per commit (0 when nothing committed).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute::PoolReport::default().aborts_per_commit(), 0.0);
    /// ```
    pub fn aborts_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.aborts as f64 / self.commits as f64
        }
    }

    /// Committed tasks per second of wall time (0 for an instantaneous run).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute::PoolReport::default().tasks_per_second(), 0.0);
    /// ```
    pub fn tasks_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs == 0.0 {
            0.0
        } else {
            self.tasks as f64 / secs
        }
    }
}

impl fmt::Display for PoolReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tasks on {} threads in {:.3?} ({:.0} tasks/s), {} commits, {} aborts ({:.4} per \
             commit)",
            self.tasks,
            self.threads,
            self.elapsed,
            self.tasks_per_second(),
            self.commits,
            self.aborts,
            self.aborts_per_commit()
        )?;
        if self.retried > 0 {
            write!(f, ", {} retried", self.retried)?;
        }
        if self.panicked > 0 {
            write!(f, ", {} panicked", self.panicked)?;
        }
        Ok(())
    }
}

/// The first panic of a [`TaskPool::run`]: which task, its payload, and the run's report.
///
/// # Examples
///
/// ```
/// let mut pool = commute::TaskPool::new();
/// pool.add(|_, _| Ok(()));
/// let bad = pool.add(|_, _| panic!("boom"));
/// let err = pool.run().unwrap_err();
/// assert_eq!(err.task(), bad);
/// assert_eq!(err.message(), Some("boom"));
/// assert_eq!(err.to_string(), "task #1 panicked: boom");
/// ```
pub struct TaskPanic {
    task: TaskId,
    payload: Box<dyn Any + Send>,
    report: Box<PoolReport>,
}

impl TaskPanic {
    /// The task that panicked.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pool = commute::TaskPool::new();
    /// let id = pool.add(|_, _| panic!("boom"));
    /// assert_eq!(pool.run().unwrap_err().task(), id);
    /// ```
    pub fn task(&self) -> TaskId {
        self.task
    }

    /// The panic message, if the payload is a string (as with `panic!("...")`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pool = commute::TaskPool::new();
    /// pool.add(|_, _| std::panic::panic_any(7u8));
    /// assert_eq!(pool.run().unwrap_err().message(), None);
    /// ```
    pub fn message(&self) -> Option<&str> {
        if let Some(s) = self.payload.downcast_ref::<&'static str>() {
            Some(s)
        } else {
            self.payload.downcast_ref::<String>().map(String::as_str)
        }
    }

    /// The panic payload.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pool = commute::TaskPool::new();
    /// pool.add(|_, _| std::panic::panic_any(7u8));
    /// assert_eq!(pool.run().unwrap_err().payload().downcast_ref::<u8>(), Some(&7));
    /// ```
    pub fn payload(&self) -> &(dyn Any + Send) {
        &*self.payload
    }

    /// Takes the panic payload.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pool = commute::TaskPool::new();
    /// pool.add(|_, _| std::panic::panic_any(7u8));
    /// let payload = pool.run().unwrap_err().into_payload();
    /// assert_eq!(payload.downcast_ref::<u8>(), Some(&7));
    /// ```
    pub fn into_payload(self) -> Box<dyn Any + Send> {
        self.payload
    }

    /// The report of the run (every other task ran to its end).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut pool = commute::TaskPool::new();
    /// pool.add(|_, _| Ok(()));
    /// pool.add(|_, _| panic!("boom"));
    /// let report = pool.run().unwrap_err().report().clone();
    /// assert_eq!((report.tasks, report.panicked), (1, 1));
    /// ```
    pub fn report(&self) -> &PoolReport {
        &self.report
    }

    /// Re-raises the panic on the calling thread, with its original payload.
    ///
    /// # Panics
    ///
    /// Always: that is what it is for.
    ///
    /// # Examples
    ///
    /// ```should_panic
    /// let mut pool = commute::TaskPool::new();
    /// pool.add(|_, _| panic!("boom"));
    /// if let Err(panic) = pool.run() {
    ///     panic.resume();
    /// }
    /// ```
    pub fn resume(self) -> ! {
        std::panic::resume_unwind(self.payload)
    }
}

impl fmt::Debug for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskPanic")
            .field("task", &self.task)
            .field("message", &self.message())
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for TaskPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(msg) => write!(f, "{} panicked: {msg}", self.task),
            None => write!(f, "{} panicked", self.task),
        }
    }
}

impl std::error::Error for TaskPanic {}

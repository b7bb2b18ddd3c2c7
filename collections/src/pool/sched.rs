//! The scheduler of one `TaskPool::run`: queues, workers, stealing, parking, completion.
//!
//! Nothing here is transactional: the pool's bookkeeping stays out of the tasks' transactions,
//! so an empty task costs one uncontended lock of the worker's own queue and one `atomically`
//! (with an `or_else` inside, for `retry`; see below).
//!
//! - **Queues.** Unordered mode: one `VecDeque` per worker behind its own `Mutex` (each on its own
//!   cache line). A worker pops from the front of its own queue; when it is empty it steals the
//!   back half of another worker's queue (`try_lock`, so a thief never waits for an owner).
//!   Ordered mode: one FIFO shared by all workers, so that the task whose turn it is has always
//!   been taken by a running worker (every taken task is older than every queued one), which is
//!   what rules out deadlock there (see `order.rs`).
//! - **Children.** `TaskCtx::add` registers an `on_commit` hook that moves the child into the
//!   worker's child buffer; after `atomically` returns, the worker numbers the children and
//!   appends them to its queue. So a child exists only if its parent's attempt committed (hooks
//!   of rolled-back attempts, and of `or_else` branches that retried, never run). Such a hook,
//!   dropped unrun, moves its child to the worker's discarded ones instead of dropping it; the
//!   worker drops those after `atomically` returns, each under its own `catch_unwind`, and a
//!   panic there is the panic of the task that added the child (`drop_discarded`).
//! - **Completion.** `unfinished` counts tasks added and not yet finished. It is incremented
//!   before children become visible, and decremented in batches: a worker counts the tasks it
//!   finished locally and subtracts them when it runs out of work. So `unfinished` is never below
//!   the true number, and reaching zero means every task has finished.
//! - **Parking** (`park.rs`). A worker with no work registers as a sleeper, re-checks every
//!   queue, and waits on a condition variable. Pushers wake one sleeper per task pushed (all of
//!   them for a batch at least as large), and so does a thief for the stolen tasks it keeps in
//!   its own queue, which a worker woken by the same batch may have found empty; the worker
//!   that brings `unfinished` to zero wakes everyone.
//! - **`retry` (unordered mode).** Each task runs inside `tx.or_else(task, |_| Ok(Retried))`, so
//!   a task that retries is rolled back without blocking its worker and put aside in `waiting`.
//!   A worker with nothing else to do takes all the tasks put aside and runs them as
//!   alternatives of *one* transaction (`or_else`s nested as a balanced tree, in their order):
//!   the first that can proceed commits; if none can, the transaction blocks until something
//!   any of them read changes. The others go back to the queue. So a task waiting for another
//!   task's effect never starves it of a worker. A panic out of that transaction is blamed on
//!   the alternative whose closure was running, or on the one that proceeded if the transaction
//!   committed; any other (a value a rolled-back alternative wrote, dropped at the end of the
//!   attempt, after the others ran) belongs to no task the pool can name: no task finishes,
//!   all go back to the queue, where each runs alone, and the panic is kept aside
//!   (`unattributed`), reported only if no task's own panic is.

use core::any::Any;
use core::cell::Cell;
use core::panic::AssertUnwindSafe;
use std::collections::VecDeque;
use std::panic::catch_unwind;
use std::rc::Rc;
use std::sync::PoisonError;

use crossbeam_utils::CachePadded;

use super::order::Order;
use super::park::{Queues, Sleepers, lock};
use super::{Body, TaskCtx};
use crate::stats::{self, StatsSnapshot};
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::{StmResult, Transaction, atomically};

/// A task in a queue: its id and its closure.
pub(super) struct Task {
    pub(super) id: u64,
    pub(super) body: Box<Body>,
}

/// What one worker did, summed into the run's report.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) committed: u64,
    pub(super) panicked: u64,
    pub(super) retried: u64,
    pub(super) stats: StatsSnapshot,
}

/// The first panic of a run: the task's id and the payload.
pub(super) type FirstPanic = Option<(u64, Box<dyn Any + Send>)>;

/// How a task's transaction ended.
enum Outcome {
    Committed,
    Retried,
}

/// The shared state of one run.
pub(super) struct Run {
    /// One queue per worker (unordered) or one shared FIFO (ordered).
    queues: Box<Queues<Task>>,
    order: Option<Order>,
    /// Tasks added and not yet finished (never below the true number; see the module doc).
    unfinished: CachePadded<AtomicUsize>,
    /// The id of the next child.
    next_id: CachePadded<AtomicU64>,
    /// Parked workers.
    sleepers: Sleepers,
    /// Unordered mode: tasks whose last attempt retried.
    waiting: Mutex<Vec<Task>>,
    first_panic: Mutex<FirstPanic>,
    /// Unordered mode: the first panic out of put-aside alternatives that the pool could not
    /// blame on one of them (see the module doc), with the id of an alternative that retried
    /// in that attempt; reported only if no task's own panic is.
    unattributed: Mutex<FirstPanic>,
}

impl Run {
    /// A run of `tasks` (ids ascending from `tasks[0].id`) on `workers` workers; children are
    /// numbered from `next_id`.
    pub(super) fn new(tasks: Vec<Task>, workers: usize, ordered: bool, next_id: u64) -> Self {
        let unfinished = tasks.len();
        let queues: Box<[_]> = if ordered {
            Box::new([CachePadded::new(Mutex::new(VecDeque::from(tasks)))])
        } else {
            // Contiguous shares, so that neighbouring tasks (often touching neighbouring data)
            // run on the same worker.
            let share = unfinished.div_ceil(workers).max(1);
            let mut tasks = tasks.into_iter();
            (0..workers)
                .map(|_| CachePadded::new(Mutex::new(tasks.by_ref().take(share).collect())))
                .collect()
        };
        let order = ordered.then(|| {
            let first = lock(&queues[0]).front().map_or(next_id, |t| t.id);
            Order::new(first, workers)
        });
        Run {
            queues,
            order,
            unfinished: CachePadded::new(AtomicUsize::new(unfinished)),
            next_id: CachePadded::new(AtomicU64::new(next_id)),
            sleepers: Sleepers::new(),
            waiting: Mutex::new(Vec::new()),
            first_panic: Mutex::new(None),
            unattributed: Mutex::new(None),
        }
    }

    /// The id the next child would get.
    pub(super) fn next_id(&self) -> u64 {
        self.next_id.load(Ordering::Acquire)
    }

    /// The first panic, if any task panicked; else the first panic that the pool could not
    /// blame on a task, if any.
    pub(super) fn into_first_panic(self) -> FirstPanic {
        let unattributed = self
            .unattributed
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        match self
            .first_panic
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            None => unattributed,
            first => {
                if let Some((_, payload)) = unattributed {
                    crate::drop_payload(payload);
                }
                first
            }
        }
    }

    /// The queue worker `worker` pops from and pushes children to.
    fn home(&self, worker: usize) -> usize {
        if self.order.is_some() { 0 } else { worker }
    }

    /// Worker `worker`'s loop: run tasks until every task of the run has finished.
    pub(super) fn work(&self, worker: usize) -> Tally {
        let before = stats::thread();
        if let Some(order) = &self.order {
            order.register(worker);
        }
        let ctx = TaskCtx::new(worker);
        let mut tally = Tally::default();
        let mut finished = 0;
        loop {
            if let Some(task) = self.next_task(worker) {
                finished += self.execute(task, &ctx, &mut tally);
                continue;
            }
            self.flush_finished(&mut finished);
            if let Some(alternatives) = self.take_waiting() {
                finished += self.execute_alternatives(alternatives, &ctx, &mut tally);
                continue;
            }
            if !self.park() {
                break;
            }
        }
        tally.stats = stats::thread() - before;
        tally
    }

    /// The next task for `worker`: its own queue's front, else half of another queue's back.
    fn next_task(&self, worker: usize) -> Option<Task> {
        super::park::next_task(&self.queues, self.home(worker), &self.sleepers)
    }

    /// Runs one task to its end (commit, panic, or, unordered, a retry that puts it aside).
    /// Returns how many tasks finished (0 or 1).
    fn execute(&self, task: Task, ctx: &TaskCtx, tally: &mut Tally) -> usize {
        ctx.current.set(task.id);
        match &self.order {
            Some(order) => self.execute_in_order(order, task, ctx, tally),
            None => self.execute_unordered(task, ctx, tally),
        }
    }

    /// Ordered mode: the attempt waits for its turn before it may commit (see `order.rs`).
    fn execute_in_order(
        &self,
        order: &Order,
        task: Task,
        ctx: &TaskCtx,
        tally: &mut Tally,
    ) -> usize {
        let Task { id, mut body } = task;
        let worker = ctx.worker;
        let mut attempts = 0u32;
        let at_turn = Cell::new(false);
        // The first attempt began before the task's turn: children it added and that were
        // discarded (it was rolled back) rest on a state the serial run may not meet; the
        // first `excused` discarded children are those.
        let first_before_turn = Cell::new(false);
        let excused = Cell::new(0);
        let mut run = || {
            catch_unwind(AssertUnwindSafe(|| {
                atomically(|tx| {
                    attempts += 1;
                    if attempts == 2 && first_before_turn.get() {
                        excused.set(ctx.discarded_len());
                    }
                    if attempts > 1 {
                        // Re-runs start at the turn: nothing earlier can invalidate them again.
                        order.wait_turn(id, worker, None)?;
                        at_turn.set(true);
                    } else if order.is_turn(id) {
                        // Begun after every task before it ended: a state of the serial run.
                        at_turn.set(true);
                    } else {
                        first_before_turn.set(true);
                    }
                    body(tx, ctx)?;
                    order.wait_turn(id, worker, Some(tx))?;
                    at_turn.set(true);
                    order.join_predecessor(tx)
                })
            }))
        };
        let mut outcome = run();
        if outcome.is_err() && !at_turn.get() {
            // The first attempt panicked before the task's turn, on a state that the tasks
            // before it may not have committed to yet: a panic the serial run in order would
            // not meet, as a conflict. It runs again at its turn, where a panic is the task's.
            if let Err(payload) = core::mem::replace(&mut outcome, run()) {
                crate::drop_payload(payload);
            }
        }
        // The children its rolled-back attempts added: their panics are the task's (but for
        // those of a first attempt begun before its turn, as above).
        let mut late = None;
        let excused = excused.get();
        drop_discarded(ctx, |index, _, payload| {
            if index < excused {
                crate::drop_payload(payload);
            } else {
                crate::keep_first_panic(&mut late, payload);
            }
        });
        if let Some(late) = late {
            match outcome {
                // After its commit, which stands.
                Ok(()) => outcome = Err(late),
                Err(_) => crate::drop_payload(late),
            }
        }
        let panicked = match outcome {
            Ok(()) => {
                tally.committed += 1;
                false
            }
            Err(payload) => {
                // Still in order: the panic is recorded, and the turn passed on, at its turn.
                // Outside any attempt: nothing to give way to.
                let waited = order.wait_turn(id, worker, None);
                debug_assert!(waited.is_ok());
                tally.panicked += 1;
                self.record_panic(id, payload);
                true
            }
        };
        // Children join the queue, and the closure's drop counts, before the turn moves on:
        // their place in the order is fixed.
        self.push_children(ctx);
        self.drop_task(id, body, panicked, tally);
        order.advance(id);
        1
    }

    /// Unordered mode: a retry puts the task aside instead of blocking the worker.
    fn execute_unordered(&self, task: Task, ctx: &TaskCtx, tally: &mut Tally) -> usize {
        let Task { id, mut body } = task;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| {
                tx.or_else(
                    |tx| body(tx, ctx).map(|()| Outcome::Committed),
                    |_| Ok(Outcome::Retried),
                )
            })
        }));
        // The children its rolled-back attempts (or its retried branch) added: their panics
        // are the task's.
        let mut late = None;
        drop_discarded(ctx, |_, _, payload| {
            crate::keep_first_panic(&mut late, payload);
        });
        let panicked = match (outcome, late) {
            (Ok(Outcome::Committed), None) => {
                tally.committed += 1;
                false
            }
            (Ok(Outcome::Retried), None) => {
                // The retried branch's commit hooks were dropped: it has no children.
                tally.retried += 1;
                self.put_aside(Task { id, body });
                return 0;
            }
            // After a commit (which stands, children included) or a retry, as when the
            // child's drop came out of `atomically`, the task ends as panicked.
            (Ok(_), Some(payload)) | (Err(payload), None) => {
                tally.panicked += 1;
                self.record_panic(id, payload);
                true
            }
            (Err(payload), Some(late)) => {
                crate::drop_payload(late);
                tally.panicked += 1;
                self.record_panic(id, payload);
                true
            }
        };
        self.push_children(ctx);
        self.drop_task(id, body, panicked, tally);
        1
    }

    /// Runs put-aside tasks as alternatives of one transaction (see the module doc); the first
    /// that can proceed commits, the others go back to the queue. Returns how many finished:
    /// the one that committed, and every one that panicked.
    fn execute_alternatives(
        &self,
        mut tasks: Vec<Task>,
        ctx: &TaskCtx,
        tally: &mut Tally,
    ) -> usize {
        let state = Alternatives::default();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            atomically(|tx| {
                state.named.set(Named::Nobody);
                state.first_failed.set(None);
                let i = first_that_proceeds(tx, &mut tasks, 0, ctx, &state)?;
                let committed = Rc::clone(&state.committed);
                tx.on_commit(move || committed.set(true));
                Ok(i)
            })
        }));
        // Per alternative: it panicked (and counts so, once).
        let mut panicked = vec![false; tasks.len()];
        let mut committed = None;
        match outcome {
            Ok(i) => {
                tally.committed += 1;
                committed = Some(i);
            }
            Err(payload) => match state.named.get() {
                // Its closure panicked: rolled back.
                Named::Running(j) => {
                    tally.panicked += 1;
                    panicked[j] = true;
                    self.record_panic(tasks[j].id, payload);
                }
                // After the commit (which stands): in its hooks, or in what the attempt left.
                Named::Proceeded(j) if state.committed.get() => {
                    tally.panicked += 1;
                    panicked[j] = true;
                    committed = Some(j);
                    self.record_panic(tasks[j].id, payload);
                }
                // At the end of an attempt rolled back (the whole transaction retried, or the
                // commit of the one that proceeded failed): what a rolled-back alternative
                // left, whose owner the pool cannot tell.
                Named::Proceeded(j) => {
                    let named = state.first_failed.get().unwrap_or(j);
                    self.keep_unattributed(tasks[named].id, payload);
                }
                Named::Nobody => {
                    let named = state.first_failed.get().unwrap_or(0);
                    self.keep_unattributed(tasks[named].id, payload);
                }
            },
        }
        self.push_children(ctx);
        drop_discarded(ctx, |_, owner, payload| {
            let Some(k) = tasks.iter().position(|t| t.id == owner) else {
                debug_assert!(
                    false,
                    "a discarded child's owner is one of the alternatives"
                );
                crate::drop_payload(payload);
                return;
            };
            if panicked[k] {
                crate::drop_payload(payload);
                return;
            }
            if committed == Some(k) {
                // After its commit, which stands.
                tally.committed -= 1;
            }
            tally.panicked += 1;
            panicked[k] = true;
            self.record_panic(owner, payload);
        });
        let mut finished = 0;
        let mut back = Vec::with_capacity(tasks.len());
        for (k, Task { id, body }) in tasks.into_iter().enumerate() {
            if panicked[k] || committed == Some(k) {
                self.drop_task(id, body, panicked[k], tally);
                finished += 1;
            } else {
                back.push(Task { id, body });
            }
        }
        if !back.is_empty() {
            // Something changed (a task committed or panicked, or a panic no task is blamed
            // for: then each runs alone): let them try again.
            let n = back.len();
            lock(&self.queues[self.home(ctx.worker)]).extend(back);
            self.sleepers.wake(n);
        }
        finished
    }

    /// Drops a finished task's closure; a panic in its `Drop` counts as the task's panic: a
    /// task that had `panicked` already counts once, with its first panic; a committed one
    /// counts as panicked instead (its commit stands).
    fn drop_task(&self, id: u64, body: Box<Body>, panicked: bool, tally: &mut Tally) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(body))) {
            if panicked {
                crate::drop_payload(payload);
            } else {
                tally.committed -= 1;
                tally.panicked += 1;
                self.record_panic(id, payload);
            }
        }
    }

    /// Moves the children that the last transaction committed into the worker's queue.
    fn push_children(&self, ctx: &TaskCtx) {
        let children: Vec<Box<Body>> = core::mem::take(&mut ctx.spawned.borrow_mut().children);
        if children.is_empty() {
            return;
        }
        let n = children.len();
        // Counted before anyone can see (steal, finish) them.
        self.unfinished.fetch_add(n, Ordering::AcqRel);
        let mut queue = lock(&self.queues[self.home(ctx.worker)]);
        // Numbered under the queue lock: in ordered mode, queue order is id order.
        let first = self.next_id.fetch_add(n as u64, Ordering::AcqRel);
        queue.extend(
            children
                .into_iter()
                .zip(first..)
                .map(|(body, id)| Task { id, body }),
        );
        drop(queue);
        self.sleepers.wake(n);
    }

    /// Unordered mode: a task whose attempt retried waits for a worker with nothing else to do.
    fn put_aside(&self, task: Task) {
        lock(&self.waiting).push(task);
        self.sleepers.wake(1);
    }

    /// Every put-aside task, oldest first. All of them: a worker that took only some would block
    /// on what those read while one it left could go on (and, alone, never try it).
    fn take_waiting(&self) -> Option<Vec<Task>> {
        let mut waiting = lock(&self.waiting);
        if waiting.is_empty() {
            return None;
        }
        Some(core::mem::take(&mut *waiting))
    }

    /// Keeps `payload` aside if it is the run's first panic that no task is blamed for (see
    /// `execute_alternatives`); drops it otherwise.
    fn keep_unattributed(&self, id: u64, payload: Box<dyn Any + Send>) {
        let mut first = lock(&self.unattributed);
        if first.is_none() {
            *first = Some((id, payload));
            return;
        }
        drop(first);
        crate::drop_payload(payload);
    }

    /// Keeps `payload` if it is the run's first panic; drops it otherwise.
    fn record_panic(&self, id: u64, payload: Box<dyn Any + Send>) {
        let mut first = lock(&self.first_panic);
        if first.is_none() {
            *first = Some((id, payload));
            return;
        }
        drop(first);
        crate::drop_payload(payload);
    }

    /// Subtracts the tasks this worker finished; wakes everyone if that was the last.
    fn flush_finished(&self, finished: &mut usize) {
        if *finished == 0 {
            return;
        }
        let n = core::mem::take(finished);
        if self.unfinished.fetch_sub(n, Ordering::AcqRel) == n {
            self.sleepers.wake_all();
        }
    }

    fn has_work(&self) -> bool {
        self.queues.iter().any(|q| !lock(q).is_empty()) || !lock(&self.waiting).is_empty()
    }

    /// Waits until there is work (true) or every task has finished (false).
    fn park(&self) -> bool {
        self.sleepers.park(
            || self.unfinished.load(Ordering::SeqCst) == 0,
            || self.has_work(),
        )
    }
}

/// The task a panic out of the alternatives' transaction is blamed on, for the attempt in
/// progress.
#[derive(Clone, Copy)]
enum Named {
    /// None: no closure runs, and none has proceeded.
    Nobody,
    /// The alternative (an index) whose closure runs.
    Running(usize),
    /// The alternative whose closure returned `Ok`: the transaction commits it, if anything.
    Proceeded(usize),
}

/// What the pool knows of the alternatives' transaction when a panic comes out of it.
struct Alternatives {
    named: Cell<Named>,
    /// The first alternative whose closure returned an error (retry or conflict) in the attempt.
    first_failed: Cell<Option<usize>>,
    /// Set by a commit hook of the pool's own, registered after every task's: the transaction
    /// committed (the core runs every hook even if an earlier one, or a destructor, panics).
    committed: Rc<Cell<bool>>,
}

impl Default for Alternatives {
    fn default() -> Self {
        Alternatives {
            named: Cell::new(Named::Nobody),
            first_failed: Cell::new(None),
            committed: Rc::new(Cell::new(false)),
        }
    }
}

/// Drops the children that rolled-back attempts and branches left on `ctx` (see `Child` in
/// `mod.rs`), each under its own `catch_unwind`, in the order they were discarded; hands each
/// panic to `blame` with the child's place in that order and the id of the task that added it.
fn drop_discarded(ctx: &TaskCtx, mut blame: impl FnMut(usize, u64, Box<dyn Any + Send>)) {
    let mut index = 0;
    // A closure's `Drop` cannot add children (it has no `TaskCtx`): one round is all, but a
    // loop costs nothing.
    while let Some(discarded) = ctx.take_discarded() {
        for (owner, body) in discarded {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(body))) {
                blame(index, owner, payload);
            }
            index += 1;
        }
    }
}

/// Tries `tasks` in turn as `or_else` alternatives; returns the index of the one that proceeded
/// (`base` plus its index in `tasks`). If all retry, so does the transaction (it waits for a
/// change to anything any of them read). The alternatives nest as a balanced tree (the first
/// half, or else the second), so that the nesting, and the stack, grow with the logarithm of
/// the number of tasks.
fn first_that_proceeds(
    tx: &Transaction,
    tasks: &mut [Task],
    base: usize,
    ctx: &TaskCtx,
    state: &Alternatives,
) -> StmResult<usize> {
    match tasks {
        [] => tx.retry(),
        [only] => {
            ctx.current.set(only.id);
            state.named.set(Named::Running(base));
            match (only.body)(tx, ctx) {
                Ok(()) => {
                    state.named.set(Named::Proceeded(base));
                    Ok(base)
                }
                Err(e) => {
                    state.named.set(Named::Nobody);
                    if state.first_failed.get().is_none() {
                        state.first_failed.set(Some(base));
                    }
                    Err(e)
                }
            }
        }
        _ => {
            let (first, second) = tasks.split_at_mut(tasks.len() / 2);
            let skipped = first.len();
            tx.or_else(
                |tx| first_that_proceeds(tx, first, base, ctx, state),
                |tx| first_that_proceeds(tx, second, base + skipped, ctx, state),
            )
        }
    }
}

//! Loom models of how `TaskPool` parks a worker with nothing to do and wakes it
//! (`collections/src/pool/park.rs`): a worker registers as a sleeper, re-checks the queues and
//! waits on a condition variable; a worker that pushes tasks wakes a sleeper per task, and the
//! worker that finishes the run's last task wakes every one. A lost wake-up leaves a worker
//! waiting for good, which loom reports as a deadlock.
//!
//! The workers run the scheduler's loop (`sched.rs`, `Run::work`) over queues of task numbers:
//! a worker takes the scheduler's next task (`park.rs`, `next_task`: its own queue's front,
//! else the back half of another's, taken with `try_lock`, waking sleepers for what it keeps),
//! else subtracts the tasks it finished and parks. Every task must run once, and every
//! worker's loop must end.
#![cfg(loom)]

use commute::__loom::{Sleepers, next_task};
use commute_loom_tests::run_model;
use crossbeam_utils::CachePadded;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use std::collections::VecDeque;

/// The shared state of a modelled run: one queue per worker, the count of unfinished tasks,
/// the sleepers, and how often each task ran.
struct Run {
    queues: Vec<CachePadded<Mutex<VecDeque<usize>>>>,
    unfinished: AtomicUsize,
    sleepers: Sleepers,
    ran: Vec<AtomicUsize>,
}

impl Run {
    /// A run of `tasks` tasks in all, of which `queued[w]` start in worker `w`'s queue.
    fn new(queued: &[&[usize]], tasks: usize) -> Self {
        let initial: usize = queued.iter().map(|q| q.len()).sum();
        Run {
            queues: queued
                .iter()
                .map(|q| CachePadded::new(Mutex::new(q.iter().copied().collect())))
                .collect(),
            unfinished: AtomicUsize::new(initial),
            sleepers: Sleepers::default(),
            ran: (0..tasks).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Pushes `tasks` onto worker `worker`'s queue and wakes sleepers for them, counted as
    /// unfinished before anyone can see them (`Run::push_children`).
    fn push(&self, worker: usize, tasks: &[usize]) {
        self.unfinished.fetch_add(tasks.len(), Ordering::AcqRel);
        self.queues[worker].lock().unwrap().extend(tasks);
        self.sleepers.wake(tasks.len());
    }

    /// Worker `worker`'s next task: the scheduler's own (`Run::next_task`).
    fn next_task(&self, worker: usize) -> Option<usize> {
        next_task(&self.queues, worker, &self.sleepers)
    }

    fn has_work(&self) -> bool {
        self.queues.iter().any(|q| !q.lock().unwrap().is_empty())
    }

    /// Subtracts `finished` tasks; wakes every sleeper if they were the last.
    fn flush(&self, finished: usize) {
        if finished > 0 && self.unfinished.fetch_sub(finished, Ordering::AcqRel) == finished {
            self.sleepers.wake_all();
        }
    }

    /// The scheduler's loop for worker `worker`, each task run by `run` (which returns how
    /// many tasks finished with it), until every task has finished.
    fn work(&self, worker: usize, run: impl Fn(usize)) {
        let mut finished = 0;
        loop {
            if let Some(task) = self.next_task(worker) {
                self.ran[task].fetch_add(1, Ordering::Relaxed);
                run(task);
                finished += 1;
                continue;
            }
            self.flush(core::mem::take(&mut finished));
            if !self.sleepers.park(
                || self.unfinished.load(Ordering::SeqCst) == 0,
                || self.has_work(),
            ) {
                break;
            }
        }
    }

    /// After every worker's loop has ended: each task ran once, and none is left.
    fn check(&self) {
        assert_eq!(self.unfinished.load(Ordering::Acquire), 0);
        for (task, ran) in self.ran.iter().enumerate() {
            assert_eq!(ran.load(Ordering::Relaxed), 1, "task {task} ran once");
        }
        assert!(!self.has_work());
    }
}

/// A flag that one thread waits on (blocking, so that loom sees a thread that waits for good)
/// until another raises it.
#[derive(Default)]
struct Flag {
    raised: Mutex<bool>,
    changed: Condvar,
}

impl Flag {
    fn raise(&self) {
        *self.raised.lock().unwrap() = true;
        self.changed.notify_all();
    }

    fn wait(&self) {
        let mut raised = self.raised.lock().unwrap();
        while !*raised {
            raised = self.changed.wait(raised).unwrap();
        }
    }
}

/// Runs `workers` workers on `run` (the model's thread as worker 0), each with its `run`
/// function, joins them and checks the run.
fn run_workers(run: Arc<Run>, body: impl Fn(&Run, usize, usize) + Send + Sync + 'static) {
    let body = Arc::new(body);
    let workers = run.queues.len();
    let threads: Vec<_> = (1..workers)
        .map(|worker| {
            let (run, body) = (run.clone(), body.clone());
            thread::spawn(move || run.work(worker, |task| body(&run, worker, task)))
        })
        .collect();
    run.work(0, |task| body(&run, 0, task));
    for t in threads {
        t.join().unwrap();
    }
    run.check();
}

/// Worker 0's task 0 pushes task 1 onto its own queue and, instead of running it, waits until
/// another worker has run it: only worker 1 can, by stealing it before it parks, by finding it
/// in its re-check, or by being woken for it. A push whose wake-up is lost (a sleeper that
/// registers after its re-check, a notification sent outside the `idle` lock, or none) leaves
/// both workers waiting.
#[test]
fn a_pushed_task_wakes_a_parked_worker() {
    run_model("a_pushed_task_wakes_a_parked_worker", || {
        let child_ran = Arc::new(Flag::default());
        let run = Arc::new(Run::new(&[&[0], &[]], 2));
        run_workers(run, move |run, worker, task| match task {
            0 => {
                run.push(worker, &[1]);
                child_ran.wait();
            }
            _ => child_ran.raise(),
        });
    });
}

/// One task, on worker 0's queue, and two more workers with nothing to do: both park (or are
/// about to), and the worker that finishes the task must wake both, or one waits for good.
#[test]
fn the_last_task_wakes_every_parked_worker() {
    run_model("the_last_task_wakes_every_parked_worker", || {
        let run = Arc::new(Run::new(&[&[0], &[], &[]], 1));
        run_workers(run, |_, _, _| {});
    });
}

/// Task 0 pushes two tasks at once and waits until both have run on the other two workers,
/// one each (a task waits for its partner): the push must wake as many sleepers as it pushed
/// tasks (all of them when it pushed at least as many).
#[test]
fn a_batch_wakes_a_parked_worker_per_task() {
    run_model("a_batch_wakes_a_parked_worker_per_task", || {
        let arrived = Arc::new(AtomicUsize::new(0));
        let both = Arc::new(Flag::default());
        let run = Arc::new(Run::new(&[&[0], &[], &[]], 3));
        run_workers(run, move |run, worker, task| {
            if task == 0 {
                run.push(worker, &[1, 2]);
            } else if arrived.fetch_add(1, Ordering::AcqRel) == 1 {
                both.raise();
                return;
            }
            both.wait();
        });
    });
}

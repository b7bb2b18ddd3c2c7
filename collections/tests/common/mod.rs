//! Helpers shared by the collections' test files (each test file is its own crate and includes
//! this module with `mod common;`, and uses some of them).
#![allow(dead_code)]

#[allow(unused_imports)] // a file may use none of the re-exports
pub(crate) use commute_test_support::with_watchdog;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use commute::{StmResult, Transaction, atomically, reclaim_retired, stats};
use quickcheck::{Arbitrary, Gen};

/// Runs `f(thread_index)` on `threads` threads started together; returns their results.
pub(crate) fn run_threads<R: Send + 'static>(
    threads: usize,
    f: impl Fn(usize) -> R + Send + Sync + 'static,
) -> Vec<R> {
    let f = Arc::new(f);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (f, start) = (f.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                f(t)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Sums, over the threads that ran `f`, the conflict aborts of their transactions.
pub(crate) fn aborts_of(threads: usize, f: impl Fn(usize) + Send + Sync + 'static) -> u64 {
    run_threads(threads, move |t| {
        let before = stats::thread();
        f(t);
        (stats::thread() - before).aborts()
    })
    .into_iter()
    .sum()
}

/// How a group of operations runs in the model-based tests.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Each operation through `atomic()`, as its own transaction.
    OneCall,
    /// All operations in one transaction.
    OneTx,
    /// All operations in an `or_else` branch that then retries: nothing of it may stay.
    RolledBack,
}

impl Arbitrary for Mode {
    fn arbitrary(g: &mut Gen) -> Self {
        *g.choose(&[
            Mode::OneCall,
            Mode::OneCall,
            Mode::OneTx,
            Mode::OneTx,
            Mode::RolledBack,
        ])
        .unwrap()
    }
}

/// Runs a group of operations on the sequential model (unless the group is rolled back) and on
/// the collection in `mode`; returns what the model gave and what the collection gave.
pub(crate) fn run_group<Op, Out>(
    mode: Mode,
    ops: &[Op],
    model_op: impl FnMut(&Op) -> Out,
    one_call_op: impl Fn(&Op) -> Out,
    tx_op: impl Fn(&Transaction, &Op) -> StmResult<Out>,
) -> (Vec<Out>, Vec<Out>) {
    let expected = match mode {
        Mode::RolledBack => Vec::new(),
        _ => ops.iter().map(model_op).collect(),
    };
    let got = match mode {
        Mode::OneCall => ops.iter().map(one_call_op).collect(),
        Mode::OneTx => atomically(|tx| ops.iter().map(|op| tx_op(tx, op)).collect()),
        Mode::RolledBack => {
            atomically(|tx| {
                tx.or_else(
                    |tx| {
                        for op in ops {
                            tx_op(tx, op)?;
                        }
                        tx.retry()
                    },
                    |_| Ok(()),
                )
            });
            Vec::new()
        }
    };
    (expected, got)
}

/// Runs reclamation until `done` holds; false if it still does not after a generous deadline
/// (the caller asserts, with its own message). The tests of a file run in parallel, and another
/// test's transaction holds back reclamation for as long as the scheduler leaves its pinned
/// thread off a core: milliseconds on a busy two-core machine.
pub(crate) fn reclaim_until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        reclaim_retired();
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
    }
}

/// Every key hashes alike: all keys share one leaf, so an operation on one key rewrites the
/// leaf that operations on the others write too.
#[derive(Clone, Default)]
pub(crate) struct OneBucket;

impl std::hash::BuildHasher for OneBucket {
    type Hasher = Constant;
    fn build_hasher(&self) -> Constant {
        Constant
    }
}

/// [`OneBucket`]'s hasher: the same hash for every key.
pub(crate) struct Constant;

impl std::hash::Hasher for Constant {
    fn finish(&self) -> u64 {
        42
    }
    fn write(&mut self, _: &[u8]) {}
}

// Threads seen from `/proc` (Linux only): whether a pool worker sleeps.

/// The id of the calling thread.
#[cfg(target_os = "linux")]
pub(crate) fn own_tid() -> String {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name().unwrap().to_string_lossy().into_owned()
}

/// True if a thread of this process named `name` is asleep (see [`asleep`]).
///
/// Looked up anew at each call, never by a thread id kept from an earlier look: a pool's
/// worker takes its name only once it runs, and a worker of the pool before, joined but still
/// exiting, may be listed under the same name for a moment (a test that kept its id waited for
/// it to fall asleep for ever, once in a few hundred runs).
#[cfg(target_os = "linux")]
pub(crate) fn named_asleep(name: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.filter_map(Result::ok).any(|e| {
        std::fs::read_to_string(e.path().join("comm")).is_ok_and(|comm| comm.trim_end() == name)
            && asleep(&e.file_name().to_string_lossy())
    })
}

/// True if thread `tid` is asleep (state `S`: blocked in the kernel, not runnable).
#[cfg(target_os = "linux")]
pub(crate) fn asleep(tid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| {
            let after = &s[s.rfind(')')? + 1..];
            after.trim_start().chars().next()
        })
        == Some('S')
}

/// A key whose equality and hash ignore its tag: equal keys that are not identical, to tell
/// which of several equal keys a map or set kept.
#[derive(Clone, Debug)]
pub(crate) struct Tagged {
    pub(crate) id: u32,
    pub(crate) tag: &'static str,
}

impl PartialEq for Tagged {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Tagged {}

impl std::hash::Hash for Tagged {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

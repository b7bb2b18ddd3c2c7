//! Loom models of commute's STM protocol and collections.
//!
//! The models live in `tests/` and compile only under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
//!     LOOM_MAX_PREEMPTIONS=3 cargo test -p commute-loom-tests --release
//! ```
//!
//! Each model is run through `run_model` (or `run_model_with`), which prints the model's name,
//! how many executions loom explored and how long it took. Each model's doc comment names the
//! bug it exists to catch.
//!
//! Habits of loom 0.7 shape the harness, and what its models can see:
//!
//! - Loom drops its `lazy_static`s (the core's globals) before the thread-locals of its main
//!   thread, and `JoinHandle::join` returns before the joined thread's thread-locals are dropped.
//!   The core's per-thread context uses the globals when it is dropped, so a model's body runs on
//!   a spawned thread, and joined threads are given time to finish with `settle`.
//! - When a model fails, loom drops its globals and its threads' thread-locals after the
//!   execution has ended, while the failure's panic unwinds; dropping the core's globals and
//!   thread contexts there (they hold loom objects) panicked again and aborted the test binary,
//!   so that only the first failing model of a binary was reported. Under loom they are kept
//!   undropped while a panic unwinds (`KeptOnFailure` in `stm/src/sync.rs`): a failing model
//!   fails its test, and the binary goes on with the next.
//! - Loom can order a plain store between the read and the write of another thread's
//!   read-modify-write (tokio-rs/loom#254), which C11 forbids; code that a model checks must not
//!   rely on a store being seen by a later read-modify-write of another thread.
//! - Loom lets a load return a superseded value for as long as nothing orders the newer store
//!   before it, so a thread that waits in a loop of loads for another's store can be shown the
//!   old value on every turn, which hardware does not do. At higher preemption bounds such
//!   schedules exceed loom's branch limit ("Model exceeded maximum number of branches") without
//!   any thread holding what the waiter waits for; a model where that happens at 3 runs at 2
//!   (`capped_builder`, with the reason in the model's doc).
//! - Loom does not model `SeqCst` accesses (it runs them as acquire/release), so the core writes
//!   them under loom as acquire/release plus a `SeqCst` fence (`clock::loom_fence`). Loom's
//!   `SeqCst` fence is stronger than C11's: each happens after every earlier one of any thread,
//!   as if the two had synchronised, and, an acquire and release fence too, it then carries
//!   what was ordered before the one to what is ordered after the other, with no atomic access
//!   linking them. An ordering next to such a fence (the
//!   write-back's value stores after the commit's fence, a lock restored after a failed
//!   validation, the snapshot registry's counts) can be weakened without any model failing,
//!   though the build outside loom, which has no fence there, needs it. Those orderings are
//!   checked by review only (`docs/reliability.md`, "An eleventh audit").

#[cfg(loom)]
pub use model::{
    ModelBuilder, capped_builder, model_builder, run_model, run_model_with, settle,
    silence_panics_starting_with,
};

#[cfg(loom)]
mod model {
    use std::cell::Cell;
    use std::io::Write as _;
    use std::sync::Arc as StdArc;
    use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
    use std::time::Instant;

    std::thread_local! {
        /// How many times `settle` yields: one more than the preemption bound of the model
        /// running on this (test) thread. Loom runs every modelled thread on the test's own
        /// thread, so they all see it.
        static SETTLE_YIELDS: Cell<usize> = const { Cell::new(3) };
    }

    /// Keeps the panics whose message starts with `prefix` (a model's deliberate or expected
    /// panics, one per explored execution) out of the test output; other panics are printed as
    /// before.
    pub fn silence_panics_starting_with(prefix: &'static str) {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if !message.is_some_and(|m| m.starts_with(prefix)) {
                default(info);
            }
        }));
    }

    /// Lets threads that were joined finish their thread-local destructors.
    ///
    /// Loom's `JoinHandle::join` returns as soon as the joined closure has returned, before the
    /// thread's thread-locals are dropped (std's `join` waits for them). The core's per-thread
    /// context does real work when dropped: it reclaims or orphans the thread's retired values
    /// and frees its slot. Call `settle` after joining, before looking at what they leave.
    ///
    /// It yields one more time than the preemption bound. After a yield loom runs another
    /// runnable thread, and switching back to the caller while that thread could go on is a
    /// preemption; so the caller gets past its last yield before the others have finished (or
    /// blocked) only in schedules with more preemptions than the bound allows.
    pub fn settle() {
        for _ in 0..SETTLE_YIELDS.with(Cell::get) {
            loom::thread::yield_now();
        }
    }

    /// Loom's model configuration.
    pub type ModelBuilder = loom::model::Builder;

    /// The default configuration: loom's environment variables (`LOOM_MAX_PREEMPTIONS`,
    /// `LOOM_MAX_BRANCHES`, ...), with a preemption bound of 3 when `LOOM_MAX_PREEMPTIONS` is not
    /// set (an unbounded search would not finish; the suite takes about a minute at 3 on 2
    /// cores, the three-thread models capped at 2 or 1 by [`capped_builder`]).
    #[must_use]
    pub fn model_builder() -> ModelBuilder {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder
    }

    /// The default configuration with the preemption bound lowered to `max_preemptions` if it
    /// is higher: for the heavier models (three threads), which would take minutes at
    /// `LOOM_MAX_PREEMPTIONS=3`, or exceed loom's branch limit there (one traced to a waiting
    /// load that loom lets return a superseded value without end, two not traced: each model's
    /// doc says which).
    #[must_use]
    pub fn capped_builder(max_preemptions: usize) -> ModelBuilder {
        let mut builder = model_builder();
        builder.preemption_bound = builder
            .preemption_bound
            .map(|bound| bound.min(max_preemptions));
        builder
    }

    /// Checks `f` under every interleaving loom explores with the default configuration.
    ///
    /// # Panics
    ///
    /// When the model fails in some execution (loom then prints how to replay it).
    pub fn run_model<F>(name: &'static str, f: F)
    where
        F: Fn() + Sync + Send + 'static,
    {
        run_model_with(name, model_builder(), f);
    }

    /// Checks `f` with a custom configuration (for example a lower preemption bound).
    ///
    /// The body runs on a spawned loom thread, its "main" thread, not on loom's own main thread:
    /// loom drops its `lazy_static`s before the main thread's thread-locals, and the core's
    /// per-thread context reaches the global registry when it is dropped, which would panic
    /// ("attempted to access `lazy_static` during shutdown"). Loom's main thread joins the
    /// body's thread and [`settle`]s, so that every thread context is dropped before the
    /// globals.
    ///
    /// # Panics
    ///
    /// When the model fails in some execution.
    pub fn run_model_with<F>(name: &'static str, builder: ModelBuilder, f: F)
    where
        F: Fn() + Sync + Send + 'static,
    {
        // Written to the stderr handle directly, so libtest's capture does not hide it.
        let _ = writeln!(
            std::io::stderr(),
            "loom model {name}: preemption bound {:?}",
            builder.preemption_bound
        );
        let executions = StdArc::new(StdAtomicUsize::new(0));
        let counter = executions.clone();
        let f = StdArc::new(f);
        SETTLE_YIELDS.with(|n| n.set(builder.preemption_bound.map_or(16, |bound| bound + 1)));
        let start = Instant::now();
        builder.check(move || {
            counter.fetch_add(1, StdOrdering::Relaxed);
            let f = f.clone();
            loom::thread::spawn(move || f())
                .join()
                .expect("the model's main thread panicked");
            // The globals (a loom `lazy_static`) are dropped when this closure returns: every
            // thread's context must be gone by then.
            settle();
        });
        let _ = writeln!(
            std::io::stderr(),
            "loom model {name}: {} executions in {:.2?}",
            executions.load(StdOrdering::Relaxed),
            start.elapsed()
        );
    }
}

#[cfg(loom)]
pub use payload::{Payload, free_kept_payloads, spawn_payload_writer};

#[cfg(loom)]
mod payload {
    use commute_stm::{TBox, atomically, reclaim_retired};
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};

    /// A heap value whose reads and drop loom checks.
    ///
    /// Reads go through a loom `UnsafeCell`, which the drop writes: a drop that is not ordered
    /// after every read (use after free) is a causality violation, and so is a read of a value
    /// whose creation it does not see (unsafe publication). The drop also counts itself, and
    /// the loom `Arc` it holds makes loom report a value that is never freed.
    #[repr(C)]
    pub struct Payload {
        // Padding first: the allocator reuses the first words of a freed block, and a read of
        // a freed payload should still find the cell's loom identity intact to report the race.
        _pad: [u64; 2],
        id: UnsafeCell<u64>,
        drops: Arc<AtomicUsize>,
    }

    // SAFETY: shared references only read the cell; the one write is in `drop`, which has
    // `&mut`.
    unsafe impl Sync for Payload {}

    const FREED: u64 = u64::MAX;

    impl Payload {
        /// A payload numbered `id`, counting its drop in `drops`.
        pub fn new(id: u64, drops: &Arc<AtomicUsize>) -> Self {
            Payload {
                _pad: [0; 2],
                id: UnsafeCell::new(id),
                drops: drops.clone(),
            }
        }

        /// Its number; panics if it was dropped (and loom reports a read racing with the drop).
        pub fn id(&self) -> u64 {
            // SAFETY: only `drop` writes the cell; loom checks that it does not race with us.
            let id = self.id.with(|p| unsafe { *p });
            assert_ne!(id, FREED, "read a freed payload");
            id
        }
    }

    impl core::fmt::Debug for Payload {
        /// Its number (a read that loom checks, as [`Payload::id`]).
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_tuple("Payload").field(&self.id()).finish()
        }
    }

    impl Drop for Payload {
        fn drop(&mut self) {
            // SAFETY: loom checks that no read of the cell is concurrent with this write.
            self.id.with_mut(|p| unsafe { *p = FREED });
            self.drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spawns a writer that replaces `cell`'s payload with new ones numbered `1..=writes`, one
    /// transaction each.
    pub fn spawn_payload_writer(
        cell: &Arc<TBox<Payload>>,
        drops: &Arc<AtomicUsize>,
        writes: u64,
    ) -> loom::thread::JoinHandle<()> {
        let (cell, drops) = (cell.clone(), drops.clone());
        loom::thread::spawn(move || {
            for id in 1..=writes {
                atomically(|tx| {
                    cell.write(tx, Payload::new(id, &drops));
                    Ok(())
                });
            }
        })
    }

    /// Once every reader and writer of `cell` has finished: commits payload `last`, which lets
    /// go of the payloads kept for snapshot readers, reclaims, and checks that every payload
    /// before `last` was dropped.
    ///
    /// # Panics
    ///
    /// If one was not.
    pub fn free_kept_payloads(cell: &TBox<Payload>, drops: &Arc<AtomicUsize>, last: u64) {
        crate::settle();
        atomically(|tx| {
            cell.write(tx, Payload::new(last, drops));
            Ok(())
        });
        reclaim_retired();
        assert_eq!(
            drops.fetch_add(0, Ordering::AcqRel) as u64,
            last,
            "replaced values not freed"
        );
    }
}

//! Per-thread state and the registry of thread slots.
//!
//! Every thread that runs a transaction gets a `ThreadCtx` (thread-local) and claims a `Slot` in
//! the global registry. The slot holds the thread's statistics and its *pin*: while a
//! transaction may dereference `TBox` values it publishes its read version there. The slot's
//! `attempt` mark says whether the thread is inside `atomically`. What reads the pins and the
//! marks (freeing replaced values, and dropped variables, once no transaction can reach them)
//! is `reclaim.rs`.

use std::cell::{Cell, RefCell};

use crate::internal::attempt::TxState;
use crate::internal::counters::{StatsCell, StatsSnapshot};
use crate::internal::profile::ProfileCell;
use crate::internal::reclaim::{Deferred, RECLAIM_BATCH, Retired, SweptList};
use crate::internal::write_set::{DropFn, LetGo};
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Arc, Mutex};

/// The pin value of a slot whose thread is not in a pinned transaction.
pub(crate) const UNPINNED: u64 = u64::MAX;

/// One thread's entry in the registry.
///
/// Aligned (and so padded) to 128 bytes, crossbeam's `CachePadded` for x86-64: slots are
/// allocated one after the other, and a slot's end (about 230 bytes with the `Arc` counts) shared
/// a cache line with the next slot's pin and counters, which their threads write on every
/// transaction. Measured with the `conflicts` runner on 2 cores: `TCounter` on `counter` at 2
/// threads went from 66-69M to 71-74M increments/s (1.83-1.86x to 2.01-2.11x its 1-thread rate).
#[repr(align(128))]
pub(crate) struct Slot {
    pub(crate) pin: AtomicU64,
    /// Odd while the thread is inside `atomically` (its attempts, but not while asleep in
    /// `retry`), even otherwise; it moves on at every entry and exit (see
    /// [`drop_after_running_attempts`](super::reclaim::drop_after_running_attempts)).
    pub(super) attempt: AtomicU64,
    in_use: AtomicBool,
    pub(crate) stats: StatsCell,
    pub(crate) profile: ProfileCell,
}

impl Slot {
    /// Clears the pin. A plain store is enough (the reclaimer's read-modify-write reads the
    /// latest value); under loom it is a swap, because loom 0.7 can order a plain store between
    /// the read and the write of another thread's read-modify-write (tokio-rs/loom#254), which
    /// would make reclaimers see a stale pin for ever.
    #[inline]
    fn unpin(&self) {
        #[cfg(not(loom))]
        self.pin.store(UNPINNED, Ordering::Release);
        #[cfg(loom)]
        self.pin.swap(UNPINNED, Ordering::AcqRel);
    }
}

/// Global state shared by all threads.
pub(crate) struct Globals {
    pub(super) slots: Mutex<Vec<Arc<Slot>>>,
    /// Retired values left behind by threads that exited.
    pub(super) orphans: SweptList<Retired>,
    /// Variables dropped while other threads were inside `atomically` (see
    /// [`drop_after_running_attempts`](super::reclaim::drop_after_running_attempts)).
    pub(super) deferred: SweptList<Deferred>,
    /// Statistics of threads that exited.
    pub(crate) exited_stats: Mutex<StatsSnapshot>,
    /// Held by the one transaction running in irrevocable mode.
    pub(crate) irrevocable: Mutex<()>,
    /// Under loom, the conflict profiler switch (see `conflicts::profiling`; off at start).
    #[cfg(loom)]
    pub(crate) profiling: AtomicBool,
    /// Conflict profiles of threads that exited.
    exited_profile: ProfileCell,
    /// How many threads wait for readers now, blocked in [`wait_for_pins_below`] or in
    /// `history::wait_for_readers_up_to` (see [`readers_awaited`]).
    ///
    /// [`wait_for_pins_below`]: crate::internal::reclaim::wait_for_pins_below
    /// [`readers_awaited`]: crate::internal::reclaim::readers_awaited
    pub(super) reader_waiters: AtomicU64,
}

crate::sync::global! {
    static globals: Globals = Globals {
        slots: Mutex::new(Vec::new()),
        orphans: SweptList::new(),
        deferred: SweptList::new(),
        exited_stats: Mutex::new(StatsSnapshot::default()),
        irrevocable: Mutex::new(()),
        #[cfg(loom)]
        profiling: AtomicBool::new(false),
        exited_profile: ProfileCell::default(),
        reader_waiters: AtomicU64::new(0),
    };
}

/// The process-wide state.
pub(crate) fn global() -> &'static Globals {
    globals()
}

/// The per-thread context: slot, scratch buffers for transactions, retired values.
pub(crate) struct ThreadCtx {
    pub(crate) slot: Arc<Slot>,
    /// The tag in the low bits of the versions this thread's commits write (see `clock.rs`).
    pub(crate) tag: u64,
    /// [`clock::own_mark`](crate::internal::clock::own_mark) of `tag`: what `clock::written_by`
    /// compares versions with.
    pub(crate) own_mark: u64,
    /// True while this thread's attempt runs in irrevocable mode (it holds the global token).
    pub(crate) irrevocable: Cell<bool>,
    /// When the running attempt began, if the conflict profiler was on then (set by the
    /// attempt's begin; read by its end, for the profiler's times).
    pub(crate) attempt_started: Cell<Option<std::time::Instant>>,
    /// Nesting depth of `atomically` calls (a destructor run after an attempt may start one):
    /// only the outermost moves the slot's `attempt` mark.
    atomically_depth: Cell<u32>,
    /// Nesting depth of non-transactional pinned loads (`TBox::load_with`).
    pub(super) load_pins: Cell<u32>,
    /// A retirement inside a pinned load found a reclamation pass due:
    /// the pass runs when the outermost pinned load ends (see [`Self::retire`]).
    pub(super) pass_after_pin: Cell<bool>,
    /// Values dropped inside a pinned load ([`drop_outside`]): dropped when the outermost load
    /// ends (with `pass_after_pin` set, so that its end looks).
    after_pin: RefCell<Vec<LetGo>>,
    pub(crate) state: RefCell<TxState>,
    pub(super) retired: RefCell<Vec<Retired>>,
    /// The length of `retired` at which the next reclamation pass runs.
    pub(super) reclaim_at: Cell<usize>,
    /// Scratch for reclamation passes: the registry's slots, copied under its lock.
    pub(super) scan: RefCell<Vec<*const Slot>>,
    /// Scratch for reclamation passes: the values a pass frees, once no borrow is held.
    pub(super) freeing: RefCell<Vec<Retired>>,
    /// While an ended attempt's values are freed before a `retry` wait: the addresses of the
    /// variables dropped meanwhile (see `Leftovers::release_watching`).
    dropped_vars: RefCell<Option<Vec<usize>>>,
    /// Wakers of pending futures (`atomically_async`) that a commit of this thread woke while
    /// inside a transaction: called once the thread is outside it (see `async_wait.rs`).
    pub(super) due_wakers: RefCell<Vec<core::task::Waker>>,
    /// `due_wakers` or `after_unwind` is not empty: one load on the way out of `atomically`.
    pub(crate) wakes_due: Cell<bool>,
    /// What an attempt that panicked while irrevocable left to run (its destructors and hooks):
    /// run once the thread has left `atomically`, which gives the irrevocable token back first,
    /// since their own transactions may need it ([`run_after_unwind`](Self::run_after_unwind)).
    after_unwind: RefCell<Vec<Box<dyn FnOnce()>>>,
    rng: Cell<u64>,
}

// This thread's context, made by its first transaction (or commit, or pin), in place. Constant
// and without destructor, so that it is readable through the whole teardown of the thread: the
// context is dropped (the usual way: retired values orphaned, statistics
// kept, slot freed) by the destructor of a `CtxGuard` key registered when it was made, and a
// thread-local destructor that runs after that one (one first touched before the thread's first
// transaction: destructors run in reverse order of registration), or the context's own drop (a
// waker it calls), makes another, dropped by the next key, which runs right after the destructor
// that registered it (thread-locals first touched during the teardown are destroyed next).
#[cfg(not(loom))]
crate::sync::thread_local! {
    static CTX: CtxCell = const {
        CtxCell {
            live: Cell::new(false),
            ctx: core::cell::UnsafeCell::new(core::mem::MaybeUninit::uninit()),
        }
    };
}

/// The place of a thread's context (see `CTX`): inline, as a thread-local of its own was (a
/// pointer to a box cost one more load per access, 3 instructions a `TMap` one-call update).
#[cfg(not(loom))]
struct CtxCell {
    /// True while `ctx` holds a context.
    live: Cell<bool>,
    ctx: core::cell::UnsafeCell<core::mem::MaybeUninit<ThreadCtx>>,
}

#[cfg(not(loom))]
impl CtxCell {
    /// The context, if `live`.
    #[inline(always)]
    fn ctx(&self) -> *const ThreadCtx {
        self.ctx.get().cast::<ThreadCtx>().cast_const()
    }
}
#[cfg(loom)]
crate::sync::thread_local! {
    static CTX: crate::sync::KeptOnFailure<ThreadCtx> =
        crate::sync::KeptOnFailure::new(ThreadCtx::new());
}

/// Drops the thread's context (see `CTX`) when its thread-local key is destroyed.
#[cfg(not(loom))]
struct CtxGuard;

#[cfg(not(loom))]
impl Drop for CtxGuard {
    fn drop(&mut self) {
        // Moved out first: a transaction run by the context's own drop (a waker) makes another
        // in its place, for the next key.
        let ctx = CTX.with(|c| {
            c.live.replace(false).then(|| {
                // SAFETY: `live` said that `new_ctx` wrote a context there, and it is read out
                // once (`live` is now false). No reference to it is left: a key's destructor
                // runs between other thread-locals' destructors (or after the thread's code),
                // and every `with_ctx` call or pin that used the context ended before it.
                unsafe { c.ctx().read() }
            })
        });
        drop(ctx);
    }
}

/// Declares the keys whose destructors drop the thread's contexts, one per context a thread may
/// make (the first for its life before the teardown, then one per thread-local destructor that
/// needs one after the previous was dropped), and [`arm_ctx_guard`], which registers the next.
#[cfg(not(loom))]
macro_rules! ctx_guards {
    ($($key:ident)*) => {
        std::thread_local! {
            $(static $key: CtxGuard = const { CtxGuard };)*
        }

        /// Registers the destructor of the first key not yet destroyed; false if every key was.
        fn arm_ctx_guard() -> bool {
            $($key.try_with(|_| ()).is_ok())||*
        }
    };
}
#[cfg(not(loom))]
ctx_guards!(G0 G1 G2 G3 G4 G5 G6 G7 G8 G9 G10 G11 G12 G13 G14 G15);

/// Makes the thread's context (see `CTX`): its first, or one for a thread-local destructor that
/// runs after the previous one was dropped. Once the thread used every key (16), the next
/// context has no key to drop it: it stays, slot and retired values included, for what is left
/// of the thread's teardown and is never dropped (a leak, where a panic here would abort the
/// process inside a destructor, or leave locked a variable that a commit alone had locked
/// before its first use of the context).
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn new_ctx() -> *const ThreadCtx {
    // False once every key was used: this context is then never dropped (see above).
    let _dropped_by_a_key = arm_ctx_guard();
    let ctx = ThreadCtx::new();
    CTX.with(|c| {
        // SAFETY: no context is there (`live` is false: never written, or read out by a guard),
        // so nothing is overwritten and no reference to the place is held.
        unsafe { c.ctx.get().write(core::mem::MaybeUninit::new(ctx)) };
        c.live.set(true);
        c.ctx()
    })
}

/// Runs `f` with this thread's context if it has one now: the one [`with_ctx`] would use,
/// without making one (a query: does the thread hold a pin, the irrevocable token, ...).
#[cfg(not(loom))]
#[inline]
pub(super) fn try_with_ctx<R>(f: impl FnOnce(&ThreadCtx) -> R) -> Option<R> {
    CTX.with(|c| {
        // SAFETY: a live context lives until its key's destructor, which does not run during
        // this call.
        c.live.get().then(|| f(unsafe { &*c.ctx() }))
    })
}

#[cfg(loom)]
#[inline]
pub(super) fn try_with_ctx<R>(f: impl FnOnce(&ThreadCtx) -> R) -> Option<R> {
    CTX.try_with(|c| f(c)).ok()
}

// Whether the thread is inside a transaction (in the closure given to `atomically`), apart from
// the thread's context: a constant thread-local without destructor, so that checking it costs
// one load and never registers the thread nor fails during thread teardown.
#[cfg(not(loom))]
std::thread_local! {
    static IN_TX: Cell<bool> = const { Cell::new(false) };
}
#[cfg(loom)]
loom::thread_local! {
    static IN_TX: Cell<bool> = Cell::new(false);
}

/// True if the calling thread is inside a transaction.
#[inline]
pub(crate) fn in_tx() -> bool {
    IN_TX.with(Cell::get)
}

/// True if the calling thread is known to be outside transactions: false inside one, and
/// during the thread's teardown, once the mark is gone.
pub(super) fn known_outside_tx() -> bool {
    IN_TX.try_with(|f| !f.get()).unwrap_or(false)
}

/// Drops `value` where the library drops values (see [`crate::drop_outside`]): at once outside
/// transactions and pins, else when the attempt or the outermost pin ends.
#[inline]
pub(crate) fn drop_outside<T: 'static>(value: T) {
    if !core::mem::needs_drop::<T>() {
        return;
    }
    if in_tx() || in_load_pin() {
        defer_drop_outside(Box::new(value));
    }
}

/// [`drop_outside`] of a value that must wait: to the running attempt's values let go of, or
/// to the pinned load's; dropped here where neither can take it (the attempt's state in use,
/// the thread's context gone).
#[cold]
#[inline(never)]
fn defer_drop_outside(value: LetGo) {
    let mut value = Some(value);
    try_with_ctx(|ctx| {
        if in_tx() {
            if let Ok(mut st) = ctx.state.try_borrow_mut() {
                st.let_go.extend(value.take());
                st.note_closures();
            }
        } else if let Some(value) = value.take() {
            ctx.drop_after_pin(value);
        }
    });
    drop(value);
}

/// True if the calling thread is inside a pin outside transactions ([`crate::pinned`],
/// `TBox::load_with`'s closure, a collection's one-call operation).
pub(crate) fn in_load_pin() -> bool {
    try_with_ctx(|ctx| ctx.load_pins.get() > 0).unwrap_or(false)
}

/// Marks the calling thread as inside a transaction or not.
#[inline]
pub(crate) fn set_in_tx(inside: bool) {
    IN_TX.with(|f| f.set(inside));
}

/// [`set_in_tx`], returning the previous mark.
#[inline]
pub(crate) fn replace_in_tx(inside: bool) -> bool {
    IN_TX.with(|f| f.replace(inside))
}

/// Runs `f` with this thread's context, made if the thread has none (see `CTX`): its first
/// transaction's, or, in a thread-local destructor that runs after that one was dropped, one of
/// its own. A pointer to the context stays valid until the thread's code, or the thread-local
/// destructor that runs, returns.
#[cfg(not(loom))]
#[inline]
pub(crate) fn with_ctx<R>(f: impl FnOnce(&ThreadCtx) -> R) -> R {
    // `f` inside `LocalKey::with`, as when the context was the thread-local itself: callers
    // (`atomically`'s) compiled to the same code then (a closure of the `instructions` event
    // case was no longer inlined into its loop otherwise, 20 instructions an event).
    CTX.with(|c| {
        let ctx = if c.live.get() { c.ctx() } else { new_ctx() };
        // SAFETY: a context lives until its key's destructor, which does not run during this
        // call.
        f(unsafe { &*ctx })
    })
}

/// Runs `f` with this thread's context.
///
/// # Panics
///
/// Panics if called while the thread is being torn down (not modelled under loom).
#[cfg(loom)]
#[inline]
pub(crate) fn with_ctx<R>(f: impl FnOnce(&ThreadCtx) -> R) -> R {
    CTX.with(|c| f(c))
}

impl ThreadCtx {
    fn new() -> Self {
        let g = global();
        let mut slots = crate::sync::lock(&g.slots);
        let free = slots.iter().position(|s| {
            s.in_use
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        let (index, slot) = match free {
            Some(i) => (i, slots[i].clone()),
            None => {
                let s = Arc::new(Slot {
                    pin: AtomicU64::new(UNPINNED),
                    attempt: AtomicU64::new(0),
                    in_use: AtomicBool::new(true),
                    stats: StatsCell::default(),
                    profile: ProfileCell::default(),
                });
                slots.push(s.clone());
                (slots.len() - 1, s)
            }
        };
        drop(slots);
        let seed = slot.as_ref() as *const Slot as u64;
        let tag = crate::internal::clock::tag_for_slot(index);
        ThreadCtx {
            slot,
            tag,
            own_mark: crate::internal::clock::own_mark(tag),
            irrevocable: Cell::new(false),
            attempt_started: Cell::new(None),
            atomically_depth: Cell::new(0),
            load_pins: Cell::new(0),
            pass_after_pin: Cell::new(false),
            after_pin: RefCell::new(Vec::new()),
            state: RefCell::new(TxState::default()),
            retired: RefCell::new(Vec::new()),
            reclaim_at: Cell::new(RECLAIM_BATCH),
            scan: RefCell::new(Vec::new()),
            freeing: RefCell::new(Vec::new()),
            dropped_vars: RefCell::new(None),
            due_wakers: RefCell::new(Vec::new()),
            wakes_due: Cell::new(false),
            after_unwind: RefCell::new(Vec::new()),
            rng: Cell::new(seed | 1),
        }
    }

    /// Marks the thread as inside `atomically` (outermost call only): from here until
    /// [`leave_atomically`](Self::leave_atomically), variables this thread may still refer to are
    /// not freed by other threads (see [`drop_after_running_attempts`]).
    ///
    /// [`drop_after_running_attempts`]: crate::internal::reclaim::drop_after_running_attempts
    #[inline]
    pub(crate) fn enter_atomically(&self) {
        let depth = self.atomically_depth.get();
        if depth == 0 {
            let mark = self.slot.attempt.load(Ordering::Relaxed) + 1;
            self.slot.attempt.store(mark, Ordering::Release);
        }
        self.atomically_depth.set(depth + 1);
    }

    /// Runs `sleep` (a `retry` wait) with this thread counted outside `atomically`, if this is
    /// the outermost call: values dropped meanwhile on other threads do not wait for it (see
    /// [`drop_after_running_attempts`]). `sleep` must not touch any variable: those the
    /// thread waits on may be freed while it sleeps (their addresses stay valid keys of the
    /// wait queues; a commit to a variable made since at the same address wakes it spuriously).
    /// A nested call (a `Drop` that runs a transaction at the end of an outer one) keeps its
    /// mark: the outer call may still hold variables.
    ///
    /// [`drop_after_running_attempts`]: crate::internal::reclaim::drop_after_running_attempts
    pub(crate) fn asleep_outside_attempts(&self, sleep: impl FnOnce()) {
        if self.atomically_depth.get() != 1 {
            return sleep();
        }
        // Release: the attempt's accesses to its variables, and the wait's registration on
        // them, come before a dropper that sees the even mark frees them.
        let mark = self.slot.attempt.load(Ordering::Relaxed) + 1;
        self.slot.attempt.store(mark, Ordering::Release);
        // Back inside before the next attempt, however the sleep ends.
        struct Wake<'a>(&'a Slot);
        impl Drop for Wake<'_> {
            fn drop(&mut self) {
                let mark = self.0.attempt.load(Ordering::Relaxed) + 1;
                self.0.attempt.store(mark, Ordering::Release);
            }
        }
        let _wake = Wake(&self.slot);
        sleep();
    }

    /// Ends [`enter_atomically`](Self::enter_atomically). Release: every access of the call to
    /// its variables comes before a dropper that sees the new mark frees them.
    #[inline]
    pub(crate) fn leave_atomically(&self) {
        let depth = self.atomically_depth.get() - 1;
        self.atomically_depth.set(depth);
        if depth == 0 {
            let mark = self.slot.attempt.load(Ordering::Relaxed) + 1;
            self.slot.attempt.store(mark, Ordering::Release);
        }
    }

    /// Calls the wakers that commits of this thread woke inside a transaction. Call it outside
    /// any transaction: wakers are foreign code.
    ///
    /// First runs what [`run_after_unwind`](Self::run_after_unwind) kept.
    #[cold]
    #[inline(never)]
    pub(crate) fn wake_due(&self) {
        self.wake_due_then(false);
    }

    /// True if wakers wait to be called: at the end of `atomically`, or of a pin
    /// ([`wake_after_pin`]).
    pub(crate) fn has_due_wakers(&self) -> bool {
        self.wakes_due.get() || !self.due_wakers.borrow().is_empty()
    }

    /// [`wake_due`](Self::wake_due) before the thread blocks in a `retry`: inside a pin too,
    /// since what the wakers' tasks commit may be what the thread waits for (a bounded wait,
    /// the one a pin allows).
    #[cold]
    #[inline(never)]
    pub(crate) fn wake_due_before_blocking(&self) {
        self.wake_due_then(true);
    }

    fn wake_due_then(&self, blocking: bool) {
        let left = core::mem::take(&mut *self.after_unwind.borrow_mut());
        if !left.is_empty() {
            let inside = in_tx();
            for run in left {
                run();
            }
            set_in_tx(inside);
        }
        self.wakes_due.set(false);
        if self.in_load_pin() && !blocking {
            // A transaction inside a pin: once the outermost pin has ended (`wake_after_pin`).
            if !self.due_wakers.borrow().is_empty() {
                self.pass_after_pin.set(true);
            }
        } else {
            let due = core::mem::take(&mut *self.due_wakers.borrow_mut());
            crate::internal::async_wait::wake_all(due);
        }
        // Values a pin that unwound left (`drop_after_pin`): on the way out of `atomically`.
        if !in_tx() && !std::thread::panicking() {
            self.drop_after_pin_values();
        }
    }

    /// Keeps `run` (the release of what an attempt that panicked while irrevocable left) until
    /// the thread leaves `atomically` ([`wake_due`](Self::wake_due)), when the unwinding has
    /// given the irrevocable token back.
    #[cold]
    pub(crate) fn run_after_unwind(&self, run: Box<dyn FnOnce()>) {
        self.after_unwind.borrow_mut().push(run);
        self.wakes_due.set(true);
    }

    /// A cheap pseudo-random number (xorshift) for backoff jitter.
    pub(crate) fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// Publishes `rv` as this thread's pin (see the module doc for the ordering argument).
    ///
    /// Inside a load's pin ([`begin_load_pin`](Self::begin_load_pin): a transaction run by a
    /// destructor or by the closure of `TBox::load_with`) the load's pin stays: it is older than
    /// `rv`, so it keeps alive everything the transaction may read, and replacing it would free
    /// what the load still borrows.
    #[inline]
    pub(crate) fn pin(&self, rv: u64) {
        if self.load_pins.get() == 0 {
            self.slot.pin.swap(rv, Ordering::AcqRel);
        }
    }

    /// Ends [`pin`](Self::pin): inside a load's pin, the thread stays pinned until that ends.
    #[inline]
    pub(crate) fn unpin(&self) {
        if self.load_pins.get() == 0 {
            self.slot.unpin();
        }
    }

    /// Begins a pin outside a transaction (`crate::pinned`, `TBox::load_with`); nests (only the
    /// outermost pins and unpins). Each call is followed by one
    /// [`end_load_pin`](Self::end_load_pin), even on a panic.
    #[inline]
    pub(crate) fn begin_load_pin(&self) {
        let depth = self.load_pins.get();
        if depth == 0 {
            self.slot
                .pin
                .swap(crate::internal::clock::begin(), Ordering::AcqRel);
        }
        self.load_pins.set(depth + 1);
    }

    /// Ends a [`begin_load_pin`](Self::begin_load_pin): the outermost unpins, then runs a
    /// reclamation pass that fell due under the pin.
    #[inline]
    pub(crate) fn end_load_pin(&self) {
        let depth = self.load_pins.get() - 1;
        self.load_pins.set(depth);
        if depth == 0 {
            self.slot.unpin();
            if self.pass_after_pin.get() {
                self.pass_after_unpin();
            }
        }
    }

    /// The pass that [`retire`](Self::retire) left for the end of the outermost
    /// pinned load, which has just unpinned the thread. Not while the load unwinds from a
    /// panic (a value's `Clone` in a map's update alone): destructors are not run from there,
    /// and the flag stays until the next pinned load ends or another pass runs.
    #[cold]
    #[inline(never)]
    fn pass_after_unpin(&self) {
        // Wakers woken inside the pin (`wake_after_pin`) first: a panic of one passes on and
        // leaves the rest of this work to the next pin's end, pass or way out of `atomically`.
        if !in_tx() && !self.due_wakers.borrow().is_empty() {
            let due = core::mem::take(&mut *self.due_wakers.borrow_mut());
            crate::internal::async_wait::wake_all(due);
        }
        if std::thread::panicking() {
            if !self.after_pin.borrow().is_empty() {
                // Not dropped while unwinding: by the thread's next pin, reclamation pass or
                // way out of `atomically` (`wake_due`).
                self.wakes_due.set(true);
            }
            return;
        }
        if self.retire_is_due(0) {
            self.reclaim_pass();
        } else {
            self.pass_after_pin.set(false);
            self.drop_after_pin_values();
        }
    }

    /// Drops the values let go of inside pinned loads ([`drop_outside`]), outside transactions
    /// and pins: where the outermost load ends, or, for those of a load that ended in a panic,
    /// at the next reclamation pass or way out of `atomically`.
    ///
    /// Every value is dropped even if an earlier one's `Drop` panics; the first panic then
    /// passes on.
    pub(super) fn drop_after_pin_values(&self) {
        if self.load_pins.get() == 0 && !self.after_pin.borrow().is_empty() {
            let values = core::mem::take(&mut *self.after_pin.borrow_mut());
            let mut first_panic = None;
            for value in values {
                let dropped =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(value)));
                if let Err(payload) = dropped {
                    crate::internal::keep_first_panic(&mut first_panic, payload);
                }
            }
            if let Some(payload) = first_panic {
                std::panic::resume_unwind(payload);
            }
        }
    }

    /// True inside a pinned load.
    #[inline]
    pub(crate) fn in_load_pin(&self) -> bool {
        self.load_pins.get() > 0
    }

    /// Keeps `value` to drop when the outermost pinned load ends ([`drop_outside`]).
    #[cold]
    pub(crate) fn drop_after_pin(&self, value: LetGo) {
        self.after_pin.borrow_mut().push(value);
        self.pass_after_pin.set(true);
    }

    /// Starts recording the variables dropped on this thread (outside transactions); returns
    /// the recording this one interrupts (a destructor's own transaction can retry while an
    /// outer release records), to hand to [`take_dropped`](Self::take_dropped).
    pub(crate) fn watch_drops(&self) -> Option<Vec<usize>> {
        self.dropped_vars.borrow_mut().replace(Vec::new())
    }

    /// Stops recording; returns the addresses recorded since [`watch_drops`](Self::watch_drops)
    /// and resumes the interrupted recording, which also gets them.
    pub(crate) fn take_dropped(&self, outer: Option<Vec<usize>>) -> Vec<usize> {
        let mut slot = self.dropped_vars.borrow_mut();
        let dropped = slot.take().unwrap_or_default();
        if let Some(mut outer) = outer {
            outer.extend_from_slice(&dropped);
            *slot = Some(outer);
        }
        dropped
    }
}

/// True if this thread's running attempt is the irrevocable one.
pub(crate) fn holds_irrevocable_token() -> bool {
    try_with_ctx(|ctx| ctx.irrevocable.get()).unwrap_or(false)
}

/// True if another thread is inside `atomically` now (without allocating: `TBox::get_mut`).
pub(crate) fn others_in_atomically() -> bool {
    with_running_elsewhere(|running| running.next().is_some())
}

/// The slots of other threads that are inside `atomically` now, with their marks.
pub(super) fn running_elsewhere() -> Vec<(*const Slot, u64)> {
    with_running_elsewhere(|running| running.collect())
}

/// Runs `f` on the slots of other threads that are inside `atomically` now, with their marks,
/// under the registry's lock.
fn with_running_elsewhere<R>(
    f: impl FnOnce(&mut dyn Iterator<Item = (*const Slot, u64)>) -> R,
) -> R {
    let own = try_with_ctx(|ctx| Arc::as_ptr(&ctx.slot)).unwrap_or(core::ptr::null());
    let slots = crate::sync::lock(&global().slots);
    let mut running = slots
        .iter()
        .map(Arc::as_ptr)
        .filter(|&s| s != own)
        .filter_map(|s| {
            // SAFETY: registry slots are never freed.
            let mark = unsafe { &*s }.attempt.load(Ordering::Acquire);
            (mark % 2 == 1).then_some((s, mark))
        });
    f(&mut running)
}

/// The values that exiting threads left in their after-pin lists ([`ThreadCtx::drop_after_pin`]),
/// never dropped (see `ThreadCtx`'s `Drop`): each a `Box<Vec<LetGo>>`'s address, kept so that
/// they stay reachable, as parked rather than lost.
static PARKED: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

impl Drop for ThreadCtx {
    fn drop(&mut self) {
        // Values a pin that unwound left, which no later pin, pass or transaction of the
        // thread dropped: parked for the process's life, as their `Drop` may use commute,
        // whose thread-local state is going (dropped here, such a `Drop` aborted the process).
        let left = core::mem::take(self.after_pin.get_mut());
        if !left.is_empty() {
            let parked = Box::into_raw(Box::new(left)) as usize;
            PARKED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(parked);
        }
        let g = global();
        // Nothing is freed here: a value's `Drop` may use commute, whose thread-local state is
        // being destroyed. Another thread's next reclamation pass (or `reclaim_retired`) frees
        // them, outside any transaction.
        let mut retired = std::mem::take(&mut *self.retired.borrow_mut());
        g.orphans.with(|orphans| orphans.append(&mut retired));
        // Fold this thread's statistics into the exited total and free the slot for reuse,
        // both under the registry lock so that a global snapshot never counts them twice.
        let slots = crate::sync::lock(&g.slots);
        crate::sync::lock(&g.exited_stats).merge(&self.slot.stats.take());
        let profile = self.slot.profile.take();
        g.exited_profile.absorb(profile);
        self.slot.unpin();
        self.slot.in_use.store(false, Ordering::Release);
        drop(slots);
        // Wakers still due (a commit inside a destructor's transaction during teardown) are
        // called rather than lost; a panicking one must not abort the thread's exit.
        let due = std::mem::take(&mut *self.due_wakers.borrow_mut());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::internal::async_wait::wake_all(due)
        }));
    }
}

/// The sum of the statistics of every thread, running or exited.
pub(crate) fn global_stats() -> StatsSnapshot {
    let g = global();
    let slots = crate::sync::lock(&g.slots);
    let mut total = crate::sync::lock(&g.exited_stats).clone();
    for s in slots.iter() {
        total.merge(&s.stats.snapshot());
    }
    total
}

/// Purges `var` from the running attempt of this thread (see `VarCore::forget_in_running_tx`).
///
/// # Aborts
///
/// The process, if the variable is dropped while the attempt's state is in use: by a
/// commutative operation (`TVar::commute`) that drops a transactional variable while it runs.
/// The attempt may still hold the variable's address then, and could not be told.
pub(crate) fn forget_var(var: &crate::internal::var::VarCore) {
    try_with_ctx(|ctx| {
        if in_tx() {
            match ctx.state.try_borrow_mut() {
                Ok(mut st) => st.forget(var),
                Err(_) => {
                    eprintln!(
                        "commute: a transactional variable was dropped by a commutative operation \
                         (TVar::commute) while it ran; aborting, as the transaction may still use it"
                    );
                    std::process::abort();
                }
            }
        }
        // A release that waits afterwards (`retry`) records every variable dropped meanwhile,
        // in a destructor's own transaction too.
        if let Some(dropped) = ctx.dropped_vars.borrow_mut().as_mut() {
            dropped.push(var.addr());
        }
    });
}

/// Keeps `wakers` (woken by a commit inside a transaction) to be called once this thread is
/// outside it ([`ThreadCtx::wake_due`]); calls them now if the thread is being torn down.
pub(crate) fn wake_after_transaction(wakers: Vec<core::task::Waker>) {
    keep_wakers(wakers, |ctx| ctx.wakes_due.set(true));
}

/// Keeps `wakers` (woken inside a pin) to be called once the outermost pin has ended
/// ([`ThreadCtx::end_load_pin`]): a waker may poll its task at once, and its transaction must not
/// run inside a pin it never took.
pub(crate) fn wake_after_pin(wakers: Vec<core::task::Waker>) {
    keep_wakers(wakers, |ctx| ctx.pass_after_pin.set(true));
}

/// Adds `wakers` to the thread's due wakers and sets, with `when`, the flag of the place that
/// calls them; calls them now if the thread has no context (its teardown).
fn keep_wakers(wakers: Vec<core::task::Waker>, when: fn(&ThreadCtx)) {
    let mut wakers = Some(wakers);
    try_with_ctx(|ctx| {
        if let Some(w) = wakers.take() {
            ctx.due_wakers.borrow_mut().extend(w);
            when(ctx);
        }
    });
    if let Some(w) = wakers {
        crate::internal::async_wait::wake_all(w);
    }
}

/// Inside a transaction of this thread, hands the value `bits` (with its drop function) to the
/// running attempt, to be freed when it ends, outside the transaction; returns false, leaving
/// the value to the caller, anywhere else.
pub(crate) fn free_after_attempt(bits: u64, drop_fn: DropFn) -> bool {
    try_with_ctx(|ctx| {
        if !in_tx() {
            return false;
        }
        match ctx.state.try_borrow_mut() {
            Ok(mut st) => {
                st.free_after_attempt(bits, drop_fn);
                true
            }
            Err(_) => false,
        }
    })
    .unwrap_or(false)
}

/// Calls `f` with every slot's profile cell and with the profile of exited threads, under the
/// registry lock (so no profile is seen twice or missed).
pub(crate) fn for_each_profile(mut f: impl FnMut(&ProfileCell)) {
    let g = global();
    let slots = crate::sync::lock(&g.slots);
    for s in slots.iter() {
        f(&s.profile);
    }
    f(&g.exited_profile);
}

/// Forgets every conflict profile.
pub(crate) fn reset_profiles() {
    for_each_profile(|cell| drop(cell.take()));
}

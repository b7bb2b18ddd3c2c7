//! The one place in this crate that names synchronisation primitives.
//!
//! Collections that touch atomics, locks or thread-locals directly (for example `TCounter`'s shard
//! choice and id allocator) import them from here, so that `--cfg loom` swaps them all for loom's
//! checked versions at once (the pattern of `commute_stm`'s own `sync` module and sharded-slab's
//! `sync.rs`). Not every module uses every item, hence the `allow(unused_imports)`.

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence,
    };
}

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) mod atomic {
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence,
    };
}

/// The orderings of the accesses of a `SeqCst` handshake (a Dekker pair: each side stores,
/// then loads what the other stores). Loom models `SeqCst` accesses as acquire and release
/// only, so under loom they are those, with [`loom_fence`] between each side's store and load
/// standing in for the total order (the pattern of `commute_stm`'s clock).
pub(crate) const SC_LOAD: atomic::Ordering = if cfg!(loom) {
    atomic::Ordering::Acquire
} else {
    atomic::Ordering::SeqCst
};

/// See [`SC_LOAD`].
pub(crate) const SC_STORE: atomic::Ordering = if cfg!(loom) {
    atomic::Ordering::Release
} else {
    atomic::Ordering::SeqCst
};

/// Under loom, the `SeqCst` fence that stands in for the `SeqCst` accesses it cannot model
/// (see [`SC_LOAD`]); nothing otherwise.
#[inline(always)]
pub(crate) fn loom_fence() {
    #[cfg(loom)]
    atomic::fence(atomic::Ordering::SeqCst);
}

/// Threads, parking and unparking, through std or loom.
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::{Thread, current, park};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{Thread, current, park};
}

/// Declares a thread-local through std or loom.
#[cfg(not(loom))]
macro_rules! shim_thread_local {
    ($($t:tt)*) => { std::thread_local! { $($t)* } };
}
#[cfg(loom)]
macro_rules! shim_thread_local {
    ($($t:tt)*) => { loom::thread_local! { $($t)* } };
}
pub(crate) use shim_thread_local as thread_local;

/// Declares a lazily initialised global (a function returning `&'static`) that loom resets
/// between executions.
#[cfg(not(loom))]
macro_rules! shim_global {
    ($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;) => {
        $(#[$m])*
        fn $name() -> &'static $t {
            static CELL: std::sync::OnceLock<$t> = std::sync::OnceLock::new();
            CELL.get_or_init(|| $init)
        }
    };
}
#[cfg(loom)]
macro_rules! shim_global {
    ($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;) => {
        $(#[$m])*
        fn $name() -> &'static $t {
            loom::lazy_static! { static ref CELL: $t = $init; }
            &CELL
        }
    };
}
pub(crate) use shim_global as global;

/// Gives the processor (or loom's scheduler) a chance to run another thread while we wait.
#[allow(dead_code)]
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Yields the time slice (loom: lets another modelled thread run).
#[allow(dead_code)]
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

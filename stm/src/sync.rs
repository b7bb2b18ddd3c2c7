//! The one place that names synchronisation primitives.
//!
//! Everything else in the crate imports atomics, locks, thread-locals and yields from here, so
//! that `--cfg loom` swaps all of them for loom's checked versions at once (the pattern of
//! crossbeam-utils' `primitive` module and sharded-slab's `sync.rs`).

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) mod atomic {
    #[allow(unused_imports)]
    pub(crate) use std::sync::atomic::fence;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering};
}

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) mod atomic {
    #[allow(unused_imports)]
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering, fence,
    };
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

/// Declares a lazily initialised global that loom resets between executions.
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
            loom::lazy_static! {
                static ref CELL: crate::sync::KeptOnFailure<$t> =
                    crate::sync::KeptOnFailure::new($init);
            }
            &CELL
        }
    };
}
pub(crate) use shim_global as global;

/// Under loom, a global or a thread-local value that is not dropped when a failed model's
/// execution is torn down: loom drops its globals and its threads' thread-locals after the
/// execution has ended, while the model's panic unwinds, and the drop of a value holding loom
/// objects (a loom `Arc`, say) panics there, outside any execution. That second panic, in a
/// destructor during unwinding, aborted the whole test binary, and with it the report of the
/// model that failed and of every model after it.
#[cfg(loom)]
pub(crate) struct KeptOnFailure<T>(core::mem::ManuallyDrop<T>);

#[cfg(loom)]
impl<T> KeptOnFailure<T> {
    pub(crate) fn new(value: T) -> Self {
        KeptOnFailure(core::mem::ManuallyDrop::new(value))
    }
}

#[cfg(loom)]
impl<T> core::ops::Deref for KeptOnFailure<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[cfg(loom)]
impl<T> Drop for KeptOnFailure<T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            // SAFETY: dropped once, here; the value is not used again.
            unsafe { core::mem::ManuallyDrop::drop(&mut self.0) };
        }
    }
}

/// Gives the processor (or loom's scheduler) a chance to run another thread while we wait.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Yields the time slice (loom: lets another modelled thread run).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Locks a mutex, ignoring poisoning: the data our mutexes guard stay consistent even when a
/// holder panicked (every critical section is a few pushes or removals).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    #[cfg(loom)]
    {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Locks a mutex if it is free right now (poisoning ignored, as in [`lock`]).
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    #[cfg(not(loom))]
    {
        match m.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
    #[cfg(loom)]
    {
        m.try_lock().ok()
    }
}

//! Resident memory, read from `/proc/self/status` (`VmRSS`), live heap bytes counted by
//! [`CountingAlloc`], and the soak's memory checks.
//!
//! Every structure of the soak is bounded by construction (each worker's key range, the queues'
//! drains outpacing their pushes, the bounded queues' capacities, a fixed number of boxes), so
//! once they have filled, memory should stay flat: what is retired is freed after quiescence,
//! and what the allocator keeps is reused. Two checks:
//!
//! - resident memory after warm-up stays within [`allowed_growth`] of its warm-up level (a
//!   coarse check that needs nothing from the program: it catches fast leaks);
//! - with [`CountingAlloc`] installed (the `soak` binary does), live heap bytes return to their
//!   level from before the structures were built once everything is dropped and reclaimed (an
//!   exact check: it catches any leak bigger than its small slack).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crossbeam_utils::CachePadded;

use super::monitor::Monitor;

/// Shards of the live-byte count (threads add to the shard of their stack, so concurrent
/// allocations rarely share a cache line).
const SHARDS: usize = 32;

static LIVE: [CachePadded<AtomicI64>; SHARDS] =
    [const { CachePadded::new(AtomicI64::new(0)) }; SHARDS];
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A global allocator that forwards to the system allocator and counts live heap bytes, for
/// the soak's exact leak check ([`live_heap_bytes`]). The `soak` binary installs it:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: commute_benches::soak::memory::CountingAlloc =
///     commute_benches::soak::memory::CountingAlloc;
/// ```
#[derive(Debug)]
pub struct CountingAlloc;

/// The calling thread's shard: threads' stacks lie megabytes apart.
#[inline]
fn shard() -> &'static AtomicI64 {
    let probe = 0u8;
    let sp = std::hint::black_box(&probe) as *const u8 as usize;
    &LIVE[(sp >> 21) % SHARDS]
}

#[inline]
fn count(delta: i64) {
    shard().fetch_add(delta, Ordering::Relaxed);
    // Read-mostly: written once, so the line stays shared in every core's cache.
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counting touches only
// atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

/// Live heap bytes, when the program runs on [`CountingAlloc`]; `None` otherwise.
///
/// # Examples
///
/// ```
/// // Doctests run on the system allocator.
/// assert_eq!(commute_benches::soak::memory::live_heap_bytes(), None);
/// ```
pub fn live_heap_bytes() -> Option<u64> {
    INSTALLED.load(Ordering::Relaxed).then(|| {
        let total: i64 = LIVE.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        total.max(0) as u64
    })
}

/// The process's resident set size in bytes, or `None` where `/proc/self/status` is missing.
///
/// # Examples
///
/// ```
/// if let Some(rss) = commute_benches::soak::memory::resident_bytes() {
///     assert!(rss > 0);
/// }
/// ```
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS` line of a `/proc/<pid>/status` text, in bytes.
///
/// # Examples
///
/// ```
/// use commute_benches::soak::memory::parse_vm_rss;
///
/// assert_eq!(parse_vm_rss("Name:\tsoak\nVmRSS:\t  2048 kB\n"), Some(2 << 20));
/// assert_eq!(parse_vm_rss("Name:\tsoak\n"), None);
/// ```
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Bytes as MiB, for reports.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The allowed growth of resident memory over its level at the end of warm-up: half that
/// level, and at least 32 MiB.
///
/// Resident memory is the allocator's high-water mark, not the live heap. Values replaced by
/// commits wait for quiescence (every pinned transaction to have moved past them), so the live
/// heap carries a backlog of retirement rate x the longest time any thread stays pinned; on an
/// oversubscribed machine that is a scheduler time slice or a pause of the virtual CPU, and the
/// soak has measured backlog peaks of 40 MiB at 2 M transactions a second (2 cores, 7 threads).
/// The allocator keeps each new peak's pages, so resident memory creeps up by steps as rarer,
/// longer stalls happen. A leak is different in kind: at these rates one lost byte per
/// transaction is 60 MiB a minute. Smaller leaks are the business of the exact check on the
/// live heap at the end of the run ([`HEAP_SLACK`]) and of valgrind.
///
/// # Examples
///
/// ```
/// use commute_benches::soak::memory::allowed_growth;
///
/// assert_eq!(allowed_growth(10 << 20), 32 << 20);
/// assert_eq!(allowed_growth(100 << 20), 50 << 20);
/// ```
pub fn allowed_growth(warm: u64) -> u64 {
    (warm / 2).max(32 << 20)
}

/// Live heap bytes the end may keep over the start: the main thread's reused transaction
/// buffers and the statistics of the conflict sites seen, which live for the whole process.
pub const HEAP_SLACK: u64 = 1 << 20;

/// The exact leak check: with every structure dropped and every retired value reclaimed, live
/// heap bytes must be back at the level before the structures were built. Returns the
/// difference (when the counting allocator is installed).
pub(crate) fn heap_check(monitor: &Monitor, before: Option<u64>) -> Option<i64> {
    let (before, after) = (before?, live_heap_bytes()?);
    let left = after as i64 - before as i64;
    println!(
        "soak: memory: live heap {left:+} bytes after every structure was dropped and every \
         retired value reclaimed (bound +{HEAP_SLACK})"
    );
    monitor.check_shared(left <= HEAP_SLACK as i64, || {
        format!("memory: {left} heap bytes still live after the soak (a leak)")
    });
    Some(left)
}

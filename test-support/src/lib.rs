//! Helpers shared by the tests of the commute crates (a dev-dependency of each, and a dependency
//! of the unpublished `commute-benches` for its counting allocator; never published).
//!
//! - [`with_watchdog`]: a test that can block fails after a deadline instead of hanging CI;
//! - [`output_within`]: a child process that runs past a deadline is killed and the test fails;
//! - [`in_child_process`]: a case that might crash the process runs in a child, so that a crash
//!   fails that one test (with the child's output) instead of taking the test binary down;
//! - [`spawn_counted`] and [`wait_for_more`]: a thread that repeats a step (a writer) while the
//!   test waits, at chosen points, until it has made progress (a reader proving that it does
//!   not hold the writer up);
//! - [`Counted`]: a value that counts how many of its kind are alive, and panics if it is read
//!   after its drop or dropped twice;
//! - [`CountingAllocator`]: the system allocator, counting the bytes live ([`allocated`]) and the
//!   most live at once ([`peak`]), for tests (and the `memory` binary) that measure memory.
//!
//! Deadlines are multiplied by `COMMUTE_TEST_TIME_SCALE` (an integer, default 1):
//! `scripts/valgrind.sh` sets it, because programs run some 50 times slower under memcheck.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The environment variable that marks a child process started by [`in_child_process`].
const CHILD: &str = "COMMUTE_TEST_CHILD";

/// `secs` seconds, times `COMMUTE_TEST_TIME_SCALE`.
///
/// # Examples
///
/// ```
/// assert!(commute_test_support::deadline(2) >= std::time::Duration::from_secs(2));
/// ```
pub fn deadline(secs: u64) -> Duration {
    let scale = std::env::var("COMMUTE_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    Duration::from_secs(secs.saturating_mul(scale))
}

/// Runs `f` (a test's body) on a thread of its own and returns its result, or panics, naming the
/// test, if it has not finished after `secs` seconds (see [`deadline`]): a test that can block
/// (in `retry` or `pop_wait`, on a barrier, joining threads that wait) then fails instead of
/// hanging. A panic in `f` is re-raised here with its own payload, so
/// `#[should_panic(expected = ...)]` still works. On a timeout the blocked thread is left
/// behind; the test binary exits without it.
///
/// # Panics
///
/// On a timeout, and with `f`'s own panic.
///
/// # Examples
///
/// ```
/// assert_eq!(commute_test_support::with_watchdog(5, || 1 + 1), 2);
/// ```
#[track_caller]
pub fn with_watchdog<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    let (done, finished) = mpsc::channel();
    let body = std::thread::Builder::new()
        .name(format!("{test} (body)"))
        .spawn(move || {
            let result = f();
            let _ = done.send(());
            result
        })
        .expect("spawn the test body");
    let limit = deadline(secs);
    match finished.recv_timeout(limit) {
        // Finished, or panicked (the sender is dropped while unwinding).
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match body.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "watchdog: {test} did not finish within {} s (blocked or livelocked?)",
            limit.as_secs()
        ),
    }
}

/// `command.output()`, but a child still running after `secs` seconds (see [`deadline`]) is
/// killed and the test fails, naming the command, instead of waiting for it for ever.
///
/// # Panics
///
/// If the command does not start, or on a timeout.
///
/// # Examples
///
/// ```
/// let out = commute_test_support::output_within(std::process::Command::new("true").arg(""), 5);
/// assert!(out.status.success());
/// ```
#[track_caller]
pub fn output_within(command: &mut Command, secs: u64) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    // Drain both pipes meanwhile, so that a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let limit = deadline(secs);
    let until = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            break status;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "watchdog: {command:?} did not exit within {} s (killed)",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("the stdout reader"),
        stderr: stderr.join().expect("the stderr reader"),
    }
}

/// Runs `body` in a child process: this test binary again, running only the calling test (whose
/// name is the current thread's, as libtest names it) with `--exact`; in that child, runs `body`
/// itself. The test fails, with the child's output, unless the child exits successfully within
/// 60 s (see [`deadline`]): a crash (a signal, an abort on a double free) fails this test alone.
///
/// Call it from the test's own thread (not from a [`with_watchdog`] body: the name would be
/// wrong); it has a deadline of its own.
///
/// # Panics
///
/// If the child fails, crashes or runs past its deadline (in the parent); with `body`'s panic
/// (in the child).
///
/// # Examples
///
/// ```no_run
/// #[test]
/// fn a_case_that_might_crash() {
///     commute_test_support::in_child_process(|| {
///         // ... code that would take the whole test binary down if it crashed
///     });
/// }
/// ```
#[track_caller]
pub fn in_child_process(body: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some() {
        body();
        return;
    }
    let name = std::thread::current()
        .name()
        .expect("in_child_process runs on the test's own thread, named after the test")
        .to_owned();
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = output_within(
        Command::new(exe)
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1"),
        60,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child process running {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child process ran no test named {name}:\n{stdout}"
    );
}

/// The text of a panic's payload (a `&str` or a `String`, what `panic!` makes).
///
/// # Panics
///
/// If the payload is neither (a `panic_any` of another type).
///
/// # Examples
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
/// assert_eq!(commute_test_support::panic_message(&*payload), "boom 1");
/// ```
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .expect("a text panic")
}

/// A thread that runs `step(0)`, `step(1)`, ... until `stop` is set, adding one to `done` after
/// each step.
///
/// # Examples
///
/// ```
/// use commute_test_support::{spawn_counted, wait_for_more};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
///
/// let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
/// let worker = spawn_counted(&stop, &done, |_| {});
/// wait_for_more(&done, 10);
/// stop.store(true, Ordering::Release);
/// worker.join().unwrap();
/// assert!(done.load(Ordering::Acquire) >= 10);
/// ```
pub fn spawn_counted(
    stop: &Arc<AtomicBool>,
    done: &Arc<AtomicU64>,
    mut step: impl FnMut(u64) + Send + 'static,
) -> JoinHandle<()> {
    let (stop, done) = (stop.clone(), done.clone());
    std::thread::spawn(move || {
        let mut i = 0;
        while !stop.load(Ordering::Acquire) {
            step(i);
            i += 1;
            done.fetch_add(1, Ordering::Release);
        }
    })
}

/// Waits (yielding) until `count` has grown by `more` from its value now.
pub fn wait_for_more(count: &AtomicU64, more: u64) {
    let from = count.load(Ordering::Acquire);
    while count.load(Ordering::Acquire) < from + more {
        std::thread::yield_now();
    }
}

/// A value that counts how many of its kind are alive, and checks that it is read only while
/// alive and dropped once (a reclamation bug shows as a panic or a wrong count, not only under
/// memcheck).
///
/// # Examples
///
/// ```
/// use commute_test_support::Counted;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let live = Arc::new(AtomicUsize::new(0));
/// let c = Counted::new(7, &live);
/// assert_eq!((c.value(), live.load(Ordering::Relaxed)), (7, 1));
/// drop(c);
/// assert_eq!(live.load(Ordering::Relaxed), 0);
/// ```
#[derive(Debug)]
pub struct Counted {
    value: u64,
    alive: AtomicBool,
    live: Arc<AtomicUsize>,
}

impl Counted {
    /// A value counted in `live`.
    pub fn new(value: u64, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::Relaxed);
        Counted {
            value,
            alive: AtomicBool::new(true),
            live: live.clone(),
        }
    }

    /// The value.
    ///
    /// # Panics
    ///
    /// If it was dropped already (read through a dangling reference that memcheck would flag).
    pub fn value(&self) -> u64 {
        assert!(self.alive.load(Ordering::Relaxed), "read a dropped value");
        self.value
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert!(self.alive.swap(false, Ordering::Relaxed), "dropped twice");
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The system allocator, counting the bytes requested and not yet freed ([`allocated`]) and the
/// most that were at once since [`reset_peak`] ([`peak`]): sizes as asked for, without the
/// allocator's own headers and rounding. A test that measures memory installs it as its binary's
/// global allocator and runs alone in that binary (another test would allocate meanwhile).
///
/// # Examples
///
/// ```
/// use commute_test_support::{CountingAllocator, allocated, peak, reset_peak};
///
/// #[global_allocator]
/// static ALLOCATOR: CountingAllocator = CountingAllocator;
///
/// fn main() {
///     let before = allocated();
///     reset_peak();
///     let block = vec![0u8; 1000];
///     assert!(allocated() >= before + 1000);
///     drop(block);
///     assert!(peak() >= before + 1000);
/// }
/// ```
#[derive(Debug)]
pub struct CountingAllocator;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator, only counting.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The bytes allocated through [`CountingAllocator`] and not yet freed (always 0 if it is not
/// the global allocator).
///
/// # Examples
///
/// ```
/// // Doctests run on the system allocator: nothing is counted.
/// assert_eq!(commute_test_support::allocated(), 0);
/// ```
pub fn allocated() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// The most bytes [`allocated`] at once since the last [`reset_peak`] (or the start).
///
/// # Examples
///
/// ```
/// commute_test_support::reset_peak();
/// assert!(commute_test_support::peak() >= commute_test_support::allocated());
/// ```
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new [`peak`] from the bytes allocated now.
///
/// # Examples
///
/// ```
/// commute_test_support::reset_peak();
/// assert_eq!(commute_test_support::peak(), commute_test_support::allocated());
/// ```
pub fn reset_peak() {
    PEAK.store(allocated(), Ordering::Relaxed);
}

/// Hashers that place a map's keys where a test wants them.
pub mod hashers {
    use std::hash::{BuildHasher, Hasher};

    /// Every key hashes to 0: all of a map's keys in one leaf, in the order of insertion.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::hash::BuildHasher;
    /// assert_eq!(commute_test_support::hashers::OneLeaf.hash_one("a"), 0);
    /// ```
    #[derive(Debug, Default, Clone, Copy)]
    pub struct OneLeaf;

    /// [`OneLeaf`]'s hasher.
    #[derive(Debug)]
    pub struct Zero;

    impl Hasher for Zero {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, _: &[u8]) {}
    }

    impl BuildHasher for OneLeaf {
        type Hasher = Zero;
        fn build_hasher(&self) -> Zero {
            Zero
        }
    }

    /// A `u32` key hashes to its own value: key `k` in a map's root slot `k % root_slots`, so a
    /// walk visits keys in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::hash::BuildHasher;
    /// assert_eq!(commute_test_support::hashers::KeyAsHash.hash_one(7u32), 7);
    /// ```
    #[derive(Debug, Default, Clone, Copy)]
    pub struct KeyAsHash;

    /// [`KeyAsHash`]'s hasher; hashes `u32`s only.
    #[derive(Debug)]
    pub struct KeyHasher(u64);

    impl Hasher for KeyHasher {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, _: &[u8]) {
            unreachable!("KeyAsHash hashes u32 keys only")
        }
        fn write_u32(&mut self, v: u32) {
            self.0 = u64::from(v);
        }
    }

    impl BuildHasher for KeyAsHash {
        type Hasher = KeyHasher;
        fn build_hasher(&self) -> KeyHasher {
            KeyHasher(0)
        }
    }
}

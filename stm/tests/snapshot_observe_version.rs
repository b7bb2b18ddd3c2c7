//! `Transaction::observe_version` inside a `read_only` snapshot accepts, on its inline fast path,
//! any version `<= read_version()` (stm/src/tx/read.rs, `observe_version`). For a snapshot that
//! test says nothing: GV5 versions run ahead of the clock, so a commit *after* the snapshot (its
//! `writer_view` loaded after the reader registered) can carry a version at or below the clock
//! value the snapshot attempt read at its begin (ARCHITECTURE.md, "Snapshots": "version <= rv
//! could not tell a commit before the snapshot from one after"). The snapshot then accepts a link
//! that a commit after it published (opacity broken: `observe_version` said "your snapshot
//! includes that commit", yet a variable that commit wrote still reads its old value).
//!
//! Structure, exactly as `publish_on_commit`'s contract describes: an append-only list whose
//! `tail` variable is published at commit; the publishing operation stamps the new node with the
//! commit version and links it after the old tail; readers check the link with
//! `observe_version(stamp)`. In a snapshot whose `tail` is `t`, a node linked after `t` was
//! necessarily appended by a commit after the snapshot, so `observe_version` of its stamp must
//! not return `Ok` (it must leave the snapshot).
//!
//! Other threads: `bumper` commits its own variable `z` over and over (its versions run ahead of
//! the clock: own writes never advance it), `jumper` reads `z` (advancing the clock to it), so
//! the clock moves between an appender's clock read and a reader's begin.

use commute_stm::{TVar, atomically, read_only};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Node {
    next: AtomicPtr<Node>,
    stamp: AtomicU64,
}

fn node() -> *mut Node {
    Box::into_raw(Box::new(Node {
        next: AtomicPtr::new(std::ptr::null_mut()),
        stamp: AtomicU64::new(0),
    }))
}

struct SendPtr(*mut Node);
// SAFETY: the nodes are only read through atomics.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[test]
fn a_snapshot_never_observes_a_commit_after_it() {
    let first = node();
    let tail = Arc::new(TVar::new(first));
    let z = Arc::new(TVar::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    {
        let (tail, stop) = (tail.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let fresh = SendPtr(node());
                atomically(|tx| {
                    let n = fresh.0;
                    // SAFETY: the op neither panics nor blocks nor uses commute; the node it
                    // links is reachable only through `tail`'s new value or through the old
                    // tail's link, which readers check with `observe_version(stamp)`.
                    unsafe {
                        tail.publish_on_commit(tx, move |old: *mut Node, version| {
                            (*n).stamp.store(version, Ordering::Relaxed);
                            (*old).next.store(n, Ordering::Release);
                            n
                        })
                    };
                    Ok(())
                });
            }
        }));
    }
    {
        let (z, stop) = (z.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                atomically(|tx| z.modify(tx, |v| v + 1));
            }
        }));
    }
    {
        let (z, stop) = (z.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                atomically(|tx| z.read(tx));
            }
        }));
    }
    // Before the fix, the first violation came within 1.4 s; 5,000 links checked take about as
    // long on this machine.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut snapshots, mut links_seen, mut violations) = (0u64, 0u64, 0u64);
    let mut example = None;
    while Instant::now() < deadline && links_seen < 5_000 && violations == 0 {
        read_only(|tx| {
            if !tx.is_snapshot() {
                return Ok(());
            }
            snapshots += 1;
            let t = tail.read(tx)?;
            // SAFETY: nodes are never freed while the test runs.
            let next = unsafe { (*t).next.load(Ordering::Acquire) };
            if next.is_null() {
                return Ok(());
            }
            links_seen += 1;
            let stamp = unsafe { (*next).stamp.load(Ordering::Relaxed) };
            let rv = tx.read_version();
            // `next` was linked after this snapshot's tail: by a commit after the snapshot.
            tx.observe_version(stamp)?;
            // `Ok`: the attempt was told its snapshot includes the commit that published `next`,
            // yet `tail` (which that commit wrote) still reads the old tail.
            if tail.read(tx)? == t {
                violations += 1;
                example = Some((stamp, rv));
            }
            Ok(())
        });
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    eprintln!(
        "snapshots {snapshots}, links after the snapshot's tail {links_seen}, accepted {violations}"
    );
    assert_eq!(
        violations, 0,
        "a snapshot accepted (observe_version Ok) a link published by a commit after it: \
         (stamp, read_version) = {example:?}"
    );
}

//! `Transaction::observe_version` inside a `read_only` snapshot accepted, on its inline fast
//! path, any version at or below the attempt's read version. For a snapshot that says nothing:
//! versions run ahead of the clock, so a commit after the snapshot (one that loaded the
//! registered readers after this one registered) may carry a version at or below the clock
//! value the snapshot began at. The snapshot then accepted a link that a commit after it
//! published, while a variable that commit wrote still read its old value.
//!
//! The structure is the one `publish_on_commit`'s contract describes: an append-only list whose
//! `tail` is published at commit; the publishing operation stamps the new node with the commit
//! version and links it after the old tail; readers check the link with
//! `observe_version(stamp)`. In a snapshot whose `tail` is `t`, a node linked after `t` was
//! appended by a commit after the snapshot, so `observe_version` of its stamp must not return
//! `Ok` (the attempt leaves the snapshot).
//!
//! Two more threads move the clock between an append's clock read and a reader's begin: one
//! commits its own variable `z` over and over (its versions run ahead of the clock), the other
//! reads `z` (which advances the clock to it).

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
// SAFETY: the nodes are only read and written through atomics.
unsafe impl Send for SendPtr {}
// SAFETY: as for `Send`.
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
            // SAFETY: as above.
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

//! Values retired outside variables (`retire_on_commit`, `commit_alone_retiring`) by a commit
//! after a snapshot reader registered stay alive until every reader registered before that
//! commit has ended: snapshot readers do not pin, and may still follow the old links to them.
//! Checked with counted values, through each way of retiring (a commit alone, a transaction
//! retiring one value, a transaction retiring several), with one reader open, then with two,
//! the older of which ends first.

#[path = "common/reclaim.rs"]
mod reclaim;
use reclaim::reclaim_until;

use commute_stm::{TVar, atomically, read_only, reclaim_retired};
use commute_test_support::{Counted, with_watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

type Slot = TVar<*mut Counted>;

struct Slots([Slot; 3]);
// SAFETY: the boxes behind the pointers hold `Counted` values (Send + Sync), and the test
// frees each exactly once.
unsafe impl Send for Slots {}
// SAFETY: as for `Send`: shared, the slots are read and written only through transactions.
unsafe impl Sync for Slots {}

fn boxed(value: u64, live: &Arc<AtomicUsize>) -> *mut Counted {
    Box::into_raw(Box::new(Counted::new(value, live)))
}

fn slots(base: u64, live: &Arc<AtomicUsize>) -> Arc<Slots> {
    Arc::new(Slots([
        TVar::new(boxed(base, live)),
        TVar::new(boxed(base + 1, live)),
        TVar::new(boxed(base + 2, live)),
    ]))
}

/// A snapshot reader of `groups`: reads their pointers, tells the test it is registered, waits
/// to be released, then reads the values behind the pointers of its snapshot (which must still
/// be alive) and returns their sum. Returns 0 without touching them if the test gave up.
fn reader(groups: Vec<Arc<Slots>>) -> (JoinHandle<u64>, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (registered_tx, registered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        read_only(|tx| {
            let mut pointers = Vec::new();
            for g in &groups {
                for s in &g.0 {
                    pointers.push(s.read(tx)? as usize);
                }
            }
            let _ = registered_tx.send(());
            if release_rx.recv().is_err() {
                return Ok(0);
            }
            // SAFETY: the values of this snapshot, kept alive for it (the property tested).
            Ok(pointers
                .iter()
                .map(|&p| unsafe { (*(p as *const Counted)).value() })
                .sum())
        })
    });
    (handle, registered_rx, release_tx)
}

/// Replaces the three values of `g`, retiring the old ones (and `extra`) in the three ways.
fn replace_all(g: &Slots, base: u64, new_live: &Arc<AtomicUsize>, extra: *mut Counted) {
    // A commit alone.
    let (old, seen) = g.0[0].load_seen();
    let new = boxed(base, new_live);
    // SAFETY: `old` was boxed, is unlinked by this commit, and nothing else frees it.
    unsafe { g.0[0].commit_alone_retiring(seen, new, 0, old) }
        .unwrap_or_else(|_| panic!("nobody else commits"));
    // A transaction retiring one value.
    let old = g.0[1].load();
    let new = boxed(base + 1, new_live) as usize;
    atomically(|tx| {
        g.0[1].write(tx, new as *mut Counted);
        // SAFETY: unlinked by this commit; the closure commits once (it reads nothing).
        unsafe { tx.retire_on_commit(old) };
        Ok(())
    });
    // A transaction retiring two.
    let old = g.0[2].load();
    let new = boxed(base + 2, new_live) as usize;
    let extra = extra as usize;
    atomically(|tx| {
        g.0[2].write(tx, new as *mut Counted);
        // SAFETY: as above.
        unsafe {
            tx.retire_on_commit(old);
            tx.retire_on_commit(extra as *mut Counted);
        }
        Ok(())
    });
}

fn passes() {
    for _ in 0..20 {
        reclaim_retired();
        std::thread::yield_now();
    }
}

#[test]
fn values_retired_after_a_snapshot_outlive_it() {
    with_watchdog(30, || {
        let (old1, old2, new) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let first = slots(10, &old1);
        let second = slots(20, &old2);
        let extra1 = boxed(13, &old1);
        let extra2 = boxed(23, &old2);

        // One reader: the commits after it hold back what they retire.
        let (a, a_registered, a_release) = reader(vec![first.clone(), second.clone()]);
        a_registered.recv().expect("reader A registers");
        replace_all(&first, 110, &new, extra1);
        passes();
        assert_eq!(
            old1.load(Ordering::Relaxed),
            4,
            "a value retired after the only open snapshot was freed while it runs"
        );

        // A second, newer reader: what commits after both retire waits for both.
        let (b, b_registered, b_release) = reader(vec![second.clone()]);
        b_registered.recv().expect("reader B registers");
        replace_all(&second, 120, &new, extra2);
        passes();
        assert_eq!(old1.load(Ordering::Relaxed), 4);
        assert_eq!(old2.load(Ordering::Relaxed), 4);

        // The older reader ends: the newer one still holds back what it may reach.
        a_release.send(()).unwrap();
        assert_eq!(a.join().unwrap(), (10 + 11 + 12) + (20 + 21 + 22));
        passes();
        assert_eq!(
            old2.load(Ordering::Relaxed),
            4,
            "values retired after the newer open snapshot were freed when the older one ended"
        );

        b_release.send(()).unwrap();
        assert_eq!(b.join().unwrap(), 20 + 21 + 22);
        reclaim_until("every retired value freed once the readers ended", || {
            old1.load(Ordering::Relaxed) == 0 && old2.load(Ordering::Relaxed) == 0
        });

        // The values now in the slots: freed here, once.
        for g in [first, second] {
            for s in &g.0 {
                // SAFETY: the slot's box, reachable from nothing else now.
                drop(unsafe { Box::from_raw(s.load()) });
            }
        }
        assert_eq!(new.load(Ordering::Relaxed), 0);
    });
}

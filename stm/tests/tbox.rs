//! Heap values: borrowing reads, deferred reclamation, no leaks and no double frees.

#[path = "common/owned.rs"]
mod owned;

use commute_stm::{TBox, atomically, reclaim_retired};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live instances; checks its own integrity when read.
struct Tracked {
    live: Arc<AtomicUsize>,
    check: u64,
    payload: u64,
}

impl Tracked {
    fn new(live: &Arc<AtomicUsize>, payload: u64) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Tracked {
            live: live.clone(),
            check: payload ^ 0xA5A5_A5A5,
            payload,
        }
    }
    fn payload(&self) -> u64 {
        assert_eq!(
            self.check,
            self.payload ^ 0xA5A5_A5A5,
            "read a freed or torn value"
        );
        self.payload
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.check = 0;
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Frees retired values until `live` values remain. The tests of this file run in parallel, and
/// another test's transaction may hold an old pin for as long as the scheduler leaves its thread
/// off a core (milliseconds on a busy two-core machine), so this repeats up to a generous
/// deadline, failing with the count if the values are never freed.
fn reclaim_until(live: &AtomicUsize, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        reclaim_retired();
        let now = live.load(Ordering::SeqCst);
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} values live, expected {expected}: a retired value was never freed"
        );
        std::thread::yield_now();
    }
}

#[test]
fn replaced_values_are_freed_once_no_reader_remains() {
    with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let b = Arc::new(TBox::new(Tracked::new(&live, 0)));
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let (b, live) = (b.clone(), live.clone());
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        if (i + t) % 2 == 0 {
                            atomically(|tx| {
                                let next = b.read(tx)?.payload() + 1;
                                b.write(tx, Tracked::new(&live, next));
                                Ok(())
                            });
                        } else {
                            atomically(|tx| b.read(tx).map(Tracked::payload));
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.load_with(Tracked::payload), 20_000);
        reclaim_until(&live, 1);
        // Freed at once, or, while another test's thread runs `atomically`, once it has left.
        drop(b);
        reclaim_until(&live, 0);
    });
}

#[test]
fn rolled_back_writes_are_freed_and_own_writes_are_read_back() {
    with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let b = TBox::new(Tracked::new(&live, 1));
        let got = atomically(|tx| {
            tx.or_else(
                |tx| {
                    b.write(tx, Tracked::new(&live, 2));
                    b.write(tx, Tracked::new(&live, 3));
                    assert_eq!(b.read(tx)?.payload(), 3);
                    tx.retry()
                },
                |tx| {
                    b.write(tx, Tracked::new(&live, 4));
                    b.read(tx).map(Tracked::payload)
                },
            )
        });
        assert_eq!(got, 4);
        reclaim_until(&live, 1);
        assert_eq!(b.into_inner().payload(), 4);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    });
}

/// A branch that writes each box once (no value overwritten) and retries: its values leave the
/// write set with the rollback, and the commit of the other branch must still free them.
#[test]
fn values_of_a_rolled_back_branch_that_wrote_each_box_once_are_freed() {
    with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let (a, b) = (
            TBox::new(Tracked::new(&live, 1)),
            TBox::new(Tracked::new(&live, 10)),
        );
        for round in 0..3u64 {
            atomically(|tx| {
                tx.or_else(
                    |tx| {
                        a.write(tx, Tracked::new(&live, 100 + round));
                        tx.retry()
                    },
                    |tx| {
                        b.write(tx, Tracked::new(&live, 11 + round));
                        Ok(())
                    },
                )
            });
        }
        // `a`'s value, `b`'s latest: the three rolled-back values and `b`'s replaced ones freed.
        reclaim_until(&live, 2);
        assert_eq!(a.into_inner().payload(), 1);
        assert_eq!(b.into_inner().payload(), 13);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    });
}

/// An attempt that writes a box twice commits only the second value: the first, its own
/// allocation that nothing ever saw, is freed once.
#[test]
fn a_value_overwritten_in_the_same_attempt_is_freed() {
    with_watchdog(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let b = TBox::new(Tracked::new(&live, 1));
        for round in 0..3u64 {
            atomically(|tx| {
                b.write(tx, Tracked::new(&live, 100 + round));
                b.write(tx, Tracked::new(&live, 2 + round));
                Ok(())
            });
        }
        reclaim_until(&live, 1);
        assert_eq!(b.into_inner().payload(), 4);
        assert_eq!(live.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn get_mut_and_load_work_outside_transactions() {
    let mut b = TBox::new(vec![1, 2]);
    b.get_mut().push(3);
    assert_eq!(b.load(), vec![1, 2, 3]);
    assert_eq!(format!("{b:?}"), "TBox { value: [1, 2, 3] }");
}

#[test]
#[should_panic(expected = "use TBox::read(tx)")]
fn load_inside_a_transaction_panics() {
    let b = TBox::new(1u8);
    atomically(|_| Ok(b.load()));
}

#[test]
fn nested_loads_keep_the_outer_value_pinned() {
    let outer = TBox::new(TBox::new(String::from("inner")));
    let got = outer.load_with(|inner| {
        let copy = inner.load(); // nested pinned load: must not unpin the outer one
        (copy, inner.load_with(|s| s.len()))
    });
    assert_eq!(got, (String::from("inner"), 5));
    assert_eq!(
        format!("{outer:?}"),
        "TBox { value: TBox { value: \"inner\" } }"
    );
}

#[test]
fn values_retired_by_unpinned_attempts_are_freed() {
    // Regression: `retire_on_commit` in an attempt that never pinned used to be carried over and
    // then lost.
    let live = Arc::new(AtomicUsize::new(0));
    let v = commute_stm::TVar::new(0u8);
    for writes in [false, true, true] {
        let boxed = Box::into_raw(Box::new(Tracked::new(&live, 1)));
        let mut once = Some(boxed);
        atomically(|tx| {
            if writes {
                v.write(tx, 1);
            }
            if let Some(p) = once.take() {
                // SAFETY: `p` was never shared and is retired exactly once.
                unsafe { tx.retire_on_commit(p) };
            }
            Ok(())
        });
    }
    reclaim_until(&live, 0);
}

/// `TVar::write_owned` gives a collection's own owned words `TBox`'s rules: a rolled-back value
/// and one overwritten in the same attempt are freed with the attempt; a replaced committed one
/// once no reader remains; an empty word is never freed.
#[test]
fn owned_words_follow_the_rules_of_boxes() {
    with_watchdog(20, || {
        use commute_stm::TVar;

        /// A tracked box, or null: an owned word.
        type Owned = owned::Owned<Tracked>;

        let live = Arc::new(AtomicUsize::new(0));
        let owned = |payload| Owned::new(Tracked::new(&live, payload));
        let var = TVar::new(Owned::null());
        let payload = |var: &TVar<Owned>| {
            atomically(|tx| {
                tx.pin();
                let p = var.read(tx)?.0;
                // SAFETY: pinned; a committed value stays alive for the attempt.
                Ok((!p.is_null()).then(|| unsafe { (*p).payload() }))
            })
        };
        // Overwritten in the same attempt: the first value never becomes visible and is freed.
        atomically(|tx| {
            // SAFETY: fresh boxes, owned by nothing else.
            unsafe {
                var.write_owned(tx, owned(1));
                var.write_owned(tx, owned(2));
            }
            Ok(())
        });
        assert_eq!(payload(&var), Some(2));
        assert_eq!(
            live.load(Ordering::SeqCst),
            1,
            "the overwritten value was freed"
        );
        // Rolled back in an `or_else` branch, and with a whole attempt (a panic).
        atomically(|tx| {
            tx.or_else(
                |tx| {
                    // SAFETY: as above.
                    unsafe { var.write_owned(tx, owned(3)) };
                    tx.retry()
                },
                |_| Ok(()),
            )
        });
        let rolled_back = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            atomically(|tx| {
                // SAFETY: as above.
                unsafe { var.write_owned(tx, owned(4)) };
                if true {
                    panic!("roll the attempt back");
                }
                Ok(())
            })
        }));
        assert!(rolled_back.is_err());
        assert_eq!(payload(&var), Some(2));
        assert_eq!(
            live.load(Ordering::SeqCst),
            1,
            "rolled-back values were freed"
        );
        // Replaced by a commit: retired, freed by reclamation; the empty word frees nothing.
        atomically(|tx| {
            // SAFETY: the empty word owns nothing.
            unsafe { var.write_owned(tx, Owned::null()) };
            Ok(())
        });
        assert_eq!(payload(&var), None);
        reclaim_until(&live, 0);
    });
}

/// Zero-sized values of two types, each counting its drops in its own counter.
static FIRST_DROPS: AtomicUsize = AtomicUsize::new(0);
static SECOND_DROPS: AtomicUsize = AtomicUsize::new(0);

struct First;
impl Drop for First {
    fn drop(&mut self) {
        FIRST_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

struct Second;
impl Drop for Second {
    fn drop(&mut self) {
        SECOND_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Boxes of zero-sized values all have the same address (their alignment): the commit must not
/// take one type's value for another's when it tells the values it published from those it
/// overwrote. Here the value overwritten is a `First`, allocated before the `Second` that
/// another box publishes: in all, three `First`s and two `Second`s are made each round, and
/// each is dropped once (a commit that took the `Second` for the overwritten value dropped it
/// twice, and never the `First`). The second round writes 20 more boxes in the attempt, past
/// the number of values the commit matches by a scan.
#[test]
fn zero_sized_values_of_two_types_overwritten_and_published_in_one_attempt() {
    with_watchdog(30, || {
        for (round, others) in [0, 20].into_iter().enumerate() {
            let first = TBox::new(First);
            let second = TBox::new(Second);
            let more: Vec<TBox<u64>> = (0..others).map(TBox::new).collect();
            atomically(|tx| {
                first.write(tx, First);
                second.write(tx, Second);
                for b in &more {
                    b.write(tx, 7);
                }
                first.write(tx, First); // overwrites the attempt's first `First`
                Ok(())
            });
            assert!(more.iter().all(|b| b.load() == 7));
            drop((first, second, more));
            // Values replaced by the commit and those of dropped boxes go once no reader
            // remains.
            reclaim_until(&FIRST_DROPS, 3 * (round + 1));
            reclaim_until(&SECOND_DROPS, 2 * (round + 1));
        }
    });
}

//! `retry` wake-ups, `or_else` rollback and nesting, hooks.

#[path = "common/irrevocable.rs"]
mod irrevocable;

use commute_stm::{TBox, TVar, Transaction, TxError, TxResult, atomically, try_atomically};
use commute_test_support::{in_child_process, panic_message, with_watchdog};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;

#[test]
fn retry_wakes_on_a_commit_to_what_it_read() {
    with_watchdog(20, || {
        for _ in 0..200 {
            let slot = Arc::new(TVar::new(0u64));
            let s = slot.clone();
            let consumer = std::thread::spawn(move || {
                atomically(|tx| match s.read(tx)? {
                    0 => tx.retry(),
                    v => Ok(v),
                })
            });
            atomically(|tx| {
                slot.write(tx, 7);
                Ok(())
            });
            assert_eq!(consumer.join().unwrap(), 7);
        }
    });
}

#[test]
fn retry_waits_for_any_of_several_variables() {
    with_watchdog(20, || {
        let a = Arc::new(TVar::new(false));
        let b = Arc::new(TVar::new(false));
        let (a2, b2) = (a.clone(), b.clone());
        let (started_tx, started_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let started = started_tx;
            atomically(|tx| {
                let _ = started.send(());
                if a2.read(tx)? || b2.read(tx)? {
                    Ok("woken")
                } else {
                    tx.retry()
                }
            })
        });
        started_rx.recv().unwrap();
        atomically(|tx| {
            b.write(tx, true);
            Ok(())
        });
        assert_eq!(waiter.join().unwrap(), "woken");
    });
}

#[test]
fn a_producer_consumer_pair_loses_no_wake_up() {
    with_watchdog(20, || {
        // A one-slot mailbox: every item must get through, each with a blocking handover.
        let slot = Arc::new(TVar::new(0u64)); // 0 = empty
        let s = slot.clone();
        let consumer = std::thread::spawn(move || {
            let mut sum = 0;
            for _ in 0..5_000 {
                sum += atomically(|tx| match s.read(tx)? {
                    0 => tx.retry(),
                    v => {
                        s.write(tx, 0);
                        Ok(v)
                    }
                });
            }
            sum
        });
        for i in 1..=5_000u64 {
            atomically(|tx| match slot.read(tx)? {
                0 => {
                    slot.write(tx, i);
                    Ok(())
                }
                _ => tx.retry(),
            });
        }
        assert_eq!(consumer.join().unwrap(), 5_000 * 5_001 / 2);
    });
}

#[test]
#[should_panic(expected = "retry() called in a transaction that has read no TVar")]
fn retry_with_nothing_read_panics() {
    with_watchdog(20, || {
        atomically(|tx| tx.retry::<()>());
    });
}

/// An irrevocable attempt locks what it reads and writes alike; its retry waited on the
/// variables it only wrote, so one that read nothing slept for ever instead of panicking (a
/// reviewer's test, caught by its watchdog).
#[test]
fn an_irrevocable_retry_that_read_nothing_panics_as_any_retry_that_read_nothing() {
    // In a child process: a hang would leave the irrevocable token held.
    in_child_process(|| {
        with_watchdog(20, || {
            let (y, x) = (Arc::new(TVar::new(0u64)), TVar::new(0u64));
            let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                atomically(|tx| {
                    if !tx.is_irrevocable() {
                        irrevocable::conflict_unless_irrevocable(tx, &y)?;
                    }
                    x.write(tx, 1); // written, never read
                    tx.retry::<()>()
                })
            }));
            let payload = panicked.expect_err("a retry that read nothing panics");
            let text = panic_message(&*payload);
            assert!(text.contains("has read no TVar"), "{text}");
            assert_eq!(x.load(), 0, "rolled back");
        })
    });
}

/// A transaction's body in these tests.
type Body = fn(&Transaction, &TVar<u64>) -> TxResult<u64, &'static str>;

/// Runs, on a thread of its own named `name`, a transaction made irrevocable that runs `body`
/// on `x` (0 at first), which retries while it sees what it expects of `x` unchanged; then
/// writes 1 to `x` from this thread. The retry must wait on `x` (a retry whose read of it went
/// unrecorded panicked "has read no TVar", or slept on the other variable it read for ever);
/// returns what the transaction returned, and `x`.
fn irrevocable_retry_woken_by_a_write_to_x(name: &'static str, body: Body) -> (u64, u64) {
    with_watchdog(20, move || {
        let (y, x) = (Arc::new(TVar::new(0u64)), Arc::new(TVar::new(0u64)));
        let waiter = {
            let (y, x) = (y.clone(), x.clone());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    try_atomically(|tx| {
                        if !tx.is_irrevocable() {
                            irrevocable::conflict_unless_irrevocable(tx, &y)?;
                        }
                        body(tx, &x)
                    })
                })
                .expect("spawn")
        };
        while !commute_stm::blocked_transactions()
            .iter()
            .any(|b| b.thread_name() == Some(name))
        {
            if waiter.is_finished() {
                break;
            }
            std::thread::yield_now();
        }
        atomically(|tx| {
            x.write(tx, 1);
            Ok(())
        });
        let got = waiter.join().expect("the waiter");
        (got.expect("no error passed on"), x.load())
    })
}

/// Reads `x`: retries while it is 0, else returns it.
fn retry_while_zero(tx: &Transaction, x: &TVar<u64>) -> TxResult<u64, &'static str> {
    match x.read(tx)? {
        0 => Ok(tx.retry()?),
        seen => Ok(seen),
    }
}

/// And one that read a variable, then wrote it, waits for another thread to change it, as an
/// optimistic attempt does.
#[test]
fn an_irrevocable_retry_waits_on_a_variable_it_read_then_wrote() {
    let got = irrevocable_retry_woken_by_a_write_to_x("irrevocable waiter", |tx, x| {
        let seen = x.read(tx)?;
        x.write(tx, seen + 10);
        if seen == 0 { Ok(tx.retry()?) } else { Ok(seen) }
    });
    assert_eq!(got, (1, 11));
}

/// One that added to a variable, then read it, waits on it too: the add locked the variable
/// and became a plain write at once, so the read that followed read the write and recorded
/// nothing, and the retry panicked where an optimistic attempt waits (a reviewer's test,
/// failed before).
#[test]
fn an_irrevocable_retry_waits_on_a_variable_it_added_to_then_read() {
    let got = irrevocable_retry_woken_by_a_write_to_x("irrevocable adder", |tx, x| {
        x.add(tx, 10);
        let seen = x.read(tx)?;
        if seen == 10 {
            Ok(tx.retry()?)
        } else {
            Ok(seen)
        }
    });
    assert_eq!(got, (11, 11));
}

/// One that published to a variable, then read it (its committed value: publishing is
/// invisible to the attempt's own reads), waits on it too.
#[test]
fn an_irrevocable_retry_waits_on_a_variable_it_published_to_then_read() {
    let got = irrevocable_retry_woken_by_a_write_to_x("irrevocable publisher", |tx, x| {
        // SAFETY: the operation neither panics nor touches other memory.
        unsafe { x.publish_on_commit(tx, |v, _| v + 10) };
        retry_while_zero(tx, x)
    });
    assert_eq!(got, (1, 11));
}

/// One whose rolled-back branch wrote, added to or published to a variable it then read waits
/// on it too: the branch's lock was kept as an entry that reads took for a recorded read, so
/// the read recorded nothing and the retry slept on the other variable for ever (written,
/// added) or panicked (a `try_or_else` branch that failed). A reviewer's tests, each failed
/// before; a rolled-back branch now lets go of what it locked without reading it, and keeps
/// what it read, a commute's result included.
#[test]
fn an_irrevocable_retry_waits_on_a_variable_a_rolled_back_branch_locked() {
    let branches: [(&str, Body); 7] = [
        ("irrevocable branch writer", |tx, x| {
            tx.try_or_else(
                |tx| {
                    x.write(tx, 10);
                    Ok(tx.retry()?)
                },
                |tx| retry_while_zero(tx, x),
            )
        }),
        ("irrevocable branch adder", |tx, x| {
            tx.try_or_else(
                |tx| {
                    x.add(tx, 10);
                    Ok(tx.retry()?)
                },
                |tx| retry_while_zero(tx, x),
            )
        }),
        ("irrevocable branch publisher", |tx, x| {
            tx.try_or_else(
                |tx| {
                    // SAFETY: the operation neither panics nor touches other memory.
                    unsafe { x.publish_on_commit(tx, |v, _| v + 10) };
                    Ok(tx.retry()?)
                },
                |tx| retry_while_zero(tx, x),
            )
        }),
        // A commute (an add after an add, an add to a narrower integer) runs at once on the
        // committed value in irrevocable mode: the read of its result is a read of that value.
        // It recorded nothing, and the rollback let go of the variable although what the
        // branch read left it (the second reviewer of this stop's changes; with concurrent
        // writers, a lost update).
        ("irrevocable failed commute branch", |tx, x| {
            let failed: TxResult<u64, u64> = tx.try_or_else(
                |tx| {
                    x.commute(tx, |v| v);
                    let seen = x.read(tx)?;
                    tx.abort(seen)
                },
                |_| Ok(0),
            );
            match failed {
                Err(TxError::Abort(0)) => Ok(tx.retry()?),
                Err(TxError::Abort(seen)) => Ok(seen),
                other => panic!("the branch fails: {other:?}"),
            }
        }),
        ("irrevocable retried commute branch", |tx, x| {
            tx.try_or_else(
                |tx| {
                    x.add(tx, 0);
                    x.commute(tx, |v| v);
                    retry_while_zero(tx, x)
                },
                |tx| Ok(tx.retry()?),
            )
        }),
        ("irrevocable commute", |tx, x| {
            x.commute(tx, |v| v);
            retry_while_zero(tx, x)
        }),
        ("irrevocable failed branch", |tx, x| {
            let failed = tx.try_or_else(
                |tx| {
                    x.add(tx, 10);
                    tx.abort("refused")
                },
                |_| Ok(0),
            );
            assert!(matches!(failed, Err(TxError::Abort("refused"))));
            retry_while_zero(tx, x)
        }),
    ];
    for (name, body) in branches {
        assert_eq!(
            irrevocable_retry_woken_by_a_write_to_x(name, body),
            (1, 1),
            "{name}"
        );
    }
}

#[test]
fn or_else_rolls_back_the_first_branch() {
    with_watchdog(20, || {
        let a = TVar::new(1u32);
        let b = TVar::new(2u32);
        let boxed = TBox::new(String::from("kept"));
        let committed_hooks = Rc::new(Cell::new(0));
        let h = committed_hooks.clone();
        let got = atomically(|tx| {
            let (h1, h2) = (h.clone(), h.clone());
            tx.or_else(
                |tx| {
                    a.write(tx, 100);
                    b.add(tx, 5);
                    boxed.write(tx, String::from("discarded"));
                    tx.on_commit(move || h1.set(h1.get() + 10));
                    if a.read(tx)? == 100 {
                        tx.retry()
                    } else {
                        Ok(0)
                    }
                },
                |tx| {
                    tx.on_commit(move || h2.set(h2.get() + 1));
                    Ok(a.read(tx)? + b.read(tx)? + boxed.read(tx)?.len() as u32)
                },
            )
        });
        assert_eq!(got, 1 + 2 + 4);
        assert_eq!(
            (a.load(), b.load(), boxed.load()),
            (1, 2, String::from("kept"))
        );
        assert_eq!(
            committed_hooks.get(),
            1,
            "only the second branch's hook runs"
        );
    });
}

#[test]
fn or_else_nests_and_keeps_outer_writes() {
    with_watchdog(20, || {
        let v = TVar::new(0u32);
        let got = atomically(|tx| {
            v.write(tx, 1); // before the or_else: must survive the inner rollbacks
            tx.or_else(
                |tx| {
                    v.write(tx, 2);
                    tx.or_else(
                        |tx| {
                            v.write(tx, 3);
                            tx.retry()
                        },
                        |tx| {
                            assert_eq!(v.read(tx)?, 2);
                            tx.retry()
                        },
                    )
                },
                |tx| v.read(tx),
            )
        });
        assert_eq!(got, 1);
        assert_eq!(v.load(), 1);
    });
}

#[test]
fn when_both_branches_retry_the_transaction_waits_for_either() {
    with_watchdog(20, || {
        let a = Arc::new(TVar::new(0u8));
        let b = Arc::new(TVar::new(0u8));
        let (a2, b2) = (a.clone(), b.clone());
        let waiter = std::thread::spawn(move || {
            atomically(|tx| {
                tx.or_else(
                    |tx| {
                        if a2.read(tx)? == 0 {
                            tx.retry()
                        } else {
                            Ok('a')
                        }
                    },
                    |tx| {
                        if b2.read(tx)? == 0 {
                            tx.retry()
                        } else {
                            Ok('b')
                        }
                    },
                )
            })
        });
        atomically(|tx| {
            b.write(tx, 1);
            Ok(())
        });
        assert_eq!(waiter.join().unwrap(), 'b');
    });
}

#[test]
fn hooks_run_once_after_commit_and_abort_hooks_after_a_rollback() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u8));
        let w = TVar::new(0u8);
        let commits = Rc::new(Cell::new(0));
        let aborts = Rc::new(Cell::new(0));
        let attempts = Cell::new(0);
        let (c, a) = (commits.clone(), aborts.clone());
        atomically(|tx| {
            attempts.set(attempts.get() + 1);
            let (c, a) = (c.clone(), a.clone());
            tx.on_commit(move || c.set(c.get() + 1));
            tx.on_abort(move || a.set(a.get() + 1));
            let seen = v.read(tx)?;
            if attempts.get() == 1 {
                // Another thread commits to what we read: our commit must fail validation.
                let v2 = v.clone();
                std::thread::spawn(move || atomically(|tx| v2.modify(tx, |x| x + 1)))
                    .join()
                    .unwrap();
            }
            w.write(tx, seen + 10);
            Ok(())
        });
        assert_eq!(attempts.get(), 2);
        assert_eq!((commits.get(), aborts.get()), (1, 1));
        assert_eq!(w.load(), 11);
    });
}

#[test]
fn every_commit_hook_runs_even_if_an_earlier_one_panics_and_the_first_panic_is_passed_on() {
    let ran = Rc::new(Cell::new(Vec::new()));
    let v = TVar::new(0u8);
    let r = ran.clone();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        atomically(|tx| {
            v.write(tx, 1);
            for hook in 0..4 {
                let r = r.clone();
                tx.on_commit(move || {
                    r.set([r.take(), vec![hook]].concat());
                    if hook == 1 || hook == 2 {
                        panic!("hook {hook} failed");
                    }
                });
            }
            Ok(())
        })
    }));
    let payload = outcome.expect_err("the hook's panic reaches the caller");
    assert_eq!(payload.downcast_ref::<String>().unwrap(), "hook 1 failed");
    assert_eq!(ran.take(), [0, 1, 2, 3]);
    assert_eq!(
        v.load(),
        1,
        "the transaction committed before its hooks ran"
    );
    // The thread is usable afterwards: no transaction is left half-open.
    assert_eq!(atomically(|tx| v.read(tx)), 1);
}

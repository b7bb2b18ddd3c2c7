//! `blocked_transactions` (who sleeps in `retry`, on what) and `retry_until` (waits with a
//! deadline).

use commute_stm::{BlockedTx, TVar, atomically, blocked_transactions};
use commute_test_support::with_watchdog;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Polls the list until `thread` is on it (the watchdog bounds the wait).
fn wait_until_listed(thread: ThreadId) -> BlockedTx {
    loop {
        if let Some(b) = blocked_transactions()
            .into_iter()
            .find(|b| b.thread_id() == thread)
        {
            return b;
        }
        std::thread::yield_now();
    }
}

fn listed(thread: ThreadId) -> bool {
    blocked_transactions()
        .iter()
        .any(|b| b.thread_id() == thread)
}

#[test]
fn a_sleeping_transaction_is_listed_with_its_variables_until_woken() {
    with_watchdog(20, || {
        let plain_line = line!() + 1;
        let plain = Arc::new(TVar::new(0u64));
        let gate = Arc::new(TVar::new(false).with_label("blocked-test gate"));
        let (p, g) = (plain.clone(), gate.clone());
        let site_line = line!() + 4;
        let waiter = std::thread::Builder::new()
            .name("blocked-test waiter".into())
            .spawn(move || {
                atomically(|tx| {
                    let n = p.read(tx)?;
                    if n == 0 && !g.read(tx)? {
                        return tx.retry();
                    }
                    Ok(n)
                })
            })
            .unwrap();
        let id = waiter.thread().id();
        let blocked = wait_until_listed(id);
        assert_eq!(blocked.thread_name(), Some("blocked-test waiter"));
        assert_eq!(blocked.site().line(), site_line);
        assert_eq!(blocked.site().file(), file!());
        assert!(blocked.deadline().is_none());
        assert!(blocked.since() <= Instant::now());
        let vars = blocked.waiting_on();
        assert_eq!(vars.len(), 2, "{vars:?}");
        assert_eq!(vars[0].label(), None);
        assert_eq!(vars[0].created_at().line(), plain_line);
        assert_eq!(vars[0].created_at().file(), file!());
        assert_eq!(vars[1].label(), Some("blocked-test gate"));
        assert_ne!(vars[0].address(), vars[1].address());
        let shown = blocked.to_string();
        assert!(shown.contains("\"blocked-test waiter\""), "{shown}");
        assert!(shown.contains("TVar \"blocked-test gate\""), "{shown}");
        assert!(format!("{blocked:?}").contains("blocked-test gate"));
        // Still asleep: it stays listed, with the same start.
        let again = wait_until_listed(id);
        assert_eq!(again.since(), blocked.since());
        atomically(|tx| {
            plain.write(tx, 5);
            Ok(())
        });
        assert_eq!(waiter.join().unwrap(), 5);
        assert!(!listed(id), "a woken transaction is taken off the list");
    });
}

#[test]
fn a_wait_with_a_deadline_is_listed_with_it() {
    with_watchdog(20, || {
        let gate = Arc::new(TVar::new(false));
        let g = gate.clone();
        let deadline = Instant::now() + Duration::from_secs(3600);
        let waiter = std::thread::spawn(move || {
            atomically(|tx| {
                if g.read(tx)? {
                    return Ok(true);
                }
                tx.retry_until(deadline)?;
                Ok(false)
            })
        });
        let blocked = wait_until_listed(waiter.thread().id());
        assert_eq!(blocked.deadline(), Some(deadline));
        assert!(blocked.to_string().contains("deadline in"));
        atomically(|tx| {
            gate.write(tx, true);
            Ok(())
        });
        assert!(
            waiter.join().unwrap(),
            "woken by the write, not by the deadline"
        );
    });
}

#[test]
fn retry_until_times_out_after_the_deadline() {
    with_watchdog(20, || {
        let v = TVar::new(0u8);
        let timeout = Duration::from_millis(30);
        let start = Instant::now();
        let deadline = start + timeout;
        let mut attempts = 0;
        let got = atomically(|tx| {
            attempts += 1;
            if v.read(tx)? != 0 {
                return Ok(Some(()));
            }
            tx.retry_until(deadline)?;
            Ok(None)
        });
        assert_eq!(got, None, "the timeout path");
        assert!(start.elapsed() >= timeout);
        assert!(attempts >= 2, "it waited, then ran again");
    });
}

#[test]
fn retry_until_a_past_deadline_goes_on_at_once() {
    let v = TVar::new(0u8);
    let mut attempts = 0;
    let got = atomically(|tx| {
        attempts += 1;
        v.read(tx)?;
        tx.retry_until(Instant::now() - Duration::from_millis(1))?;
        v.write(tx, 1);
        Ok("went on")
    });
    assert_eq!((got, attempts), ("went on", 1));
    assert_eq!(
        v.load(),
        1,
        "the attempt that saw the deadline passed committed"
    );
}

#[test]
fn retry_until_with_nothing_read_sleeps_until_the_deadline() {
    with_watchdog(20, || {
        let timeout = Duration::from_millis(20);
        let start = Instant::now();
        let deadline = start + timeout;
        atomically(|tx| tx.retry_until(deadline));
        assert!(start.elapsed() >= timeout);
    });
}

#[test]
fn retry_until_takes_the_earliest_of_several_deadlines_in_or_else() {
    with_watchdog(20, || {
        let v = TVar::new(0u8);
        let start = Instant::now();
        let near = start + Duration::from_millis(20);
        let far = start + Duration::from_secs(3600);
        let got = atomically(|tx| {
            tx.or_else(
                |tx| {
                    v.read(tx)?;
                    tx.retry_until(far)?;
                    Ok("far")
                },
                |tx| {
                    v.read(tx)?;
                    tx.retry_until(near)?;
                    Ok("near")
                },
            )
        });
        assert_eq!(got, "near");
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}

#[test]
fn many_wake_ups_lose_nothing() {
    // A ping-pong through one variable: each side waits (watching, then asleep) for the
    // other's write. Exact count, and every waiter is off the list at the end.
    with_watchdog(60, || {
        const ROUNDS: u64 = 20_000;
        let turn = Arc::new(TVar::new(0u64));
        let t = turn.clone();
        let other = std::thread::spawn(move || {
            for i in 0..ROUNDS {
                atomically(|tx| {
                    if t.read(tx)? != 2 * i + 1 {
                        return tx.retry();
                    }
                    t.write(tx, 2 * i + 2);
                    Ok(())
                });
            }
        });
        for i in 0..ROUNDS {
            atomically(|tx| {
                if turn.read(tx)? != 2 * i {
                    return tx.retry();
                }
                turn.write(tx, 2 * i + 1);
                Ok(())
            });
        }
        let id = other.thread().id();
        other.join().unwrap();
        assert_eq!(turn.load(), 2 * ROUNDS);
        assert!(!listed(id));
        assert!(!listed(std::thread::current().id()));
    });
}

#[test]
fn a_deadline_of_an_attempt_that_did_not_wait_does_not_outlive_it() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u8));
        let v2 = v.clone();
        let waiter = std::thread::spawn(move || {
            // Commits through the second branch, after the first gave a deadline. (A slow run,
            // valgrind's, may reach the branch after the deadline: it then tries again with a
            // wider margin; nothing was written.)
            let mut margin = Duration::from_millis(1);
            let near = loop {
                let near = Instant::now() + margin;
                let branch = atomically(|tx| {
                    tx.or_else(
                        |tx| {
                            v2.read(tx)?;
                            tx.retry_until(near)?;
                            Ok(1)
                        },
                        |_| Ok(2),
                    )
                });
                if branch == 2 {
                    break near;
                }
                margin *= 4;
            };
            // Let the deadline pass: a deadline left over from that attempt would now end the
            // wait below early, and take a third attempt.
            while Instant::now() <= near {
                std::thread::yield_now();
            }
            // A plain wait afterwards sleeps until the write: two attempts, no more.
            let mut attempts = 0;
            atomically(|tx| {
                attempts += 1;
                if v2.read(tx)? == 0 {
                    return tx.retry();
                }
                Ok(())
            });
            attempts
        });
        wait_until_listed(waiter.thread().id());
        atomically(|tx| {
            v.write(tx, 1);
            Ok(())
        });
        assert_eq!(waiter.join().unwrap(), 2);
    });
}

//! A write skew through another committer's lock, shared by the tests of the commits that
//! find their own locks at validation (a one-entry write set, a thread without a version tag).

use commute_stm::{TVar, Transaction, atomically};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// T: if y == 0 then a := 1, with the writes of `t_writes` (given the transaction, `a`, whether
/// y was 0, and the attempt's number). U: if a == 0 then y := 1; its commit holds its locks (on
/// y and z) while a commutative operation of its own runs, after U has validated its read of
/// `a`, and T validates its read of y then. Serially, at most one of a and y ends up 1: T must
/// meet U's lock, fail its validation and run again after U (`who` names T in the failure).
///
/// Runs T and U on threads of their own (T's thread is new: it registers when T first runs).
pub(crate) fn t_meets_a_lock_u_holds(
    who: &str,
    t_writes: impl Fn(&Transaction, &TVar<u64>, bool, u64) + Send + 'static,
) {
    let a = Arc::new(TVar::new(0u64));
    let y = Arc::new(TVar::new(0u64));
    let z = Arc::new(TVar::new(0u64));
    let (t_read_y, main_t_read_y) = mpsc::channel::<()>();
    let (u_holding, main_u_holding) = mpsc::channel::<()>();
    let (t_may_commit, t_wait) = mpsc::channel::<()>();
    let (u_go, u_wait) = mpsc::channel::<()>();
    let u_go = Arc::new(Mutex::new(Some(u_go)));

    let t = {
        let (a, y, u_go) = (a.clone(), y.clone(), u_go.clone());
        std::thread::spawn(move || {
            let mut attempts = 0;
            atomically(|tx| {
                attempts += 1;
                if attempts > 1 {
                    // U may finish now (once).
                    if let Some(go) = u_go.lock().unwrap().take() {
                        let _ = go.send(());
                    }
                }
                let yv = y.read(tx)?;
                if attempts == 1 {
                    t_read_y.send(()).unwrap();
                    t_wait.recv().unwrap();
                }
                t_writes(tx, &a, yv == 0, attempts);
                Ok(())
            });
            attempts
        })
    };
    main_t_read_y.recv().expect("T read y");

    let u = {
        let (a, y, z) = (a.clone(), y.clone(), z.clone());
        let u_wait = Arc::new(Mutex::new(u_wait));
        let blocked_once = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            atomically(|tx| {
                if a.read(tx)? == 0 {
                    y.write(tx, 1);
                }
                let (u_holding, u_wait, once) =
                    (u_holding.clone(), u_wait.clone(), blocked_once.clone());
                z.commute(tx, move |v| {
                    // At U's commit, every lock held and its reads validated.
                    if !once.swap(true, Ordering::SeqCst) {
                        let _ = u_holding.send(());
                        let _ = u_wait.lock().unwrap().recv();
                    }
                    v + 1
                });
                Ok(())
            });
        })
    };
    main_u_holding.recv().expect("U holds its locks");
    // T validates its read of y, which U holds locked.
    t_may_commit.send(()).unwrap();
    let t_attempts = t.join().unwrap();
    // If T committed without running again, U is still waiting.
    if let Some(go) = u_go.lock().unwrap().take() {
        let _ = go.send(());
    }
    u.join().unwrap();

    let (av, yv) = (a.load(), y.load());
    assert!(
        !(av == 1 && yv == 1),
        "write skew: T ({who}) committed a = 1 from y = 0 while U, holding y's lock, committed \
         y = 1 from a = 0 ({t_attempts} attempts of T)"
    );
    assert_eq!((av, yv, z.load()), (0, 1, 1), "U first, then T");
    assert!(t_attempts >= 2, "T met U's lock and ran again");
}

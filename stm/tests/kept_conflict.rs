//! A closure that returned a conflict `StmError` that no operation of the running attempt
//! reported (one kept from an earlier attempt: `StmError` is `Copy`) made `atomically` and
//! `try_atomically` run again for ever, the irrevocable attempts included (which are promised to
//! commit): the thread spun with no panic. It now panics at once, naming the misuse.

use commute_stm::{StmError, StmResult, TVar, TxResult, atomically, try_atomically};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on a thread of its own; its panic message, or "HANG" after `secs`.
fn outcome(secs: u64, f: impl FnOnce() + Send + 'static) -> String {
    let (s, r) = mpsc::channel();
    std::thread::spawn(move || {
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = s.send(out);
    });
    match r.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(())) => "returned".into(),
        Ok(Err(p)) => commute_test_support::panic_message(&*p),
        Err(_) => "HANG".into(),
    }
}

/// A real conflict signal, met by the first attempt of a transaction and kept: the attempt
/// reads `v`, another thread commits to `v` and `w`, then the attempt reads `w` (newer than its
/// snapshot), which fails validation.
fn a_kept_conflict() -> StmError {
    let v = Arc::new(TVar::new(0u64));
    let w = Arc::new(TVar::new(0u64));
    let (go, wait) = mpsc::channel::<()>();
    let (done, done_wait) = mpsc::channel::<()>();
    let (v2, w2) = (v.clone(), w.clone());
    let writer = std::thread::spawn(move || {
        wait.recv().unwrap();
        atomically(|tx| {
            v2.write(tx, 1);
            w2.write(tx, 1);
            Ok(())
        });
        done.send(()).unwrap();
    });
    let mut kept = None;
    atomically(|tx| {
        v.read(tx)?;
        if kept.is_none() {
            go.send(()).unwrap();
            done_wait.recv().unwrap();
            let e = w.read(tx).expect_err("the read of w must conflict");
            kept = Some(e);
            return Err(e);
        }
        Ok(())
    });
    writer.join().unwrap();
    kept.unwrap()
}

#[test]
fn atomically_returning_a_kept_conflict_does_not_hang() {
    let e = a_kept_conflict();
    let attempts = Arc::new(AtomicU64::new(0));
    let a = attempts.clone();
    let got = outcome(3, move || {
        atomically(|_tx| -> StmResult<()> {
            a.fetch_add(1, Ordering::Relaxed);
            Err(e)
        })
    });
    let n = attempts.load(Ordering::Relaxed);
    assert_ne!(got, "HANG", "atomically looped for ever ({n} attempts)");
    assert!(got.contains("kept from an earlier attempt"), "{got}");
    assert_eq!(n, 1, "refused at the first attempt");
}

#[test]
fn try_atomically_returning_a_kept_conflict_does_not_hang() {
    let e = a_kept_conflict();
    let got = outcome(3, move || {
        let _ = try_atomically(|_tx| -> TxResult<(), ()> { Err(e.into()) });
    });
    assert_ne!(got, "HANG", "try_atomically looped for ever");
    assert!(got.contains("kept from an earlier attempt"), "{got}");
}

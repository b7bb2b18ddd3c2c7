//! The cross-thread case of a variable's death, shared by the core's and the collections'
//! tests (included by path): an attempt uses a transactional object it reached through a handle
//! it lets go of in mid-attempt, while another thread takes the last handle (drops it, takes
//! it apart); then the attempt commits.
#![allow(dead_code)]

use commute_stm::{TVar, atomically, reclaim_retired};
use std::sync::{Arc, Mutex, mpsc};

/// One round of the cross-thread case: an attempt writes a variable it reached through a handle
/// it lets go of in mid-attempt, while another thread drops the last handle; then it commits.
pub(crate) fn write_after_another_thread_dropped_the_last_handle<V: Send + Sync + 'static>(
    make: impl Fn() -> V,
    write: impl Fn(&commute_stm::Transaction, &V),
) {
    write_after_another_thread_took_the_last_handle(make, write, drop);
}

/// As above, with `last` done to the last handle by the other thread.
pub(crate) fn write_after_another_thread_took_the_last_handle<V: Send + Sync + 'static>(
    make: impl Fn() -> V,
    write: impl Fn(&commute_stm::Transaction, &V),
    last: impl Fn(V) + Clone + Send + 'static,
) {
    for _ in 0..200 {
        let shared = Arc::new(Mutex::new(Some(Arc::new(make()))));
        let other = TVar::new(0u64);
        let (go, wait_go) = mpsc::channel::<()>();
        let (done, wait_done) = mpsc::channel::<()>();
        let dropper = {
            let (shared, last) = (shared.clone(), last.clone());
            std::thread::spawn(move || {
                wait_go.recv().unwrap();
                // The last handle: the variable dies (or is taken apart) here, on this thread.
                let handle = shared.lock().unwrap().take().unwrap();
                last(Arc::try_unwrap(handle).ok().expect("the last handle"));
                done.send(()).unwrap();
            })
        };
        let mut first = true;
        atomically(|tx| {
            // A handle taken and let go of inside the attempt; the attempt reads nothing, so
            // it cannot conflict and runs once.
            if let Some(v) = shared.lock().unwrap().clone() {
                write(tx, &v);
            }
            if std::mem::take(&mut first) {
                go.send(()).unwrap();
                wait_done.recv().unwrap();
            }
            other.write(tx, 1);
            Ok(())
        });
        dropper.join().unwrap();
        assert_eq!(other.load(), 1);
    }
    reclaim_retired();
}

//! `TBox::get_mut` while another thread's attempt still holds the box through a handle it has
//! let go of (it read and wrote the box, then dropped its handle, and has not committed yet):
//! that attempt must not commit its write over the change made through `get_mut`. It aborts,
//! runs again, and sees the change: the two updates both count, as in some serial order.

use commute_stm::{TBox, atomically};
use commute_test_support::with_watchdog;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

#[test]
fn an_attempt_that_let_go_of_the_box_does_not_overwrite_a_change_through_get_mut() {
    with_watchdog(20, || {
        let shared = Arc::new(Mutex::new(Arc::new(TBox::new(0u64))));
        let (let_go, has_let_go) = mpsc::channel();
        let (go, wait_go) = mpsc::channel::<()>();
        let adder = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut attempts = 0;
                let seen = atomically(|tx| {
                    attempts += 1;
                    let handle = shared.lock().unwrap().clone();
                    let v = *handle.read(tx)?;
                    handle.write(tx, v + 10);
                    drop(handle);
                    if attempts == 1 {
                        let_go.send(()).unwrap();
                        wait_go.recv().unwrap();
                    }
                    Ok(v)
                });
                (seen, attempts)
            })
        };
        has_let_go.recv().expect("the adder read and wrote the box");
        {
            let mut handle = shared.lock().unwrap();
            let b = Arc::get_mut(&mut handle).expect("the adder let go of its handle");
            *b.get_mut() = 1;
        }
        go.send(()).unwrap();
        let (seen, attempts) = adder.join().unwrap();
        let last = shared.lock().unwrap().load();
        assert_eq!(
            (seen, attempts, last),
            (1, 2, 11),
            "the adder's first attempt must abort and its second see the change (got: read \
             {seen} in {attempts} attempts, box holds {last})"
        );
    });
}

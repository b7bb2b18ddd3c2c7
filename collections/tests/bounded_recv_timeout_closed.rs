//! `TBoundedQueue::recv_until` and `.atomic().recv_timeout(d)` report a closed, empty queue as
//! `RecvTimeoutError::Closed`, not as a timeout: at once when it is closed already, and to a
//! receiver blocked on it when the close comes.
//!
//! The existing tests check `Closed` for the bounded queue only through `Duration::MAX`, which
//! takes the path without a deadline (`recv`), so a `recv_until` that answered `Timeout` for a
//! closed queue went unnoticed; a consumer loop that goes on after a timeout and stops on
//! `Closed` would then spin forever.

mod common;

use commute::{RecvTimeoutError, TBoundedQueue, atomically};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn a_closed_empty_bounded_queue_answers_closed_before_the_deadline() {
    common::with_watchdog(20, || {
        let q: TBoundedQueue<u8> = TBoundedQueue::with_capacity(2);
        q.atomic().push(1);
        q.atomic().close();
        let far = Instant::now() + Duration::from_secs(60);
        // What was sent before the close comes first.
        assert_eq!(atomically(|tx| q.recv_until(tx, far)), Ok(1));
        assert_eq!(
            atomically(|tx| q.recv_until(tx, far)),
            Err(RecvTimeoutError::Closed)
        );
        assert_eq!(
            q.atomic().recv_timeout(Duration::from_secs(60)),
            Err(RecvTimeoutError::Closed)
        );
        // Even with a deadline already past.
        assert_eq!(
            q.atomic().recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Closed)
        );
    });
}

#[test]
fn a_receiver_blocked_in_recv_timeout_learns_of_the_close() {
    common::with_watchdog(20, || {
        let q: Arc<TBoundedQueue<u8>> = Arc::new(TBoundedQueue::with_capacity(2));
        let receiver = {
            let q = q.clone();
            std::thread::spawn(move || {
                // A consumer loop: timeouts go on waiting, a close ends it.
                let mut got = Vec::new();
                let mut timeouts = 0;
                loop {
                    match q.atomic().recv_timeout(Duration::from_secs(30)) {
                        Ok(item) => got.push(item),
                        Err(RecvTimeoutError::Timeout) => {
                            timeouts += 1;
                            assert!(timeouts < 3, "a closed queue reported as timeouts");
                        }
                        Err(RecvTimeoutError::Closed) => return got,
                    }
                }
            })
        };
        q.atomic().push(7);
        q.atomic().push(8);
        q.atomic().close();
        assert_eq!(receiver.join().unwrap(), [7, 8]);
    });
}

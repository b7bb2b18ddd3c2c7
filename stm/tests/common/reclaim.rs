//! Waiting for reclamation, shared by the tests that count what retired values became.

use commute_stm::reclaim_retired;
use std::time::{Duration, Instant};

/// Runs reclamation passes until `done` holds, failing after a generous deadline (other tests'
/// transactions, on other threads of the same binary, may hold old pins for a while).
pub(crate) fn reclaim_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        reclaim_retired();
        std::thread::yield_now();
    }
}

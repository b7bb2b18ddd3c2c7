//! With make-reservation actions only (`-u100`) and never a row without free units, the final
//! state of vacation does not depend on how the clients interleave: nothing is deleted, prices
//! never change, and every customer ends holding exactly the (kind, id) rows its actions picked,
//! whatever the order. So `global-lock` and `commute` with several clients must end in the very
//! state `sequential` ends in (counts and digest), which the end-of-run invariant checks alone
//! cannot see: a manager that loses whole actions leaves a consistent state.
//!
//! Catches a `global-lock` run that copies the tables out under the lock, performs the action on
//! the copy and stores the copy back under a second lock (a lost update of whole actions, which
//! passed every invariant check and the existing vacation tests).

use commute_benches::vacation::client::Params;
use commute_benches::vacation::{Implementation, run_once};
use commute_test_support::with_watchdog;

#[test]
fn reservations_only_end_in_the_sequential_state_with_two_clients() {
    with_watchdog(20, || {
        // Ids and customers are drawn from 1 to 100 (r * q / 100); a row has at least 100
        // units and a customer holds a row at most once, so no row ever runs out: every
        // reservation an action picks succeeds or is already held.
        let p = Params {
            number: 4,
            queries: 100,
            user: 100,
            relations: 100,
            transactions: 20_000,
            clients: 2,
        };
        for seed in [1, 2] {
            let seq = run_once(Implementation::Sequential, &p, seed);
            assert!(seq.check.ok(), "{seq:?}");
            assert!(seq.check.reservations > 0, "{seq:?}");
            for implementation in [Implementation::GlobalLock, Implementation::Commute] {
                let run = run_once(implementation, &p, seed);
                assert!(run.check.ok(), "{run:?}");
                assert!(
                    run.check.same_state(&seq.check),
                    "seed {seed}: {} ended with {} reservations, sequential with {}",
                    implementation.name(),
                    run.check.reservations,
                    seq.check.reservations
                );
            }
        }
    });
}

//! One commit wakes every transaction asleep in `retry` on the variable it changed, not just
//! one of them. Catches a mutant of `wait::wake` that stopped at the first sleeper listed for
//! the variable (`break` after its `notify_all`): the others slept on, and the watchdog fired.

use commute_stm::{TVar, atomically, blocked_transactions};
use commute_test_support::with_watchdog;
use std::sync::Arc;

#[test]
fn one_commit_wakes_every_sleeper_on_the_variable() {
    with_watchdog(20, || {
        const SLEEPERS: usize = 4;
        let gate = Arc::new(TVar::new(false));
        let names: Vec<String> = (0..SLEEPERS).map(|i| format!("gate sleeper {i}")).collect();
        let sleepers: Vec<_> = names
            .iter()
            .map(|name| {
                let gate = gate.clone();
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn(move || {
                        atomically(|tx| if gate.read(tx)? { Ok(()) } else { tx.retry() })
                    })
                    .expect("spawn")
            })
            .collect();
        // Every one asleep (the watchdog bounds the wait).
        while !names.iter().all(|name| {
            blocked_transactions()
                .iter()
                .any(|b| b.thread_name() == Some(name.as_str()))
        }) {
            std::thread::yield_now();
        }
        atomically(|tx| {
            gate.write(tx, true);
            Ok(())
        });
        for sleeper in sleepers {
            sleeper.join().expect("a sleeper");
        }
    });
}

//! The soak's final checks (`final_checks`) pass the structures of a run that did nothing
//! and find a bank whose accounts no longer hold its total (a transfer that lost one of its
//! writes).

use commute::{TVar, atomically};
use commute_benches::soak::Finished;
use commute_benches::soak::WorkerLog;
use commute_benches::soak::monitor::Monitor;
use commute_benches::soak::shared::{BANK_TOTAL, BOXES, OPENING_BALANCE, Shared};
use commute_benches::soak::verify::final_checks;
use commute_test_support::with_watchdog;

/// The final checks' messages on `shared` after two workers that committed nothing.
fn final_messages(shared: &Shared) -> Vec<String> {
    let logs = vec![
        WorkerLog {
            box_writes: vec![0; BOXES],
            ..WorkerLog::default()
        };
        2
    ];
    let monitor = Monitor::new(1);
    final_checks(
        shared,
        &monitor,
        0,
        &Finished {
            logs,
            ..Finished::default()
        },
    );
    assert!(monitor.checks() > 0);
    monitor.messages()
}

#[test]
fn the_final_checks_pass_an_untouched_state_and_find_money_lost_from_the_bank() {
    with_watchdog(20, || {
        assert_eq!(final_messages(&Shared::new(2, 0)), Vec::<String>::new());

        // The debit of a transfer of 10 committed without its credit.
        let shared = Shared::new(2, 0);
        let account: &TVar<i64> = &shared.accounts[0];
        atomically(|tx| {
            account.write(tx, OPENING_BALANCE - 10);
            Ok(())
        });
        let lost = BANK_TOTAL - 10;
        assert_eq!(
            final_messages(&shared),
            [format!(
                "bank: the accounts sum to {lost}, not {BANK_TOTAL}"
            )]
        );
    });
}

//! The soak's final checks (`final_checks`) pass the structures of a run that did nothing
//! and find a bank whose accounts no longer hold its total (a transfer that lost one of its
//! writes).

mod common;

use common::{final_messages, idle_logs};
use commute::{TVar, atomically};
use commute_benches::soak::Finished;
use commute_benches::soak::shared::{BANK_TOTAL, OPENING_BALANCE, Shared};
use commute_test_support::with_watchdog;

/// The end of a run of two workers that committed nothing.
fn untouched() -> Finished {
    Finished {
        logs: idle_logs(2),
        ..Finished::default()
    }
}

#[test]
fn the_final_checks_pass_an_untouched_state_and_find_money_lost_from_the_bank() {
    with_watchdog(20, || {
        assert_eq!(
            final_messages(&Shared::new(2, 0), &untouched()),
            Vec::<String>::new()
        );

        // The debit of a transfer of 10 committed without its credit.
        let shared = Shared::new(2, 0);
        let account: &TVar<i64> = &shared.accounts[0];
        atomically(|tx| {
            account.write(tx, OPENING_BALANCE - 10);
            Ok(())
        });
        let lost = BANK_TOTAL - 10;
        assert_eq!(
            final_messages(&shared, &untouched()),
            [format!(
                "bank: the accounts sum to {lost}, not {BANK_TOTAL}"
            )]
        );
    });
}

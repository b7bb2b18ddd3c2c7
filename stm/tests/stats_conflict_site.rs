//! `stats`' per-site conflict counts name the aborted transaction's own call site: a
//! `ConflictSite`'s `tx_site` is the line of the `atomically` call that aborted, not where the
//! variable was created (`var_created_at`), and its `Display` says so. The existing test
//! compared only the file of `tx_site`, and its variable was created in the same file.
//!
//! Catches `StatsCell::abort` recording the variable's creation site as the transaction's
//! (`tx_site: origin.site`).

use commute_stm::stats::AbortCause;
use commute_stm::{TVar, atomically, stats};
use commute_test_support::with_watchdog;

#[path = "common/conflict_once.rs"]
mod conflict_once;
use conflict_once::conflict_once;
use std::sync::Arc;

#[test]
fn a_conflict_site_names_the_line_of_the_aborted_atomically() {
    with_watchdog(20, || {
        let v = Arc::new(TVar::new(0u64).with_label("site-v"));
        let before = stats::thread();
        let v2 = v.clone();
        let tx_line = line!() + 1;
        conflict_once(
            |tx| v.read(tx),
            move || atomically(|tx| v2.modify(tx, |x| x + 1)),
        );
        let delta = stats::thread() - before;
        assert_eq!(delta.aborts_read_validation, 1, "{delta}");
        let sites = delta.top_conflicts();
        assert_eq!(sites.len(), 1, "{delta}");
        let (site, n) = sites[0];
        assert_eq!(n, 1);
        assert_eq!(site.cause, AbortCause::ReadValidation);
        assert_eq!(site.var_label, Some("site-v"));
        assert_eq!(
            (site.var_created_at.file(), site.var_created_at.line()),
            (file!(), v.created_at().line())
        );
        assert_eq!(
            (site.tx_site.file(), site.tx_site.line()),
            (file!(), tx_line)
        );
        assert!(
            site.to_string()
                .ends_with(&format!("in transaction at {}:{tx_line}:9", file!())),
            "{site}"
        );
    });
}

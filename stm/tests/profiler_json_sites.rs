//! The conflict profiler's JSON puts each site under its own name: `"aborted_at"` is the call
//! site of the transaction that aborted and `"written_by"` that of the transaction whose commit
//! made it abort, as `ConflictKey` and the text report have them. The existing profiler test
//! checked only the JSON's label and kind.
//!
//! Catches `ConflictReport::to_json` writing the two sites the other way round.

use commute_stm::{TVar, atomically, conflicts};
use commute_test_support::with_watchdog;
use std::sync::Arc;

#[test]
fn the_json_names_the_aborted_and_the_writing_sites_apart() {
    with_watchdog(20, || {
        conflicts::enable();
        conflicts::reset();
        let v = Arc::new(TVar::new(0u64).with_label("json-sites"));
        let out = TVar::new(0u64);
        let mut first = true;
        let mut writer_line = 0;
        let aborted_line = line!() + 1;
        atomically(|tx| {
            let seen = v.read(tx)?;
            if std::mem::take(&mut first) {
                let v2 = v.clone();
                writer_line = std::thread::spawn(move || {
                    let line = line!() + 1;
                    atomically(|tx| v2.modify(tx, |x| x + 1));
                    line
                })
                .join()
                .unwrap();
            }
            out.write(tx, seen);
            Ok(())
        });
        let report = conflicts::report();
        assert_eq!(report.entries().len(), 1, "{report}");
        let (key, cost) = report.entries()[0];
        assert_eq!(cost.aborts, 1);
        assert_eq!(key.aborted_at.line(), aborted_line, "{report}");
        assert_eq!(
            key.written_by.map(|w| w.line()),
            Some(writer_line),
            "{report}"
        );
        let json = report.to_json();
        let aborted = format!("\"aborted_at\":\"{}:{aborted_line}:", file!());
        let written = format!("\"written_by\":\"{}:{writer_line}:", file!());
        assert!(json.contains(&aborted), "{json}");
        assert!(json.contains(&written), "{json}");
        assert!(json.contains("\"label\":\"json-sites\""), "{json}");
    });
}

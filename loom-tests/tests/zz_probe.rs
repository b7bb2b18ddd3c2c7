#![cfg(loom)]
use commute_stm::{TVar, atomically};
#[test]
fn probe_main_thread_tls() {
    loom::model(|| {
        let v = TVar::new(1u64);
        atomically(|tx| v.modify(tx, |x| x + 1));
        assert_eq!(v.load(), 2);
    });
}

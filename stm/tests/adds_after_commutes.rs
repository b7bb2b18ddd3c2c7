//! Adds that follow another commutative operation of the same variable queue up after it and
//! fold into one add while nothing else comes between them: every add must count, whether the
//! commit computes the value (unread) or a later read of the variable does, for 64-bit integers
//! (inline adds) and for other widths (adds as operations). Checked against plain integers.

use commute_stm::{TVar, atomically};

#[test]
fn consecutive_adds_after_a_commute_all_count_at_commit() {
    let v = TVar::new(1i64);
    atomically(|tx| {
        v.commute(tx, |x| x * 2); // 2
        v.add(tx, 3); // 5
        v.add(tx, 4); // 9
        v.add(tx, 5); // 14
        Ok(())
    });
    assert_eq!(v.load(), 14);

    let w = TVar::new(1u32);
    atomically(|tx| {
        w.commute(tx, |x| x * 3); // 3
        w.add(tx, 10); // 13
        w.add(tx, 20); // 33
        w.sub(tx, 1); // 32
        Ok(())
    });
    assert_eq!(w.load(), 32);
}

#[test]
fn consecutive_adds_after_a_commute_all_count_in_a_read() {
    let v = TVar::new(1i64);
    let read = atomically(|tx| {
        v.commute(tx, |x| x + 10); // 11
        v.add(tx, 2); // 13
        v.add(tx, 7); // 20
        let read = v.read(tx)?;
        v.add(tx, 1); // 21
        Ok(read)
    });
    assert_eq!((read, v.load()), (20, 21));

    let w = TVar::new(5u16);
    let read = atomically(|tx| {
        w.commute(tx, |x| x * 2); // 10
        w.add(tx, 1); // 11
        w.add(tx, 1); // 12
        w.read(tx)
    });
    assert_eq!((read, w.load()), (12, 12));
}

//! A transaction-local value set before the attempt's first shared write: the write set's first
//! entry is then a local (never committed), and the shared writes after it must still commit.
//! (A commit that judged "read-only" from the first entry alone would drop them silently.)

use commute_stm::{TBox, TVar, atomically, read_only};

#[test]
fn writes_after_a_local_key_set_first_are_committed() {
    let key = TVar::new(0u64);
    let x = TVar::new(1u64);
    let y = TVar::new(10u64);
    let b = TBox::new(String::from("old"));
    for round in 1..=50u64 {
        atomically(|tx| {
            key.set_local(tx, round);
            let v = x.read(tx)?;
            x.write(tx, v + 1);
            y.add(tx, 2);
            b.write(tx, format!("round {round}"));
            assert_eq!(key.local(tx), Some(round));
            Ok(())
        });
        assert_eq!(
            x.load(),
            1 + round,
            "round {round}: a write after the local is lost"
        );
        assert_eq!(
            y.load(),
            10 + 2 * round,
            "round {round}: an add after the local is lost"
        );
        assert_eq!(b.load(), format!("round {round}"));
        // Never committed.
        assert_eq!(key.load(), 0);
    }
    // A snapshot sees the committed state too.
    let seen = read_only(|tx| Ok((x.read(tx)?, y.read(tx)?)));
    assert_eq!(seen, (51, 110));
}

#[test]
fn a_commute_after_two_local_keys_is_committed() {
    let keys = [TVar::new(0u32), TVar::new(0u32)];
    let n = TVar::new(0i64);
    for i in 0..100 {
        atomically(|tx| {
            keys[0].set_local(tx, 1);
            keys[1].set_local(tx, 2);
            n.commute(tx, |v: i64| v.wrapping_mul(2).wrapping_add(1));
            if i % 2 == 0 {
                n.add(tx, -1);
            }
            Ok(())
        });
    }
    // Sequential model.
    let mut model = 0i64;
    for i in 0..100 {
        model = model.wrapping_mul(2).wrapping_add(1);
        if i % 2 == 0 {
            model = model.wrapping_sub(1);
        }
    }
    assert_eq!(n.load(), model);
}

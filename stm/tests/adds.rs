//! Commutative adds of every integer width, mixed in one transaction with reads, writes and
//! other commutes of the same variable, equal what the same steps give on plain integers, in
//! optimistic and in irrevocable attempts (where an add locks its variable at once).

#[path = "common/irrevocable.rs"]
mod irrevocable;

use std::sync::Arc;

use commute_stm::{StmResult, TVar, Transaction, atomically};

/// Runs `f` in a transaction, made irrevocable first if `irrevocable`.
fn run<T>(irrevocable: bool, f: impl Fn(&Transaction) -> StmResult<T>) -> T {
    let y = Arc::new(TVar::new(0u64));
    atomically(|tx| {
        if irrevocable && !tx.is_irrevocable() {
            irrevocable::conflict_unless_irrevocable(tx, &y)?;
        }
        f(tx)
    })
}

#[test]
fn adds_mix_with_commutes_reads_and_writes() {
    for irrevocable in [false, true] {
        adds_mix(irrevocable);
    }
}

fn adds_mix(irrevocable: bool) {
    let v = TVar::new(10i64);
    let seen = run(irrevocable, |tx| {
        v.add(tx, -3); // 7
        v.commute(tx, |x| x * 2); // 14
        v.add(tx, 1); // 15
        let read = v.read(tx)?; // 15, turns the entry into a write
        v.add(tx, 5); // 20
        Ok(read)
    });
    assert_eq!((seen, v.load()), (15, 20));

    run(irrevocable, |tx| {
        v.write(tx, -1);
        v.add(tx, -1); // -2
        Ok(())
    });
    assert_eq!(v.load(), -2);

    // An add, then a commute, unread: the commit computes both on the committed value.
    run(irrevocable, |tx| {
        v.add(tx, 3); // 1
        v.commute(tx, |x| x * 10); // 10
        Ok(())
    });
    assert_eq!(v.load(), 10);
}

#[test]
fn adds_wrap_at_each_width() {
    let small = TVar::new(u32::MAX);
    let big = TVar::new(u64::MAX);
    let signed = TVar::new(i64::MIN);
    atomically(|tx| {
        small.add(tx, 2);
        big.add(tx, 2);
        signed.add(tx, -1);
        Ok(())
    });
    assert_eq!(small.load(), 1);
    assert_eq!(big.load(), 1);
    assert_eq!(signed.load(), i64::MAX);
}

#[test]
fn an_add_rolled_back_by_or_else_is_gone() {
    for irrevocable in [false, true] {
        add_rolled_back_by_or_else(irrevocable);
    }
}

fn add_rolled_back_by_or_else(irrevocable: bool) {
    let v = TVar::new(0u64);
    let gate = TVar::new(false);
    run(irrevocable, |tx| {
        v.add(tx, 1);
        tx.or_else(
            |tx| {
                v.add(tx, 100);
                if gate.read(tx)? { Ok(()) } else { tx.retry() }
            },
            |tx| {
                v.add(tx, 10);
                Ok(())
            },
        )
    });
    assert_eq!(v.load(), 11);
}

//! A `TVar` of every integer type gives back, bit for bit, what was written: the extremes,
//! zero, one and minus one, through `new`/`load`, a transaction's `write`/`read` and a
//! commutative `add`. Every width and sign is encoded in one 64-bit word its own way (zero- or
//! sign-extended), and a width whose encoding lost its high bits (or its sign) would read back
//! another number.

use commute_stm::{Integer, TVar, Word, atomically};

/// Writes each value into a fresh variable and a shared one, and reads it back every way.
fn round_trips<T: Integer>(values: &[T]) {
    let shared = TVar::new(T::ZERO);
    for &value in values {
        let fresh = TVar::new(value);
        assert_eq!(fresh.load(), value, "new then load");
        assert_eq!(atomically(|tx| fresh.read(tx)), value, "new then read");
        let read_back = atomically(|tx| {
            shared.write(tx, value);
            shared.read(tx)
        });
        assert_eq!(read_back, value, "write then read in the same transaction");
        assert_eq!(shared.load(), value, "committed write then load");
        assert_eq!(
            atomically(|tx| shared.read(tx)),
            value,
            "committed write then read"
        );
        assert_eq!(fresh.into_inner(), value, "into_inner");
    }
}

/// From `start`, adds `delta` in one transaction: the result must be the wrapping sum.
fn adds_to<T: Integer>(start: T, delta: T) {
    let v = TVar::new(start);
    atomically(|tx| {
        v.add(tx, delta);
        Ok(())
    });
    assert_eq!(v.load(), start.wrapping_add(delta), "{start:?} + {delta:?}");
    atomically(|tx| {
        v.sub(tx, delta);
        Ok(())
    });
    assert_eq!(v.load(), start, "{start:?} + {delta:?} - {delta:?}");
}

macro_rules! check_all {
    ($($t:ty),*) => {$(
        round_trips::<$t>(&[<$t>::MIN, <$t>::MAX, 0, 1, <$t>::MAX / 2, <$t>::MIN / 2 + 1]);
        adds_to::<$t>(<$t>::MAX, 1);
        adds_to::<$t>(<$t>::MIN, <$t>::MAX);
        adds_to::<$t>(<$t>::MAX / 3, <$t>::MAX / 3);
        // The bits of the word: the extremes never share them.
        assert_ne!(<$t>::MIN.into_bits(), <$t>::MAX.into_bits());
    )*};
}

#[test]
fn unsigned_integers_of_every_width_read_back_bit_for_bit() {
    check_all!(u8, u16, u32, u64, usize);
}

#[test]
fn signed_integers_of_every_width_read_back_bit_for_bit() {
    check_all!(i8, i16, i32, i64, isize);
    // Minus one at each signed width, the value whose bits are all ones.
    round_trips(&[-1i8]);
    round_trips(&[-1i16]);
    round_trips(&[-1i32]);
    round_trips(&[-1i64]);
    round_trips(&[-1isize]);
    adds_to(-1isize, isize::MIN);
    adds_to(-1i64, i64::MIN);
}

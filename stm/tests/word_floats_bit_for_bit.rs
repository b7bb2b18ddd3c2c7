//! A `TVar<f32>` and a `TVar<f64>` give back the exact bits written: the sign of negative
//! numbers and of negative zero, NaN payloads and signs, subnormals and infinities, through
//! `new`/`load`, a transaction's `read`, `write`, `replace` and `modify`. The test compares
//! bits, which `==` would not (`-0.0 == 0.0`, `NaN != NaN`).

use commute_stm::{TVar, Word, atomically};
use std::fmt::Debug;

/// A float type, with its bits.
trait Float: Word + Copy + Debug {
    fn bits(self) -> u64;
    fn of_bits(bits: u64) -> Self;
}

impl Float for f32 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn of_bits(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
}

impl Float for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
    fn of_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}

/// `f32` values whose bits a lossy or canonicalising encoding would change.
fn awkward_f32() -> Vec<f32> {
    vec![
        -1.0,
        1.0,
        -0.0,
        0.0,
        -1.0e-40, // subnormal
        f32::from_bits(1),
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7FC0_BEEF), // a quiet NaN with a payload
        f32::from_bits(0xFF80_0001), // a negative signalling NaN
    ]
}

/// `f64` values whose bits an arithmetic or canonicalising encoding would change.
fn awkward_f64() -> Vec<f64> {
    vec![
        -0.0,
        0.0,
        -1.5,
        f64::MIN_POSITIVE / 4.0, // subnormal
        -f64::MIN_POSITIVE / 4.0,
        f64::from_bits(1), // the smallest subnormal
        f64::MAX,
        f64::MIN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7FF8_0000_0000_BEEF), // a quiet NaN with a payload
        f64::from_bits(0xFFF0_0000_0000_0001), // a negative signalling NaN
    ]
}

/// Each of `values` through every way in and out of a variable, compared bit for bit; `start`
/// is the shared variable's first value.
fn read_back_bit_for_bit<F: Float>(start: F, values: Vec<F>) {
    let shared = TVar::new(start);
    let mut previous = start.bits();
    for value in values {
        let bits = value.bits();
        let fresh = TVar::new(value);
        assert_eq!(fresh.load().bits(), bits, "new then load of {value:?}");
        assert_eq!(
            atomically(|tx| fresh.read(tx)).bits(),
            bits,
            "new then read of {value:?}"
        );
        let (old, in_tx) = atomically(|tx| {
            let old = shared.replace(tx, value)?;
            Ok((old, shared.read(tx)?))
        });
        assert_eq!(old.bits(), previous, "replace gave back the old value");
        assert_eq!(in_tx.bits(), bits, "replace then read of {value:?}");
        assert_eq!(shared.load().bits(), bits, "committed {value:?}");
        let in_tx = atomically(|tx| {
            shared.write(tx, value);
            shared.read(tx)
        });
        assert_eq!(in_tx.bits(), bits, "write then read of {value:?}");
        // `modify` hands the closure the stored value and stores what it returns.
        let seen = atomically(|tx| {
            let mut seen = 0;
            shared.modify(tx, |old| {
                seen = old.bits();
                F::of_bits(old.bits() ^ 1)
            })?;
            Ok(seen)
        });
        assert_eq!(seen, bits, "modify saw {value:?}");
        assert_eq!(shared.load().bits(), bits ^ 1, "modify of {value:?}");
        previous = bits ^ 1;
    }
}

#[test]
fn f32_values_read_back_bit_for_bit() {
    read_back_bit_for_bit(2.0f32, awkward_f32());
}

#[test]
fn f64_values_read_back_bit_for_bit() {
    read_back_bit_for_bit(1.0f64, awkward_f64());
}

//! A `TVar<f32>` gives back the exact bits written: the sign of negative numbers and of
//! negative zero, NaN payloads, subnormals and infinities, through `new`/`load`, a
//! transaction's `write`/`read` and `replace`. The test compares `to_bits`, which `==` would
//! not (`-0.0 == 0.0`, `NaN != NaN`).

use commute_stm::{TVar, atomically};

/// Values whose bits a lossy or canonicalising encoding would change.
fn awkward() -> Vec<f32> {
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

#[test]
fn f32_values_read_back_bit_for_bit() {
    let shared = TVar::new(2.0f32);
    let mut previous = 2.0f32.to_bits();
    for value in awkward() {
        let bits = value.to_bits();
        let fresh = TVar::new(value);
        assert_eq!(fresh.load().to_bits(), bits, "new then load of {value:?}");
        assert_eq!(
            atomically(|tx| fresh.read(tx)).to_bits(),
            bits,
            "new then read of {value:?}"
        );
        let (old, in_tx) = atomically(|tx| {
            let old = shared.replace(tx, value)?;
            Ok((old, shared.read(tx)?))
        });
        assert_eq!(old.to_bits(), previous, "replace gave back the old value");
        assert_eq!(in_tx.to_bits(), bits, "replace then read of {value:?}");
        assert_eq!(shared.load().to_bits(), bits, "committed {value:?}");
        previous = bits;
    }
}

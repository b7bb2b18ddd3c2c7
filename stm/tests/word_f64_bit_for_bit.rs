//! A `TVar<f64>` gives back the exact bits written: negative zero stays negative, NaN payloads
//! and signs survive, subnormals and infinities too, through `new`/`load`, a transaction's
//! `write`/`read` and `modify`. Comparing with `==` would miss every one of these (`-0.0 ==
//! 0.0`, `NaN != NaN`): the test compares `to_bits`.

use commute_stm::{TVar, atomically};

/// Values whose bits an arithmetic or canonicalising encoding would change.
fn awkward() -> Vec<f64> {
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

#[test]
fn f64_values_read_back_bit_for_bit() {
    let shared = TVar::new(1.0f64);
    for value in awkward() {
        let bits = value.to_bits();
        let fresh = TVar::new(value);
        assert_eq!(fresh.load().to_bits(), bits, "new then load of {value:?}");
        assert_eq!(
            atomically(|tx| fresh.read(tx)).to_bits(),
            bits,
            "new then read of {value:?}"
        );
        let in_tx = atomically(|tx| {
            shared.write(tx, value);
            shared.read(tx)
        });
        assert_eq!(in_tx.to_bits(), bits, "write then read of {value:?}");
        assert_eq!(shared.load().to_bits(), bits, "committed {value:?}");
        // `modify` hands the closure the stored value and stores what it returns.
        let seen = atomically(|tx| {
            let mut seen = 0;
            shared.modify(tx, |old| {
                seen = old.to_bits();
                f64::from_bits(old.to_bits() ^ 1)
            })?;
            Ok(seen)
        });
        assert_eq!(seen, bits, "modify saw {value:?}");
        assert_eq!(shared.load().to_bits(), bits ^ 1, "modify of {value:?}");
    }
}

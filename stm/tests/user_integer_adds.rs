//! `TVar::add` on a user's `Integer` type only ever passes `Word::from_bits` bits that
//! `into_bits` produced, as the `unsafe trait Word` promises its implementors, whatever the
//! (safe) `Integer` impl claims.
//!
//! Before the fix, `TVar::add` trusted `Integer`'s doc-hidden, overridable `ADDS_AS_U64`: a safe
//! impl that set it made the add sum the raw 64-bit patterns of `into_bits` instead of calling
//! `wrapping_add`, and the next load handed `from_bits` that sum (2 for a type whose bits are 0
//! or 1). A `Word` whose `from_bits` relies on the promise then broke its own invariant: undefined
//! behaviour reachable from safe code. Both tests failed (with the impls below setting that
//! constant). The crate now recognises its own 64-bit integers by type, and the constant is
//! gone: these impls check that a user's `Integer` adds through `wrapping_add`.

use std::sync::atomic::{AtomicU64, Ordering};

use commute_stm::{Integer, TVar, Word, atomically};

/// A two-valued type: `into_bits` gives 0 or 1. Adding is xor (wrapping over Z/2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Parity(bool);

/// The last bits above 1 that `Parity::from_bits` was given (0: none).
static FOREIGN_BITS: AtomicU64 = AtomicU64::new(0);

// SAFETY: 0 and 1 round-trip; `from_bits` records any other bits (the crate promises never to
// pass them) and keeps only the low bit.
unsafe impl Word for Parity {
    fn into_bits(self) -> u64 {
        self.0 as u64
    }
    fn from_bits(bits: u64) -> Self {
        if bits > 1 {
            FOREIGN_BITS.store(bits, Ordering::SeqCst);
        }
        Parity(bits & 1 == 1)
    }
}

// No `unsafe` here: `Integer` is a safe trait.
impl Integer for Parity {
    fn wrapping_add(self, rhs: Self) -> Self {
        Parity(self.0 ^ rhs.0)
    }
    fn wrapping_sub(self, rhs: Self) -> Self {
        Parity(self.0 ^ rhs.0)
    }
    const ONE: Self = Parity(true);
    const ZERO: Self = Parity(false);
}

#[test]
fn from_bits_sees_only_bits_into_bits_produced() {
    let v = TVar::new(Parity(true));
    atomically(|tx| {
        v.add(tx, Parity(true));
        Ok(())
    });
    let got = v.load();
    assert_eq!(
        FOREIGN_BITS.load(Ordering::SeqCst),
        0,
        "Word::from_bits was given bits that into_bits never produced (got {got:?})"
    );
    assert_eq!(got, Parity(false));
}

/// An index into a two-entry table. Invariant, kept by every constructor (`from_bits`
/// included, by `Word`'s promise): the index is 0 or 1, so a safe accessor such as
/// `TABLE[usize::from(pick.0)]` could skip its bounds check with `get_unchecked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pick(u8);

const TABLE: [u64; 2] = [10, 20];

// SAFETY: 0 and 1 round-trip, and `from_bits` is only given what `into_bits` produced.
unsafe impl Word for Pick {
    fn into_bits(self) -> u64 {
        self.0 as u64
    }
    fn from_bits(bits: u64) -> Self {
        Pick(bits as u8)
    }
}

impl Integer for Pick {
    fn wrapping_add(self, rhs: Self) -> Self {
        Pick(self.0 ^ rhs.0)
    }
    fn wrapping_sub(self, rhs: Self) -> Self {
        Pick(self.0 ^ rhs.0)
    }
    const ONE: Self = Pick(1);
    const ZERO: Self = Pick(0);
}

#[test]
fn an_add_keeps_the_invariant_of_a_word() {
    let v = TVar::new(Pick(1));
    atomically(|tx| {
        v.add(tx, Pick::ONE);
        Ok(())
    });
    let p = v.load();
    // Checked before any use: an unchecked accessor would read past the table (before the fix,
    // the reviewer's memcheck run reported "Invalid read of size 8").
    assert!(p.0 < 2, "a Pick with index {} came out of TVar::add", p.0);
    assert_eq!(TABLE[usize::from(p.0)], 10);
}

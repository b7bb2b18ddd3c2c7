//! Values that fit in one machine word and can live inline in a [`TVar`](crate::TVar).

use core::ptr::NonNull;

/// A value that a [`TVar`](crate::TVar) stores inline, as the bits of one 64-bit word.
///
/// Implemented for the integer types (up to 64 bits), `bool`, `char`, `f32`, `f64`, `()`, the
/// pointer types `*const T`, `*mut T`, `NonNull<T>` and `Option<NonNull<T>>`, and `Option` of
/// the types up to 32 bits (`Option<u32>`, `Option<i16>`, `Option<bool>`, `Option<char>`...).
/// No allocation, no `Arc`: a read is two loads of the lock word and one of the value.
///
/// # Other types
///
/// A type that is not `Word` does not compile in a `TVar` (`TVar<String>`: "`String` is not a
/// `Word`: a `TVar` holds one machine word", with a note pointing to `TBox`). Store it in a
/// [`TBox<T>`](crate::TBox), which holds any `T: Send + Sync` on the heap: larger values
/// (`u128`, `String`, `Vec<T>`, structs of several fields) go there.
///
/// A small `Copy` type of your own that packs into 64 bits (a fieldless enum, a pair of
/// `u32`s, a newtype) can stay inline by implementing `Word` for it; the trait is `unsafe`
/// because [`from_bits`](Word::from_bits) is trusted to rebuild a valid value from what
/// [`into_bits`](Word::into_bits) produced:
///
/// ```
/// use commute_stm::{atomically, TVar, Word};
///
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// enum Light {
///     Red,
///     Amber,
///     Green,
/// }
///
/// // SAFETY: every value maps to 0..=2 and back; `Light` is plain data.
/// unsafe impl Word for Light {
///     fn into_bits(self) -> u64 {
///         self as u64
///     }
///     fn from_bits(bits: u64) -> Self {
///         match bits {
///             0 => Light::Red,
///             1 => Light::Amber,
///             _ => Light::Green,
///         }
///     }
/// }
///
/// let light = TVar::new(Light::Red);
/// atomically(|tx| light.modify(tx, |_| Light::Green));
/// assert_eq!(light.load(), Light::Green);
/// ```
///
/// (Foreign types such as `Option<u64>` or `(u32, u32)` cannot be given an impl outside this
/// crate: wrap them in a newtype of your own.)
///
/// # Examples
///
/// ```
/// use commute_stm::Word;
///
/// assert_eq!(u64::from_bits('x'.into_bits()), 'x' as u64);
/// assert_eq!(f64::from_bits(1.5f64.into_bits()), 1.5);
/// assert_eq!(Option::<u32>::from_bits(None::<u32>.into_bits()), None);
/// ```
///
/// A type that is not `Word` is refused at compile time, with a message naming `TBox`:
///
/// ```compile_fail
/// let name = commute_stm::TVar::new(String::from("ada")); // use TBox<String>
/// ```
///
/// # Safety
///
/// Implementors promise that:
/// - `from_bits(x.into_bits())` gives back a value equal to `x`, and `from_bits` is only ever
///   called by this crate on bits that `into_bits` of the same type produced;
/// - values of the type may be copied to and used from any thread (the type is, in effect,
///   `Send + Sync`; raw pointers qualify because dereferencing them is unsafe anyway).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Word`: a `TVar` holds one machine word",
    label = "`{Self}` does not fit in one word",
    note = "use `TBox<{Self}>` for heap values and values larger than a word (`TBox::new`, `TBox::read`, `TBox::write`)",
    note = "a small `Copy` type of your own that packs into 64 bits can implement `Word` (see its docs)"
)]
pub unsafe trait Word: Copy + 'static {
    /// The value as the bits of a `u64`.
    fn into_bits(self) -> u64;
    /// The value back from the bits that [`into_bits`](Word::into_bits) produced.
    fn from_bits(bits: u64) -> Self;
}

/// A [`Word`] that owns heap memory, such as a (possibly tagged) pointer to a node a
/// collection allocated: [`TVar::write_owned`](crate::TVar::write_owned) frees replaced values
/// once no transaction can read them, as [`TBox`](crate::TBox) does for its boxes.
///
/// Low-level: for collections that lay out their own nodes (commute's `TMap` does).
///
/// # Safety
///
/// Besides [`Word`]'s promises: [`free`](OwnedWord::free) must release exactly what the value
/// owns, and must accept every value that is ever written with `write_owned` (including any
/// "empty" value, for which it does nothing).
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, OwnedWord, TVar, Word};
///
/// /// A boxed `u64`, or null.
/// #[derive(Clone, Copy)]
/// struct Owned(*mut u64);
///
/// // SAFETY: a thin pointer round-trips through `u64`.
/// unsafe impl Word for Owned {
///     fn into_bits(self) -> u64 {
///         self.0 as usize as u64
///     }
///     fn from_bits(bits: u64) -> Self {
///         Owned(bits as usize as *mut u64)
///     }
/// }
///
/// // SAFETY: frees the box, if any.
/// unsafe impl OwnedWord for Owned {
///     unsafe fn free(self) {
///         if !self.0.is_null() {
///             // SAFETY: the pointer came from `Box::into_raw` and is freed once.
///             drop(unsafe { Box::from_raw(self.0) });
///         }
///     }
/// }
///
/// let v = TVar::new(Owned(core::ptr::null_mut()));
/// atomically(|tx| {
///     // SAFETY: a fresh box that nothing else owns.
///     unsafe { v.write_owned(tx, Owned(Box::into_raw(Box::new(7)))) };
///     Ok(())
/// });
/// // SAFETY: no transaction runs; the value is read once and freed once.
/// unsafe {
///     assert_eq!(*v.load().0, 7);
///     v.into_inner().free();
/// }
/// ```
pub unsafe trait OwnedWord: Word {
    /// Releases what the value owns.
    ///
    /// # Safety
    ///
    /// Called at most once per owned value, when nothing can reach it any more.
    unsafe fn free(self);
}

/// An integer [`Word`] that supports commutative, wrapping addition
/// ([`TVar::add`](crate::TVar::add)).
///
/// # Examples
///
/// ```
/// use commute_stm::{atomically, TVar};
///
/// let hits = TVar::new(0u32);
/// atomically(|tx| {
///     hits.add(tx, 5);
///     Ok(())
/// });
/// assert_eq!(hits.load(), 5);
/// ```
pub trait Integer: Word + Eq + core::fmt::Debug {
    /// `self + rhs`, wrapping around at the type's bounds.
    fn wrapping_add(self, rhs: Self) -> Self;
    /// `self - rhs`, wrapping around at the type's bounds.
    fn wrapping_sub(self, rhs: Self) -> Self;
    /// The number one.
    const ONE: Self;
    /// The number zero.
    const ZERO: Self;
}

/// True if `T` is one of the crate's 64-bit integers, whose wrapping add is the wrapping add of
/// their bits, so that [`TVar::add`](crate::TVar::add) can add the bits inline. Recognised by
/// type, never by what an implementation says: `Integer` is a safe trait, and adding another
/// type's bits could hand [`Word::from_bits`] bits that [`Word::into_bits`] never produced,
/// which `Word`'s contract promises never happens. Folds to a constant once `T` is known.
#[inline(always)]
pub(crate) fn adds_as_u64<T: Integer>() -> bool {
    use core::any::TypeId;
    let t = TypeId::of::<T>();
    size_of::<T>() == 8
        && (t == TypeId::of::<u64>()
            || t == TypeId::of::<i64>()
            || t == TypeId::of::<usize>()
            || t == TypeId::of::<isize>())
}

macro_rules! integer_words {
    ($($t:ty => $u:ty),* $(,)?) => {$(
        // SAFETY: the cast round-trips every value of the type through its zero- or
        // sign-extended 64-bit pattern, and integers are plain data.
        unsafe impl Word for $t {
            #[inline]
            fn into_bits(self) -> u64 {
                self as $u as u64
            }
            #[inline]
            fn from_bits(bits: u64) -> Self {
                bits as $u as $t
            }
        }
        impl Integer for $t {
            #[inline]
            fn wrapping_add(self, rhs: Self) -> Self {
                <$t>::wrapping_add(self, rhs)
            }
            #[inline]
            fn wrapping_sub(self, rhs: Self) -> Self {
                <$t>::wrapping_sub(self, rhs)
            }
            const ONE: Self = 1;
            const ZERO: Self = 0;
        }
    )*};
}

integer_words!(
    u8 => u8, u16 => u16, u32 => u32, u64 => u64, usize => usize,
    i8 => u8, i16 => u16, i32 => u32, i64 => u64, isize => usize,
);

// SAFETY: 0 and 1 round-trip; `from_bits` only sees what `into_bits` produced.
unsafe impl Word for bool {
    #[inline]
    fn into_bits(self) -> u64 {
        self as u64
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        bits != 0
    }
}

// SAFETY: a `char` is a 32-bit scalar value; `from_bits` only sees valid scalar values, and
// falls back to U+FFFD rather than misbehaving if that promise were ever broken.
unsafe impl Word for char {
    #[inline]
    fn into_bits(self) -> u64 {
        self as u64
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        char::from_u32(bits as u32).unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

// SAFETY: IEEE bit patterns round-trip exactly (NaN payloads included).
unsafe impl Word for f32 {
    #[inline]
    fn into_bits(self) -> u64 {
        self.to_bits() as u64
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
}

// SAFETY: IEEE bit patterns round-trip exactly (NaN payloads included).
unsafe impl Word for f64 {
    #[inline]
    fn into_bits(self) -> u64 {
        self.to_bits()
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}

// SAFETY: the unit type has one value.
unsafe impl Word for () {
    #[inline]
    fn into_bits(self) -> u64 {
        0
    }
    #[inline]
    fn from_bits(_: u64) -> Self {}
}

// SAFETY: a thin pointer's address round-trips through u64 on every platform Rust supports
// (at most 64-bit pointers); dereferencing the pointer stays the user's unsafe business.
unsafe impl<T: 'static> Word for *const T {
    #[inline]
    fn into_bits(self) -> u64 {
        self as usize as u64
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        bits as usize as *const T
    }
}

// SAFETY: as for `*const T`.
unsafe impl<T: 'static> Word for *mut T {
    #[inline]
    fn into_bits(self) -> u64 {
        self as usize as u64
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        bits as usize as *mut T
    }
}

// SAFETY: as for `*const T`; `from_bits` only sees non-zero addresses produced by `into_bits`.
unsafe impl<T: 'static> Word for NonNull<T> {
    #[inline]
    fn into_bits(self) -> u64 {
        self.as_ptr() as usize as u64
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        NonNull::new(bits as usize as *mut T).expect("NonNull TVar held a null pointer")
    }
}

// SAFETY: as for `*const T`, with `None` as address zero.
unsafe impl<T: 'static> Word for Option<NonNull<T>> {
    #[inline]
    fn into_bits(self) -> u64 {
        self.map_or(0, |p| p.as_ptr() as usize as u64)
    }
    #[inline]
    fn from_bits(bits: u64) -> Self {
        NonNull::new(bits as usize as *mut T)
    }
}

macro_rules! option_words {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: `Some(x)` is `x`'s bits (at most 32 of them), `None` is bit 32 alone, so the
        // two never meet; `from_bits` only sees what `into_bits` produced.
        unsafe impl Word for Option<$t> {
            #[inline]
            fn into_bits(self) -> u64 {
                match self {
                    Some(x) => x.into_bits() & u64::from(u32::MAX),
                    None => 1 << 32,
                }
            }
            #[inline]
            fn from_bits(bits: u64) -> Self {
                if bits >> 32 != 0 {
                    None
                } else {
                    Some(<$t>::from_bits(bits))
                }
            }
        }
    )*};
}

option_words!(u8, u16, u32, i8, i16, i32, bool, char);

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{Word, adds_as_u64};

    fn round_trips<T: Word + PartialEq + core::fmt::Debug>(values: &[T]) {
        for &v in values {
            assert_eq!(T::from_bits(v.into_bits()), v);
        }
    }

    #[test]
    fn options_of_small_words_round_trip() {
        round_trips(&[None, Some(0u8), Some(u8::MAX)]);
        round_trips(&[None, Some(0u16), Some(u16::MAX)]);
        round_trips(&[None, Some(0u32), Some(u32::MAX)]);
        round_trips(&[None, Some(0i8), Some(-1i8), Some(i8::MIN)]);
        round_trips(&[None, Some(0i16), Some(-1i16), Some(i16::MIN)]);
        round_trips(&[
            None,
            Some(0i32),
            Some(-1i32),
            Some(i32::MIN),
            Some(i32::MAX),
        ]);
        round_trips(&[None, Some(false), Some(true)]);
        round_trips(&[None, Some('\0'), Some('é'), Some(char::MAX)]);
    }

    #[test]
    fn only_the_64_bit_integers_add_their_bits() {
        assert!(adds_as_u64::<u64>() && adds_as_u64::<i64>());
        assert_eq!(adds_as_u64::<usize>(), size_of::<usize>() == 8);
        assert_eq!(adds_as_u64::<isize>(), size_of::<isize>() == 8);
        assert!(!adds_as_u64::<u32>() && !adds_as_u64::<i8>());
    }

    #[test]
    fn an_option_in_a_tvar() {
        let v = crate::TVar::new(None::<u32>);
        crate::atomically(|tx| {
            v.write(tx, Some(7));
            Ok(())
        });
        assert_eq!(v.load(), Some(7));
    }
}

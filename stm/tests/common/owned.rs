//! An owned word for the tests of the core's owned values (`TVar::write_owned`, the commits
//! alone of owned words): a box made by `Box::into_raw`, or null, which `OwnedWord::free`
//! frees.

// Each test crate uses part of it.
#![allow(dead_code)]

use commute_stm::{OwnedWord, Word};

/// A boxed `T`, or null.
pub(crate) struct Owned<T>(pub(crate) *mut T);

impl<T> Owned<T> {
    /// A fresh box holding `value`.
    pub(crate) fn new(value: T) -> Self {
        Owned(Box::into_raw(Box::new(value)))
    }

    /// No box.
    pub(crate) fn null() -> Self {
        Owned(std::ptr::null_mut())
    }
}

impl<T> Clone for Owned<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Owned<T> {}

impl<T> PartialEq for Owned<T> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl<T> std::fmt::Debug for Owned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Owned").field(&self.0).finish()
    }
}

// SAFETY: a thin pointer round-trips through `u64`; the `T` it points at may be used from, and
// freed on, any thread (`Send + Sync`).
unsafe impl<T: Send + Sync + 'static> Word for Owned<T> {
    fn into_bits(self) -> u64 {
        self.0 as usize as u64
    }
    fn from_bits(bits: u64) -> Self {
        Owned(bits as usize as *mut T)
    }
}

// SAFETY: frees the box it owns, if any; every box comes from `Box::into_raw` (`new`).
unsafe impl<T: Send + Sync + 'static> OwnedWord for Owned<T> {
    unsafe fn free(self) {
        if !self.0.is_null() {
            // SAFETY: from `Box::into_raw`, freed once (the caller's promise).
            drop(unsafe { Box::from_raw(self.0) });
        }
    }
}

//! Values of the user's that an operation may let go of inside a transaction or a pin.

use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};

/// A value of the user's that an operation may not keep: an argument it may not store, the
/// copies a panic of user code leaves half made. Dropped before [`take`](Self::take), it goes to
/// [`commute_stm::drop_outside`], so that its `Drop` runs outside transactions and pins, where
/// it may use commute; taken, it costs nothing.
pub(crate) struct Unkept<T: 'static>(ManuallyDrop<T>);

impl<T: 'static> Unkept<T> {
    #[inline(always)]
    pub(crate) fn new(value: T) -> Self {
        Unkept(ManuallyDrop::new(value))
    }

    /// The value, kept: the caller now owns it.
    #[inline(always)]
    pub(crate) fn take(self) -> T {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped nor used again: the value is moved out once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl<T: 'static> Deref for Unkept<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: 'static> DerefMut for Unkept<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: 'static> Drop for Unkept<T> {
    fn drop(&mut self) {
        // SAFETY: the value was not taken (`take` forgets the wrapper), and the wrapper is
        // being dropped: moved out once, never used again.
        commute_stm::drop_outside(unsafe { ManuallyDrop::take(&mut self.0) });
    }
}

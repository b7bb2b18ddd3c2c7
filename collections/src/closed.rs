//! The errors of the queues' channel operations: [`Closed`] (a send to a closed queue) and
//! [`RecvTimeoutError`] (a receive that timed out or found the queue closed and drained).

use core::fmt;

/// The error of a send to a closed queue ([`TQueue::send`](crate::TQueue::send),
/// [`TBoundedQueue::send`](crate::TBoundedQueue::send)): the item, given back.
///
/// # Examples
///
/// ```
/// use commute::{Closed, TQueue};
///
/// let q = TQueue::new();
/// q.atomic().close();
/// let Err(Closed(item)) = q.atomic().send("late") else { panic!("the queue is closed") };
/// assert_eq!(item, "late");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Closed<T>(pub T);

impl<T> Closed<T> {
    /// The item that was not sent.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute::Closed(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed queue")
    }
}

impl<T> std::error::Error for Closed<T> {}

/// Why a receive with a deadline ([`TQueue::recv_until`](crate::TQueue::recv_until),
/// [`recv_timeout`](crate::Atomic::recv_timeout)) returned no item.
///
/// # Examples
///
/// ```
/// use commute::{RecvTimeoutError, TQueue};
/// use std::time::Duration;
///
/// let q: TQueue<u8> = TQueue::new();
/// assert_eq!(q.atomic().recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// q.atomic().close();
/// assert_eq!(q.atomic().recv_timeout(Duration::from_secs(60)), Err(RecvTimeoutError::Closed));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecvTimeoutError {
    /// The deadline passed while the queue was empty (and open).
    Timeout,
    /// The queue is closed and has no items left.
    Closed,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvTimeoutError::Timeout => f.write_str("timed out waiting on an empty queue"),
            RecvTimeoutError::Closed => f.write_str("receiving on a closed and empty queue"),
        }
    }
}

impl std::error::Error for RecvTimeoutError {}

/// The panic of a push to a closed queue (`queue`: the type's name).
#[cold]
#[track_caller]
pub(crate) fn push_on_closed(queue: &str) -> ! {
    panic!(
        "{queue}::push on a closed queue: use `send`, which hands the item back as `Err(Closed(item))`"
    )
}

/// The panic of a `take_wait` on a closed and empty queue.
#[cold]
#[track_caller]
pub(crate) fn take_wait_on_closed(queue: &str) -> ! {
    panic!(
        "{queue}::take_wait on a closed and empty queue would block forever: use `take`, which \
         returns None there, and `is_closed`"
    )
}

/// The panic of a `pop_wait` on a closed and empty queue.
#[cold]
#[track_caller]
pub(crate) fn pop_wait_on_closed(queue: &str) -> ! {
    panic!(
        "{queue}::pop_wait on a closed and empty queue would block forever: use `recv`, which \
         returns None there"
    )
}

//! One-call forms: run a single collection operation as its own transaction.

/// A view of a collection whose methods each run one operation as its own transaction.
///
/// Every collection has `.atomic()`, returning this view; its methods have the names and
/// arguments of the transactional ones, minus the `tx`. It is what makes swapping a
/// `Mutex<HashMap>` for a [`TMap`](crate::TMap) a mechanical edit:
/// `map.lock().unwrap().insert(k, v)` becomes `map.atomic().insert(k, v)`.
///
/// Calling these methods inside a transaction panics (transactions do not nest): there, use the
/// methods that take the `&Transaction`.
///
/// # Examples
///
/// ```
/// use commute::TCounter;
///
/// let hits = TCounter::new();
/// hits.atomic().add(2);
/// assert_eq!(hits.load(), 2);
/// ```
pub struct Atomic<'a, C: ?Sized>(pub(crate) &'a C);

impl<C: ?Sized> Clone for Atomic<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C: ?Sized> Copy for Atomic<'_, C> {}

impl<C: ?Sized + core::fmt::Debug> core::fmt::Debug for Atomic<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Atomic").field(&self.0).finish()
    }
}

/// Panics if the thread is inside a transaction: the one-call forms that do not go through
/// `atomically` (a single-variable commit) must refuse as `atomically` does.
#[track_caller]
#[inline]
pub(crate) fn assert_outside_transaction() {
    if crate::in_transaction() {
        outside_transaction_only();
    }
}

#[cold]
#[track_caller]
fn outside_transaction_only() -> ! {
    panic!(
        "commute: an .atomic() operation runs as its own transaction and cannot be called \
         inside one (transactions do not nest); call the method that takes the &Transaction"
    )
}

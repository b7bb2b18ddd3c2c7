//! The private machinery behind the public types. Each module opens with the protocol it
//! implements.

pub(crate) mod addr_index;
pub(crate) mod async_wait;
pub(crate) mod attempt;
pub(crate) mod backoff;
pub(crate) mod clock;
pub(crate) mod counters;
pub(crate) mod history;
pub(crate) mod profile;
pub(crate) mod reclaim;
pub(crate) mod thread;
pub(crate) mod var;
pub(crate) mod wait;
pub(crate) mod write_set;

/// A panic's payload.
pub type Payload = Box<dyn core::any::Any + Send>;

/// Keeps `payload` as the first panic of a series of destructors and hooks, or drops it (see
/// [`drop_payload`]) if there is one already.
pub fn keep_first_panic(first: &mut Option<Payload>, payload: Payload) {
    if first.is_none() {
        *first = Some(payload);
    } else {
        drop_payload(payload);
    }
}

/// Drops a panic's payload that is not passed on. Under `catch_unwind`: a payload's type is
/// the panicking code's, and its `Drop` may panic too, which would otherwise escape (and,
/// during an unwinding, abort); the payload of that second panic is dropped likewise, and one
/// of a third leaked.
pub fn drop_payload(payload: Payload) {
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
    if let Err(again) = dropped {
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(again)));
        if let Err(last) = dropped {
            core::mem::forget(last);
        }
    }
}

/// Passes on the first panic of a series of destructors and hooks, unless the thread is
/// already unwinding (a second panic would abort): then its payload is dropped (see
/// [`drop_payload`]).
pub(crate) fn pass_on_first_panic(first: Option<Payload>) {
    if let Some(payload) = first {
        if !std::thread::panicking() {
            std::panic::resume_unwind(payload);
        }
        drop_payload(payload);
    }
}

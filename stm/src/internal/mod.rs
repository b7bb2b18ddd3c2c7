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
pub(crate) mod thread;
pub(crate) mod var;
pub(crate) mod wait;
pub(crate) mod write_set;

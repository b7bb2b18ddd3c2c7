//! Spin-then-yield backoff that loom can see.
//!
//! `crossbeam_utils::Backoff` spins with `spin_loop` hints that loom cannot schedule around, so
//! this wrapper routes every wait through the `sync` shim.

/// Exponential backoff for waits that are expected to be short.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: u32,
}

const SPIN_LIMIT: u32 = 6;

impl Backoff {
    pub(crate) fn new() -> Self {
        Backoff { step: 0 }
    }

    /// Waits a little longer each call: spins first, then yields the thread.
    pub(crate) fn snooze(&mut self) {
        if cfg!(loom) || self.step > SPIN_LIMIT {
            crate::sync::yield_now();
        } else {
            for _ in 0..(1u32 << self.step) {
                crate::sync::spin_hint();
            }
        }
        self.step = self.step.saturating_add(1);
    }

    /// How many times `snooze` ran.
    pub(crate) fn steps(&self) -> u32 {
        self.step
    }
}

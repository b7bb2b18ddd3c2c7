//! Using up every version tag, shared by the tests of threads without one.
//!
//! A test that uses it runs alone in its binary: the registry hands out the lowest free slot,
//! and no slot-holding thread of the process may exit before the tag-less threads have
//! registered, so that once the parked threads hold slots, every thread that registers after
//! them has no tag.

use commute_stm::{TVar, atomically};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;

/// Threads parked holding registry slots: more than the 1,023 tags there are.
const PARKED: usize = 1_024;

/// The parked threads of [`use_up_tags`], alive until [`Parked::release`].
pub(crate) struct Parked {
    release: Arc<Barrier>,
    threads: Vec<JoinHandle<()>>,
}

/// Uses up every tag: each of [`PARKED`] threads runs a transaction (so takes a registry slot)
/// and then waits, alive, until [`Parked::release`]. Returns once all of them hold a slot.
pub(crate) fn use_up_tags() -> Parked {
    let v = Arc::new(TVar::new(0u64));
    let registered = Arc::new(Barrier::new(PARKED + 1));
    let release = Arc::new(Barrier::new(PARKED + 1));
    let threads = (0..PARKED)
        .map(|_| {
            let (v, registered, release) = (v.clone(), registered.clone(), release.clone());
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    atomically(|tx| v.read(tx));
                    registered.wait();
                    release.wait();
                })
                .expect("spawn a parked thread")
        })
        .collect();
    registered.wait();
    Parked { release, threads }
}

impl Parked {
    /// Lets the parked threads end, and waits for them.
    pub(crate) fn release(self) {
        self.release.wait();
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

//! Fault injection: transactions that panic at a chosen point, and the panic hook that keeps
//! those panics quiet.
//!
//! A faulty transaction panics with an [`InjectedFault`] payload at one of the points of
//! [`FaultPoint`]; the soak catches it with `catch_unwind` around `atomically` and checks that
//! nothing of the attempt is visible (a commit hook's panic is the exception: the transaction
//! committed before its hooks ran, and the soak accounts for it as committed).

use std::any::Any;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

use commute::{StmResult, TVar, Transaction, atomically};

use crate::rng::XorShift;

/// Where an injected panic fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultPoint {
    /// At the start of the closure, before anything is read.
    BeforeReads,
    /// After the transaction's first write, before its others.
    BetweenWrites,
    /// In a `TVar::commute` function, run at commit while the write set is locked.
    InCommute,
    /// In an `on_commit` hook: the transaction has committed.
    InOnCommit,
    /// In the alternative of an `or_else` whose first branch (the whole operation) retried.
    AfterRetry,
}

impl FaultPoint {
    /// Every point, in the order of the soak's counts.
    pub const ALL: [FaultPoint; 5] = [
        FaultPoint::BeforeReads,
        FaultPoint::BetweenWrites,
        FaultPoint::InCommute,
        FaultPoint::InOnCommit,
        FaultPoint::AfterRetry,
    ];

    /// The point's index in [`ALL`](FaultPoint::ALL).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::soak::fault::FaultPoint;
    ///
    /// assert!(FaultPoint::ALL.iter().enumerate().all(|(i, p)| p.index() == i));
    /// ```
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short name for reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::soak::fault::FaultPoint;
    ///
    /// assert_eq!(FaultPoint::InOnCommit.name(), "in on_commit");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::BeforeReads => "before reads",
            FaultPoint::BetweenWrites => "between writes",
            FaultPoint::InCommute => "in commute",
            FaultPoint::InOnCommit => "in on_commit",
            FaultPoint::AfterRetry => "after retry",
        }
    }

    /// Draws the fault of one transaction: none with probability `1 - rate`, else a point
    /// chosen uniformly.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::rng::XorShift;
    /// use commute_benches::soak::fault::FaultPoint;
    ///
    /// let mut rng = XorShift::new(1);
    /// assert_eq!(FaultPoint::draw(&mut rng, 0.0), None);
    /// assert!(FaultPoint::draw(&mut rng, 1.0).is_some());
    /// ```
    pub fn draw(rng: &mut XorShift, rate: f64) -> Option<FaultPoint> {
        if rate > 0.0 && rng.next_f64() < rate {
            Some(FaultPoint::ALL[rng.below(FaultPoint::ALL.len() as u64) as usize])
        } else {
            None
        }
    }
}

/// The payload of an injected panic (the panic hook keeps these quiet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InjectedFault(pub FaultPoint);

/// Panics with an [`InjectedFault`] payload.
///
/// # Panics
///
/// Always: that is its purpose.
///
/// # Examples
///
/// ```
/// use commute_benches::soak::fault::{FaultPoint, inject, injected_point, install_quiet_hook};
///
/// install_quiet_hook();
/// let payload = std::panic::catch_unwind(|| inject(FaultPoint::BeforeReads)).unwrap_err();
/// assert_eq!(injected_point(&*payload), Some(FaultPoint::BeforeReads));
/// ```
pub fn inject(point: FaultPoint) -> ! {
    panic::panic_any(InjectedFault(point))
}

/// The point of an injected panic, or `None` for any other panic payload.
///
/// # Examples
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("real")).unwrap_err();
/// assert_eq!(commute_benches::soak::fault::injected_point(&*payload), None);
/// ```
pub fn injected_point(payload: &(dyn Any + Send)) -> Option<FaultPoint> {
    payload.downcast_ref::<InjectedFault>().map(|f| f.0)
}

/// Installs (once per process) a panic hook that ignores injected panics and hands every other
/// panic to the hook that was installed before (by default, the one that prints the message).
///
/// # Examples
///
/// ```
/// commute_benches::soak::fault::install_quiet_hook();
/// commute_benches::soak::fault::install_quiet_hook(); // idempotent
/// ```
pub fn install_quiet_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if info.payload().downcast_ref::<InjectedFault>().is_none() {
                previous(info);
            }
        }));
    });
}

/// The fault planned for one transaction, handed to its body so that it can fire at the points
/// only the body knows (between its writes).
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    point: Option<FaultPoint>,
}

impl Fault {
    /// No fault.
    pub const NONE: Fault = Fault { point: None };

    /// A fault at `point` (or none).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::soak::fault::{Fault, FaultPoint};
    ///
    /// assert_eq!(Fault::at(Some(FaultPoint::InCommute)).point(), Some(FaultPoint::InCommute));
    /// ```
    pub fn at(point: Option<FaultPoint>) -> Self {
        Fault { point }
    }

    /// The planned point, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute_benches::soak::fault::Fault::NONE.point(), None);
    /// ```
    pub fn point(&self) -> Option<FaultPoint> {
        self.point
    }

    /// Call after the body's first write: panics if the fault is [`FaultPoint::BetweenWrites`].
    ///
    /// # Panics
    ///
    /// With an [`InjectedFault`] if so planned.
    ///
    /// # Examples
    ///
    /// ```
    /// commute_benches::soak::fault::Fault::NONE.between_writes(); // no fault planned
    /// ```
    #[inline]
    pub fn between_writes(&self) {
        if self.point == Some(FaultPoint::BetweenWrites) {
            inject(FaultPoint::BetweenWrites);
        }
    }
}

/// Runs `body` as a transaction with `fault` planted in it.
///
/// - [`BeforeReads`](FaultPoint::BeforeReads): the closure panics first thing.
/// - [`BetweenWrites`](FaultPoint::BetweenWrites): the body panics at its
///   [`Fault::between_writes`] call.
/// - [`InCommute`](FaultPoint::InCommute): a `commute` of `sink` whose function panics (at
///   commit, with the write set locked; at once in irrevocable mode).
/// - [`InOnCommit`](FaultPoint::InOnCommit): an `on_commit` hook, registered after the body's
///   own hooks (which log the commit), panics.
/// - [`AfterRetry`](FaultPoint::AfterRetry): the body runs as the first branch of an `or_else`
///   that then retries, so the body's writes are rolled back; the alternative panics.
///
/// # Panics
///
/// As planned (with an [`InjectedFault`]), and whenever `body` or the STM panics.
///
/// # Examples
///
/// ```
/// use commute::TVar;
/// use commute_benches::soak::fault::{Fault, FaultPoint, atomically_with_fault};
///
/// commute_benches::soak::fault::install_quiet_hook();
/// let (a, b, sink) = (TVar::new(0i64), TVar::new(0i64), TVar::new(0u64));
/// let fault = Fault::at(Some(FaultPoint::BetweenWrites));
/// let result = std::panic::catch_unwind(|| {
///     atomically_with_fault(fault, &sink, |tx, fault| {
///         a.write(tx, -1);
///         fault.between_writes();
///         b.write(tx, 1);
///         Ok(())
///     })
/// });
/// assert!(result.is_err());
/// assert_eq!((a.load(), b.load()), (0, 0)); // no partial effect
/// ```
#[track_caller]
pub fn atomically_with_fault<T>(
    fault: Fault,
    sink: &TVar<u64>,
    mut body: impl FnMut(&Transaction, &Fault) -> StmResult<T>,
) -> T {
    atomically(|tx| {
        match fault.point {
            Some(FaultPoint::BeforeReads) => inject(FaultPoint::BeforeReads),
            Some(FaultPoint::InCommute) => {
                sink.commute(tx, |_| inject(FaultPoint::InCommute));
            }
            Some(FaultPoint::AfterRetry) => {
                return tx.or_else(
                    |tx| {
                        body(tx, &fault)?;
                        tx.retry()
                    },
                    |_| inject(FaultPoint::AfterRetry),
                );
            }
            _ => {}
        }
        let value = body(tx, &fault)?;
        if fault.point == Some(FaultPoint::InOnCommit) {
            tx.on_commit(|| inject(FaultPoint::InOnCommit));
        }
        Ok(value)
    })
}

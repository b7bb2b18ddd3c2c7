//! Per-thread statistics counters (`StatsCell`, in each thread's registry slot) and the
//! snapshots they produce, re-exported by the public `stats` module.
//!
//! Each counter has a single writer, its thread: a relaxed load and store, no read-modify-write
//! and no shared cache line on the commit path. Aborts, the slow path, also count their conflict
//! site in a small map behind a mutex.

use core::fmt;
use core::panic::Location;
use std::collections::HashMap;

use crate::internal::var::Origin;
use crate::sync::Mutex;
use crate::sync::atomic::{AtomicU64, Ordering};

/// Why an attempt was rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AbortCause {
    /// A variable the attempt read was changed by another commit (found while reading, or when
    /// validating at commit).
    ReadValidation,
    /// A variable the attempt needed was locked by another committing (or irrevocable)
    /// transaction.
    LockBusy,
    /// The transaction called [`Transaction::retry`](crate::Transaction::retry) and waited.
    Retry,
}

/// Where one kind of abort happened: the variable and the aborted transaction's call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConflictSite {
    /// Why the attempt aborted.
    pub cause: AbortCause,
    /// The variable's label, if it was given one.
    pub var_label: Option<&'static str>,
    /// Where the variable was created.
    pub var_created_at: &'static Location<'static>,
    /// Where the aborted transaction's `atomically` was called.
    pub tx_site: &'static Location<'static>,
}

impl fmt::Display for ConflictSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cause = match self.cause {
            AbortCause::ReadValidation => "read changed",
            AbortCause::LockBusy => "lock busy",
            AbortCause::Retry => "retry",
        };
        match self.var_label {
            Some(label) => write!(f, "{cause} on TVar \"{label}\" ({})", self.var_created_at)?,
            None => write!(f, "{cause} on TVar created at {}", self.var_created_at)?,
        }
        write!(f, ", in transaction at {}", self.tx_site)
    }
}

/// A snapshot of the counters, for one thread ([`thread`](crate::stats::thread)) or all of them
/// ([`snapshot`](crate::stats::snapshot)).
///
/// Subtract an earlier snapshot from a later one to get what happened in between.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Committed transactions (each counted once, however many attempts it took).
    pub commits: u64,
    /// Commits made in irrevocable mode (after too many aborts).
    pub irrevocable_commits: u64,
    /// Attempts rolled back because a read variable changed.
    pub aborts_read_validation: u64,
    /// Attempts rolled back because a variable was locked by another transaction.
    pub aborts_lock_busy: u64,
    /// Attempts rolled back by an explicit `retry` (each followed by a wait).
    pub retries: u64,
    /// Conflict abort counts by variable and transaction site. Retries name no single variable:
    /// they are counted in [`retries`](Self::retries) only (the
    /// [conflict profiler](crate::conflicts) lists them by site).
    pub conflicts: HashMap<ConflictSite, u64>,
}

impl StatsSnapshot {
    /// Conflict aborts: read validation plus lock busy (explicit retries are not conflicts).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute_stm::stats::StatsSnapshot::default();
    /// assert_eq!(s.aborts(), 0);
    /// ```
    pub fn aborts(&self) -> u64 {
        self.aborts_read_validation + self.aborts_lock_busy
    }

    /// Conflict aborts per commit (0 when nothing committed).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute_stm::stats::StatsSnapshot::default();
    /// assert_eq!(s.aborts_per_commit(), 0.0);
    /// ```
    pub fn aborts_per_commit(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.aborts() as f64 / self.commits as f64
        }
    }

    /// The conflict sites, most frequent first.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = commute_stm::stats::StatsSnapshot::default();
    /// assert!(s.top_conflicts().is_empty());
    /// ```
    pub fn top_conflicts(&self) -> Vec<(ConflictSite, u64)> {
        let mut v: Vec<_> = self.conflicts.iter().map(|(k, n)| (*k, *n)).collect();
        v.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.tx_site.line().cmp(&b.0.tx_site.line()))
        });
        v
    }

    pub(crate) fn merge(&mut self, other: &StatsSnapshot) {
        self.commits += other.commits;
        self.irrevocable_commits += other.irrevocable_commits;
        self.aborts_read_validation += other.aborts_read_validation;
        self.aborts_lock_busy += other.aborts_lock_busy;
        self.retries += other.retries;
        for (k, n) in &other.conflicts {
            *self.conflicts.entry(*k).or_insert(0) += n;
        }
    }
}

impl core::ops::AddAssign<&StatsSnapshot> for StatsSnapshot {
    fn add_assign(&mut self, rhs: &StatsSnapshot) {
        self.merge(rhs);
    }
}

impl core::ops::Add for StatsSnapshot {
    type Output = StatsSnapshot;

    fn add(mut self, rhs: StatsSnapshot) -> StatsSnapshot {
        self.merge(&rhs);
        self
    }
}

impl core::iter::Sum for StatsSnapshot {
    /// Adds up snapshots, for example one per worker thread.
    fn sum<I: Iterator<Item = StatsSnapshot>>(iter: I) -> StatsSnapshot {
        iter.fold(StatsSnapshot::default(), |a, b| a + b)
    }
}

impl core::ops::Sub for StatsSnapshot {
    type Output = StatsSnapshot;

    /// What happened between `rhs` (earlier) and `self` (later).
    fn sub(mut self, rhs: StatsSnapshot) -> StatsSnapshot {
        self.commits -= rhs.commits;
        self.irrevocable_commits -= rhs.irrevocable_commits;
        self.aborts_read_validation -= rhs.aborts_read_validation;
        self.aborts_lock_busy -= rhs.aborts_lock_busy;
        self.retries -= rhs.retries;
        for (k, n) in rhs.conflicts {
            if let Some(m) = self.conflicts.get_mut(&k) {
                *m -= n;
                if *m == 0 {
                    self.conflicts.remove(&k);
                }
            }
        }
        self
    }
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} commits ({} irrevocable), {} aborts ({} read changed, {} lock busy), {} retries",
            self.commits,
            self.irrevocable_commits,
            self.aborts(),
            self.aborts_read_validation,
            self.aborts_lock_busy,
            self.retries
        )?;
        for (site, n) in self.top_conflicts() {
            writeln!(f, "  {n:>10}  {site}")?;
        }
        Ok(())
    }
}

/// One thread's live counters, written only by that thread.
#[derive(Default)]
pub(crate) struct StatsCell {
    commits: AtomicU64,
    irrevocable_commits: AtomicU64,
    aborts_read_validation: AtomicU64,
    aborts_lock_busy: AtomicU64,
    retries: AtomicU64,
    conflicts: Mutex<HashMap<ConflictSite, u64>>,
}

#[inline]
fn bump(c: &AtomicU64) {
    // Single writer: a plain load and store, no read-modify-write.
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl StatsCell {
    #[inline]
    pub(crate) fn commit(&self) {
        bump(&self.commits);
    }

    /// Counts a commit (counted by [`commit`](Self::commit) too) as irrevocable.
    #[inline]
    pub(crate) fn irrevocable_commit(&self) {
        bump(&self.irrevocable_commits);
    }

    pub(crate) fn abort(
        &self,
        cause: AbortCause,
        origin: Option<Origin>,
        tx_site: &'static Location<'static>,
    ) {
        bump(match cause {
            AbortCause::ReadValidation => &self.aborts_read_validation,
            AbortCause::LockBusy => &self.aborts_lock_busy,
            AbortCause::Retry => &self.retries,
        });
        if let Some(origin) = origin {
            let site = ConflictSite {
                cause,
                var_label: origin.label,
                var_created_at: origin.site,
                tx_site,
            };
            *crate::sync::lock(&self.conflicts).entry(site).or_insert(0) += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            commits: self.commits.load(Ordering::Relaxed),
            irrevocable_commits: self.irrevocable_commits.load(Ordering::Relaxed),
            aborts_read_validation: self.aborts_read_validation.load(Ordering::Relaxed),
            aborts_lock_busy: self.aborts_lock_busy.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            conflicts: crate::sync::lock(&self.conflicts).clone(),
        }
    }

    /// Takes the counters out, leaving zeros (when a thread exits and frees its slot).
    pub(crate) fn take(&self) -> StatsSnapshot {
        let s = self.snapshot();
        for c in [
            &self.commits,
            &self.irrevocable_commits,
            &self.aborts_read_validation,
            &self.aborts_lock_busy,
            &self.retries,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        crate::sync::lock(&self.conflicts).clear();
        s
    }
}

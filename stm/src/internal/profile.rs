//! Per-thread conflict profiles (`ProfileCell`, in each thread's registry slot): aborted
//! attempts by kind, variable and call sites, with the time they cost; the profiler's input,
//! re-exported and aggregated by the public `conflicts` module.

use core::panic::Location;
use std::collections::HashMap;
use std::time::Duration;

use crate::sync::Mutex;

/// What made an attempt abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConflictKind {
    /// A variable the attempt only read was changed by another commit.
    ReadWrite,
    /// A variable the attempt read and wrote (a read-modify-write) was changed by another commit.
    WriteWrite,
    /// A variable the attempt needed was locked by another committing (or irrevocable)
    /// transaction.
    LockBusy,
    /// The transaction called `retry` and waited for a change.
    Retry,
}

impl ConflictKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ConflictKind::ReadWrite => "read-write",
            ConflictKind::WriteWrite => "write-write",
            ConflictKind::LockBusy => "lock busy",
            ConflictKind::Retry => "retry",
        }
    }
}

/// Where one kind of conflict happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConflictKey {
    /// What made the attempts abort.
    pub kind: ConflictKind,
    /// The variable's label, if it has one.
    pub var_label: Option<&'static str>,
    /// Where the variable was created (`None` for retries, which name no single variable).
    pub var_created_at: Option<&'static Location<'static>>,
    /// Where the aborted transaction's `atomically` was called.
    pub aborted_at: &'static Location<'static>,
    /// Where the transaction that last committed a write to the variable while the profiler
    /// was on was called, if known. A commit made with the profiler off does not change it (a
    /// store on every commit's path, profiler off, would cost every program), so after one it
    /// may name an earlier writer.
    pub written_by: Option<&'static Location<'static>>,
}

/// The aggregated cost of one [`ConflictKey`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConflictCost {
    /// Aborted attempts.
    pub aborts: u64,
    /// The time those attempts ran before they were rolled back.
    pub time_lost: Duration,
}

/// A thread's profile (kept in its registry slot).
#[derive(Default)]
pub(crate) struct Profile {
    pub(crate) commits: u64,
    pub(crate) aborts: u64,
    pub(crate) time_committed: Duration,
    pub(crate) time_aborted: Duration,
    pub(crate) entries: HashMap<ConflictKey, ConflictCost>,
}

impl Profile {
    /// Adds another profile's counts to this one.
    pub(crate) fn add(&mut self, other: &Profile) {
        self.commits += other.commits;
        self.aborts += other.aborts;
        self.time_committed += other.time_committed;
        self.time_aborted += other.time_aborted;
        for (key, cost) in &other.entries {
            let e = self.entries.entry(*key).or_default();
            e.aborts += cost.aborts;
            e.time_lost += cost.time_lost;
        }
    }
}

/// The profile cell of one thread slot.
#[derive(Default)]
pub(crate) struct ProfileCell(Mutex<Profile>);

impl ProfileCell {
    pub(crate) fn commit(&self, elapsed: Duration) {
        let mut p = crate::sync::lock(&self.0);
        p.commits += 1;
        p.time_committed += elapsed;
    }

    /// Records one aborted attempt, charged to every key (variable) involved; its time is split
    /// between them.
    pub(crate) fn abort(&self, keys: &[ConflictKey], elapsed: Duration) {
        let mut p = crate::sync::lock(&self.0);
        p.aborts += 1;
        p.time_aborted += elapsed;
        let share = elapsed / keys.len().max(1) as u32;
        for key in keys {
            let e = p.entries.entry(*key).or_default();
            e.aborts += 1;
            e.time_lost += share;
        }
    }

    /// Adds this cell's profile to `total`.
    pub(crate) fn add_to(&self, total: &mut Profile) {
        total.add(&crate::sync::lock(&self.0));
    }

    pub(crate) fn take(&self) -> Profile {
        core::mem::take(&mut *crate::sync::lock(&self.0))
    }

    /// Adds another profile (of a thread that exited) to this one.
    pub(crate) fn absorb(&self, other: Profile) {
        crate::sync::lock(&self.0).add(&other);
    }
}

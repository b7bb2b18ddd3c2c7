//! The conflict profiler: which variable costs time, in which transactions, written by whom.
//!
//! Off by default; switched on by [`enable`] or by the environment variable
//! `COMMUTE_CONFLICTS=1` (read when the first transaction runs). While on, every aborted attempt
//! records its kind, the variable involved (label or creation site), the call site of the aborted
//! transaction, the call site of the transaction that last committed a write to that variable
//! while the profiler was on (where known), and the time the attempt cost. What an attempt
//! records follows the switch as it stood when the attempt began. [`report`] aggregates the
//! records of all threads by variable and site pair, sorted by time lost.
//!
//! When off, the only cost is one relaxed load of a flag per attempt.
//!
//! # Examples
//!
//! ```
//! use commute_stm::{atomically, conflicts, TVar};
//!
//! conflicts::enable();
//! let hits = TVar::new(0u64).with_label("hits");
//! atomically(|tx| hits.modify(tx, |n| n + 1));
//! let report = conflicts::report();
//! assert!(report.commits >= 1);
//! println!("{report}");
//! ```

use core::fmt;
use core::panic::Location;
use std::time::Duration;

use crate::internal::profile::Profile;
pub use crate::internal::profile::{ConflictCost, ConflictKey, ConflictKind};
use crate::sync::atomic::Ordering;

/// The profiler switch: `UNSET` until first read (then the environment decides), `OFF` or `ON`.
#[cfg(not(loom))]
static SWITCH: crate::sync::atomic::AtomicU8 = crate::sync::atomic::AtomicU8::new(UNSET);
#[cfg(not(loom))]
const UNSET: u8 = 0;
#[cfg(not(loom))]
const OFF: u8 = 1;
#[cfg(not(loom))]
const ON: u8 = 2;

/// True while the profiler is on; read once per `atomically`.
#[inline]
pub(crate) fn profiling() -> bool {
    #[cfg(not(loom))]
    {
        match SWITCH.load(Ordering::Relaxed) {
            ON => true,
            OFF => false,
            _ => profiling_from_env(),
        }
    }
    #[cfg(loom)]
    {
        crate::internal::thread::global()
            .profiling
            .load(Ordering::Relaxed)
    }
}

/// The first read of the switch: the environment decides (`COMMUTE_CONFLICTS=1`).
#[cfg(not(loom))]
#[cold]
#[inline(never)]
fn profiling_from_env() -> bool {
    let on = std::env::var_os("COMMUTE_CONFLICTS").is_some_and(|v| v == "1");
    // Only the first reader decides; an explicit enable/disable meanwhile wins.
    let _ = SWITCH.compare_exchange(
        UNSET,
        if on { ON } else { OFF },
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    SWITCH.load(Ordering::Relaxed) == ON
}

fn set_profiling(on: bool) {
    #[cfg(not(loom))]
    SWITCH.store(if on { ON } else { OFF }, Ordering::Relaxed);
    #[cfg(loom)]
    crate::internal::thread::global()
        .profiling
        .store(on, Ordering::Relaxed);
}

/// Switches the profiler on (for all threads): attempts that begin from now on are recorded,
/// in `atomically` calls running now too.
///
/// # Examples
///
/// ```
/// commute_stm::conflicts::enable();
/// assert!(commute_stm::conflicts::is_enabled());
/// ```
pub fn enable() {
    set_profiling(true);
}

/// Switches the profiler off. Records made so far stay until [`reset`]. Attempts that began
/// while it was on (in `atomically` calls running now) are still recorded.
///
/// # Examples
///
/// ```
/// commute_stm::conflicts::disable();
/// assert!(!commute_stm::conflicts::is_enabled());
/// ```
pub fn disable() {
    set_profiling(false);
}

/// True while the profiler is on.
///
/// # Examples
///
/// ```
/// let _on: bool = commute_stm::conflicts::is_enabled();
/// ```
pub fn is_enabled() -> bool {
    profiling()
}

/// Forgets every record made so far (of all threads, running or exited).
///
/// # Examples
///
/// ```
/// commute_stm::conflicts::reset();
/// assert_eq!(commute_stm::conflicts::report().aborts, 0);
/// ```
pub fn reset() {
    crate::internal::thread::reset_profiles();
}

/// The records of every thread, aggregated by variable and site pair, most time lost first.
///
/// # Examples
///
/// ```
/// let report = commute_stm::conflicts::report();
/// assert!(report.entries().iter().all(|(_, cost)| cost.aborts > 0));
/// ```
pub fn report() -> ConflictReport {
    let mut total = Profile::default();
    crate::internal::thread::for_each_profile(|cell| cell.add_to(&mut total));
    let mut sorted: Vec<_> = total.entries.into_iter().collect();
    sorted.sort_by(|a, b| {
        b.1.time_lost
            .cmp(&a.1.time_lost)
            .then(b.1.aborts.cmp(&a.1.aborts))
            .then_with(|| a.0.aborted_at.line().cmp(&b.0.aborted_at.line()))
    });
    ConflictReport {
        commits: total.commits,
        aborts: total.aborts,
        time_committed: total.time_committed,
        time_aborted: total.time_aborted,
        sorted,
    }
}

/// An aggregated conflict report. `Display` prints the totals, then the costliest conflicts
/// first, each with its share of all the time lost to aborts:
///
/// ```text
/// 41.2 ms lost in 9,812 aborts (87%): TVar "hits" (src/server.rs:42), read at src/handler.rs:17, written by src/handler.rs:30
/// ```
#[derive(Clone, Debug, Default)]
pub struct ConflictReport {
    /// Transactions committed by an attempt that began while the profiler was on. The one-call
    /// forms that commit one variable without a transaction (such as `.atomic()` increments and
    /// updates of the collections) are not counted here, nor are their retries aborts;
    /// [`stats`](crate::stats) counts their commits.
    pub commits: u64,
    /// Attempts that began while the profiler was on and were rolled back (retries included).
    /// An attempt that conflicted on several variables counts once here and once in each of
    /// their entries.
    pub aborts: u64,
    /// Time spent in attempts that committed.
    pub time_committed: Duration,
    /// Time spent in attempts that were rolled back.
    pub time_aborted: Duration,
    sorted: Vec<(ConflictKey, ConflictCost)>,
}

impl ConflictReport {
    /// The conflicts, most time lost first.
    ///
    /// # Examples
    ///
    /// ```
    /// for (key, cost) in commute_stm::conflicts::report().entries() {
    ///     println!("{:?}: {} aborts", key.kind, cost.aborts);
    /// }
    /// ```
    pub fn entries(&self) -> &[(ConflictKey, ConflictCost)] {
        &self.sorted
    }

    /// The report as a JSON object: totals and an array of conflicts, most time lost first.
    ///
    /// # Examples
    ///
    /// ```
    /// let json = commute_stm::conflicts::ConflictReport::default().to_json();
    /// assert!(json.starts_with("{\"commits\":0,"));
    /// ```
    pub fn to_json(&self) -> String {
        let loc = |l: Option<&'static Location<'static>>| match l {
            Some(l) => json_string(&l.to_string()),
            None => "null".to_string(),
        };
        let mut out = format!(
            "{{\"commits\":{},\"aborts\":{},\"time_committed_ns\":{},\"time_aborted_ns\":{},\"conflicts\":[",
            self.commits,
            self.aborts,
            self.time_committed.as_nanos(),
            self.time_aborted.as_nanos()
        );
        for (i, (k, c)) in self.sorted.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"kind\":\"{}\",\"label\":{},\"created_at\":{},\"aborted_at\":{},\"written_by\":{},\"aborts\":{},\"time_lost_ns\":{}}}",
                k.kind.as_str(),
                k.var_label.map_or("null".to_string(), json_string),
                loc(k.var_created_at),
                loc(Some(k.aborted_at)),
                loc(k.written_by),
                c.aborts,
                c.time_lost.as_nanos()
            ));
        }
        out.push_str("]}");
        out
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

impl fmt::Display for ConflictKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.var_label, self.var_created_at) {
            (Some(label), Some(site)) => write!(f, "TVar \"{label}\" ({site})")?,
            (None, Some(site)) => write!(f, "TVar created at {site}")?,
            (_, None) => f.write_str("retry")?,
        }
        let verb = match self.kind {
            ConflictKind::ReadWrite => "read at",
            ConflictKind::WriteWrite => "read and written at",
            ConflictKind::LockBusy => "found locked at",
            ConflictKind::Retry => "waiting at",
        };
        write!(f, ", {verb} {}", self.aborted_at)?;
        if let Some(w) = self.written_by {
            write!(f, ", written by {w}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ConflictReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let aborted = self.time_aborted;
        writeln!(
            f,
            "{} commits, {} aborts; {} in committed attempts, {} in aborted ones",
            thousands(self.commits),
            thousands(self.aborts),
            millis(self.time_committed),
            millis(aborted)
        )?;
        if self.sorted.is_empty() {
            return writeln!(f, "no conflicts");
        }
        for (key, cost) in &self.sorted {
            // The share of all time lost to aborts.
            let share = if aborted.is_zero() {
                0.0
            } else {
                100.0 * cost.time_lost.as_secs_f64() / aborted.as_secs_f64()
            };
            writeln!(
                f,
                "{} lost in {} aborts ({share:.0}%): {key}",
                millis(cost.time_lost),
                thousands(cost.aborts)
            )?;
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_the_examples() {
        assert_eq!(thousands(9812), "9,812");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(millis(Duration::from_micros(41_200)), "41.2 ms");
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}

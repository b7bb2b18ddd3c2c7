//! The end-of-run checks (STAMP's `checkTables`, made stricter) and a digest of the final
//! state, to compare implementations that ran the same stream.
//!
//! Checked on every implementation's final state:
//!
//! - every row has `used >= 0`, `free >= 0`, `total >= 1`, `used + free == total` and a price
//!   (STAMP's `checkReservation`; a row whose total reached 0 must have been deleted);
//! - every customer's reservations are sorted by (kind, id) without duplicates, and refer to
//!   rows that exist;
//! - each row's `used` equals the number of reservations customers hold on it;
//! - ids are within 1 to r;
//! - the reservations customers hold are as many as the run's actions made, less those they
//!   cancelled ([`CheckReport::account`]; a run that loses whole actions leaves a consistent
//!   state, which the checks above cannot tell from the right one).

use std::collections::HashMap;

use super::manager::{Kind, Reservation, ReservationInfo, SeqTables};
use super::tm::TxTables;

/// Read access to a final state, for [`check`].
pub trait Inspect {
    /// Calls `f` with every row of the table of `kind`.
    fn visit_rows(&self, kind: Kind, f: &mut dyn FnMut(u64, &Reservation));
    /// Calls `f` with every customer and its reservations.
    fn visit_customers(&self, f: &mut dyn FnMut(u64, &[ReservationInfo]));
}

impl Inspect for SeqTables {
    fn visit_rows(&self, kind: Kind, f: &mut dyn FnMut(u64, &Reservation)) {
        for (&id, row) in &self.rows[kind as usize] {
            f(id, row);
        }
    }

    fn visit_customers(&self, f: &mut dyn FnMut(u64, &[ReservationInfo])) {
        for (&id, list) in &self.customers {
            f(id, list);
        }
    }
}

impl Inspect for TxTables {
    fn visit_rows(&self, kind: Kind, f: &mut dyn FnMut(u64, &Reservation)) {
        // One transaction copies the table out; `f` then runs outside it, once per row.
        for (id, row) in self.rows[kind as usize].atomic().iter() {
            f(id, &row);
        }
    }

    fn visit_customers(&self, f: &mut dyn FnMut(u64, &[ReservationInfo])) {
        for (id, list) in self.customers.atomic().iter() {
            f(id, &list);
        }
    }
}

/// What [`check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Rows per table, by [`Kind`].
    pub rows: [u64; 3],
    /// Customers.
    pub customers: u64,
    /// Reservations held by all customers.
    pub reservations: u64,
    /// A digest of the whole state (independent of iteration order): equal states give equal
    /// digests.
    pub digest: u64,
    /// Broken invariants found.
    pub violations: u64,
    /// The first few of them, described.
    pub messages: Vec<String>,
}

impl CheckReport {
    /// True if no invariant was broken.
    pub fn ok(&self) -> bool {
        self.violations == 0
    }

    /// Whether two runs ended in the same state (same counts and digest).
    pub fn same_state(&self, other: &CheckReport) -> bool {
        self.rows == other.rows
            && self.customers == other.customers
            && self.reservations == other.reservations
            && self.digest == other.digest
    }

    /// The ledger check: the final state's reservations must be `made_minus_cancelled`, the
    /// sum of what the run's actions returned ([`perform`](super::client::perform)), since the
    /// populated tables hold none. A mismatch is a violation.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::vacation::check::check;
    /// use commute_benches::vacation::manager::{Kind, Manager, SeqTables};
    ///
    /// let mut m = SeqTables::default();
    /// let _ = m.add_reservation(Kind::Car, 1, 100, Some(50));
    /// let _ = m.add_customer(1);
    /// let _ = m.reserve(Kind::Car, 1, 1);
    /// let mut report = check(&m, 10);
    /// report.account(1);
    /// assert!(report.ok());
    /// report.account(2); // an action whose reservation the state lost
    /// assert!(!report.ok());
    /// ```
    pub fn account(&mut self, made_minus_cancelled: i64) {
        let held = self.reservations;
        if i64::try_from(held) != Ok(made_minus_cancelled) {
            self.violation(|| {
                format!(
                    "customers hold {held} reservations; the actions made \
                     {made_minus_cancelled} more than they cancelled"
                )
            });
        }
    }

    fn violation(&mut self, message: impl FnOnce() -> String) {
        self.violations += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(message());
        }
    }
}

/// Violations described in a report (the rest are only counted).
const MAX_MESSAGES: usize = 8;

/// Checks the final state of a run over ids 1 to `relations`.
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::check::check;
/// use commute_benches::vacation::manager::{Kind, Manager, SeqTables};
///
/// let mut m = SeqTables::default();
/// let _ = m.add_reservation(Kind::Room, 1, 100, Some(50));
/// let _ = m.add_customer(1);
/// let _ = m.reserve(Kind::Room, 1, 1);
/// let report = check(&m, 10);
/// assert!(report.ok(), "{:?}", report.messages);
/// assert_eq!((report.rows, report.customers, report.reservations), ([0, 0, 1], 1, 1));
/// ```
pub fn check(state: &dyn Inspect, relations: u64) -> CheckReport {
    let mut report = CheckReport::default();
    let in_range = |id: u64| (1..=relations).contains(&id);
    // Reservations held per row, from the customers' side.
    let mut held: HashMap<(Kind, u64), i64> = HashMap::new();
    let mut digest = 0u64;
    state.visit_customers(&mut |customer, list| {
        report.customers += 1;
        report.reservations += list.len() as u64;
        if !in_range(customer) {
            report.violation(|| format!("customer {customer} is out of range"));
        }
        if list.windows(2).any(|w| w[0].key() >= w[1].key()) {
            report.violation(|| {
                format!("customer {customer}: reservations unsorted or repeated: {list:?}")
            });
        }
        let mut h = mix(0xC057, customer);
        for info in list {
            *held.entry(info.key()).or_insert(0) += 1;
            h = mix(mix(mix(h, info.kind as u64), info.id), info.price as u64);
        }
        digest = digest.wrapping_add(mix(h, list.len() as u64));
    });
    for kind in Kind::ALL {
        state.visit_rows(kind, &mut |id, row| {
            report.rows[kind as usize] += 1;
            let Reservation {
                total,
                used,
                free,
                price,
            } = *row;
            if !in_range(id) {
                report.violation(|| format!("{} {id} is out of range", kind.name()));
            }
            if used < 0 || free < 0 || total < 1 || used + free != total || price < 0 {
                report.violation(|| format!("{} {id} is inconsistent: {row:?}", kind.name()));
            }
            let holders = held.remove(&(kind, id)).unwrap_or(0);
            if holders != used {
                report.violation(|| {
                    format!(
                        "{} {id}: used is {used}, customers hold {holders} reservations on it",
                        kind.name()
                    )
                });
            }
            let h = mix(mix(0x7AB1E, kind as u64), id);
            let h = mix(
                mix(mix(mix(h, total as u64), used as u64), free as u64),
                price as u64,
            );
            digest = digest.wrapping_add(h);
        });
    }
    for ((kind, id), holders) in held {
        report.violation(|| {
            format!(
                "customers hold {holders} reservations on {} {id}, which does not exist",
                kind.name()
            )
        });
    }
    report.digest = digest;
    report
}

/// Folds `value` into the hash `h` (splitmix64's finaliser).
fn mix(h: u64, value: u64) -> u64 {
    let mut z = (h ^ value).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vacation::manager::Manager;

    #[test]
    fn a_broken_row_and_a_dangling_reservation_are_found() {
        let mut m = SeqTables::default();
        let _ = m.add_reservation(Kind::Car, 1, 100, Some(50));
        let _ = m.add_customer(2);
        let _ = m.reserve(Kind::Car, 2, 1);
        assert!(check(&m, 10).ok());
        m.rows[0].get_mut(&1).unwrap().free += 1;
        let report = check(&m, 10);
        assert_eq!(report.violations, 1, "{:?}", report.messages);
        m.rows[0].remove(&1);
        let report = check(&m, 10);
        assert!(report.messages[0].contains("does not exist"), "{report:?}");
    }

    #[test]
    fn the_digest_sees_a_price_change() {
        let mut a = SeqTables::default();
        let _ = a.add_reservation(Kind::Room, 3, 100, Some(50));
        let mut b = a.clone();
        assert!(check(&a, 10).same_state(&check(&b, 10)));
        let _ = b.add_reservation(Kind::Room, 3, 0, Some(60));
        assert!(!check(&a, 10).same_state(&check(&b, 10)));
    }
}

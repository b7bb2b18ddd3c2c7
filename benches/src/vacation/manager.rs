//! The travel agency's data and STAMP's manager interface (`manager.c`, `reservation.c`,
//! `customer.c`), and the plain implementation of it that `sequential` and `global-lock` run.
//!
//! A manager holds three tables of reservable resources (cars, flights, rooms: id -> a
//! [`Reservation`] row of total, used, free and price) and a table of customers (id -> the
//! customer's reservations, each a [`ReservationInfo`] of type, id and the price paid). STAMP's
//! `manager_*` functions become the methods of [`Manager`]; `-1` results become `None`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::convert::Infallible;

use ahash::RandomState;

/// The three kinds of reservable resources, in STAMP's order (`RESERVATION_CAR`,
/// `RESERVATION_FLIGHT`, `RESERVATION_ROOM`): a client draws `random % 3`.
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::manager::Kind;
///
/// assert_eq!(Kind::from_index(1), Kind::Flight);
/// assert_eq!(Kind::Room as usize, 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A car.
    Car = 0,
    /// A seat on a flight.
    Flight = 1,
    /// A hotel room.
    Room = 2,
}

impl Kind {
    /// All kinds, in STAMP's order (make-reservation reserves car, flight, room in this order).
    pub const ALL: [Kind; 3] = [Kind::Car, Kind::Flight, Kind::Room];

    /// The kind numbered `index` (0, 1 or 2).
    ///
    /// # Panics
    ///
    /// If `index` is 3 or more.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(
    ///     commute_benches::vacation::manager::Kind::from_index(0),
    ///     commute_benches::vacation::manager::Kind::Car
    /// );
    /// ```
    pub fn from_index(index: u64) -> Kind {
        Kind::ALL[index as usize]
    }

    /// The table's name, for messages.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(commute_benches::vacation::manager::Kind::Room.name(), "room");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Kind::Car => "car",
            Kind::Flight => "flight",
            Kind::Room => "room",
        }
    }
}

/// One row of a resource table (STAMP's `reservation_t` without its id, which is the key):
/// `used + free == total` always holds.
///
/// Small and `Copy`, so that a `TMap` of them clones cheaply.
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::manager::Reservation;
///
/// let row = Reservation::new(100, 50);
/// assert_eq!((row.total, row.used, row.free, row.price), (100, 0, 100, 50));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reservation {
    /// Units in all.
    pub total: i64,
    /// Units reserved by customers.
    pub used: i64,
    /// Units still free.
    pub free: i64,
    /// The price of one unit.
    pub price: i64,
}

impl Reservation {
    /// A new row of `total` free units at `price` (STAMP's `reservation_alloc`).
    ///
    /// # Examples
    ///
    /// ```
    /// let row = commute_benches::vacation::manager::Reservation::new(3, 60);
    /// assert_eq!(row.free, 3);
    /// ```
    pub fn new(total: i64, price: i64) -> Self {
        Reservation {
            total,
            used: 0,
            free: total,
            price,
        }
    }

    /// Adds `num` units (removes them if negative) if the free units cover it; STAMP's
    /// `reservation_addToTotal`. Returns whether it did.
    #[inline]
    pub(crate) fn add_to_total(&mut self, num: i64) -> bool {
        if self.free + num < 0 {
            return false;
        }
        self.free += num;
        self.total += num;
        true
    }

    /// Takes one free unit for a customer (`reservation_make`).
    #[inline]
    pub(crate) fn make(&mut self) -> bool {
        if self.free < 1 {
            return false;
        }
        self.used += 1;
        self.free -= 1;
        true
    }

    /// Gives one used unit back (`reservation_cancel`).
    #[inline]
    pub(crate) fn cancel(&mut self) -> bool {
        if self.used < 1 {
            return false;
        }
        self.used -= 1;
        self.free += 1;
        true
    }
}

/// One reservation held by a customer (STAMP's `reservation_info_t`): what and at what price.
/// A customer's list is sorted by (kind, id) and holds each (kind, id) at most once.
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::manager::{Kind, ReservationInfo};
///
/// let info = ReservationInfo { kind: Kind::Car, id: 7, price: 60 };
/// assert_eq!(info.key(), (Kind::Car, 7));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReservationInfo {
    /// The table the reservation is in.
    pub kind: Kind,
    /// The row's id.
    pub id: u64,
    /// The price paid, as the row stood when it was reserved.
    pub price: i64,
}

impl ReservationInfo {
    /// The key the list is sorted by (STAMP's `reservation_info_compare`: type, then id).
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::vacation::manager::{Kind, ReservationInfo};
    ///
    /// let a = ReservationInfo { kind: Kind::Car, id: 9, price: 1 };
    /// let b = ReservationInfo { kind: Kind::Room, id: 1, price: 1 };
    /// assert!(a.key() < b.key());
    /// ```
    pub fn key(&self) -> (Kind, u64) {
        (self.kind, self.id)
    }
}

/// Where `key` goes in a sorted reservation list: `Err(position)` if absent, `Ok(_)` if the
/// customer already holds it (STAMP's sorted list refuses the duplicate).
#[inline]
pub(crate) fn position(list: &[ReservationInfo], key: (Kind, u64)) -> Result<usize, usize> {
    list.binary_search_by(|info| info.key().cmp(&key))
}

/// STAMP's manager interface, as client actions call it. One implementation per way of
/// running the benchmark: plain tables ([`SeqTables`], also behind the global lock) and
/// commute's (`super::tm::TxManager`, inside a transaction, where every call can ask for a
/// rollback with `Err`).
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::manager::{Kind, Manager, SeqTables};
///
/// let mut m = SeqTables::default();
/// let Ok(added) = m.add_reservation(Kind::Car, 1, 100, Some(50));
/// assert!(added);
/// assert_eq!(m.query_free(Kind::Car, 1), Ok(Some(100)));
/// assert_eq!(m.add_customer(5), Ok(true));
/// assert_eq!(m.reserve(Kind::Car, 5, 1), Ok(true));
/// assert_eq!(m.query_customer_bill(5), Ok(Some(50)));
/// assert_eq!(m.delete_customer(5), Ok(Some(1)));
/// assert_eq!(m.query_free(Kind::Car, 1), Ok(Some(100)));
/// ```
pub trait Manager {
    /// Why an operation could not finish: `Infallible` outside transactions, commute's
    /// `StmError` (roll back and rerun) inside one.
    type Error;

    /// The free units of row `id` of `kind`, `None` if there is no such row
    /// (`manager_queryCar` and friends).
    ///
    /// # Errors
    ///
    /// [`Manager::Error`].
    fn query_free(&mut self, kind: Kind, id: u64) -> Result<Option<i64>, Self::Error>;

    /// The price of row `id` of `kind`, `None` if there is no such row
    /// (`manager_queryCarPrice` and friends).
    ///
    /// # Errors
    ///
    /// [`Manager::Error`].
    fn query_price(&mut self, kind: Kind, id: u64) -> Result<Option<i64>, Self::Error>;

    /// Adds customer `id` with no reservations; false if it exists (`manager_addCustomer`).
    ///
    /// # Errors
    ///
    /// [`Manager::Error`].
    fn add_customer(&mut self, id: u64) -> Result<bool, Self::Error>;

    /// Reserves one unit of row `id` of `kind` for `customer`: false if the customer or the
    /// row does not exist, nothing is free, or the customer already holds that row
    /// (`manager_reserveCar` and friends).
    ///
    /// # Errors
    ///
    /// [`Manager::Error`].
    fn reserve(&mut self, kind: Kind, customer: u64, id: u64) -> Result<bool, Self::Error>;

    /// What the customer's reservations cost in all, `None` if there is no such customer
    /// (`manager_queryCustomerBill`).
    ///
    /// # Errors
    ///
    /// [`Manager::Error`].
    fn query_customer_bill(&mut self, customer: u64) -> Result<Option<i64>, Self::Error>;

    /// Removes the customer and cancels its reservations: how many it cancelled, `None` if
    /// there is no such customer (`manager_deleteCustomer`, which returns only whether it
    /// removed one).
    ///
    /// # Errors
    ///
    /// [`Manager::Error`].
    fn delete_customer(&mut self, customer: u64) -> Result<Option<u64>, Self::Error>;

    /// STAMP's `addReservation`, behind `manager_addCar` (num > 0) and `manager_deleteCar`
    /// (num < 0, price `None`): a missing row is created if `num >= 1` and a price is given;
    /// an existing one gains `num` units if its free units cover a removal, is deleted if its
    /// total reaches 0, and takes the new price if one is given. Returns whether it changed.
    ///
    /// # Errors
    ///
    /// [`Manager::Error`].
    fn add_reservation(
        &mut self,
        kind: Kind,
        id: u64,
        num: i64,
        price: Option<i64>,
    ) -> Result<bool, Self::Error>;

    /// Deletes a whole flight, unless a customer holds a seat on it (`manager_deleteFlight`).
    ///
    /// # Errors
    ///
    /// [`Manager::Error`].
    fn delete_flight(&mut self, id: u64) -> Result<bool, Self::Error>;
}

/// One resource table of plain data: `HashMap` with ahash, the hasher `TMap` uses, so that
/// hashing costs the same in every implementation.
pub(crate) type Table<V> = HashMap<u64, V, RandomState>;

/// The hasher of table `table` (a [`Kind`] as its index, 3 for the customers) in a run seeded
/// with `seed`: every implementation's tables hash alike, and a run is the same from one
/// process to the next (its buckets, and so its instruction counts: where ahash's random
/// seeds gave the layout of each process its own, `scripts/vacation-instructions.sh` moved by
/// about 15 instructions per action between runs of one binary).
pub(crate) fn table_hasher(seed: u64, table: u64) -> RandomState {
    RandomState::with_seeds(seed, table, 0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344)
}

/// The manager's tables as plain structures (STAMP's `_seq` functions): what `sequential` runs
/// with no synchronisation at all and `global-lock` runs under one `Mutex`.
///
/// A customer is its sorted list of reservations, updated in place.
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::manager::{Kind, Manager, SeqTables};
///
/// let mut m = SeqTables::default();
/// let Ok(true) = m.add_reservation(Kind::Flight, 3, 100, Some(70)) else { panic!() };
/// assert_eq!(m.delete_flight(3), Ok(true));
/// assert_eq!(m.query_price(Kind::Flight, 3), Ok(None));
/// ```
#[derive(Clone, Debug, Default)]
pub struct SeqTables {
    /// Cars, flights, rooms, indexed by [`Kind`].
    pub(crate) rows: [Table<Reservation>; 3],
    /// Customer id -> its reservations, sorted by (kind, id).
    pub(crate) customers: Table<Vec<ReservationInfo>>,
}

impl SeqTables {
    /// Empty tables with room for `relations` rows each, their hashers seeded from `seed`
    /// ([`table_hasher`]).
    pub(crate) fn with_capacity(relations: usize, seed: u64) -> Self {
        let hasher = |i| table_hasher(seed, i);
        let table = |i| Table::with_capacity_and_hasher(relations, hasher(i));
        SeqTables {
            rows: [table(0), table(1), table(2)],
            customers: Table::with_capacity_and_hasher(relations, hasher(3)),
        }
    }
}

impl Manager for SeqTables {
    type Error = Infallible;

    fn query_free(&mut self, kind: Kind, id: u64) -> Result<Option<i64>, Infallible> {
        Ok(self.rows[kind as usize].get(&id).map(|row| row.free))
    }

    fn query_price(&mut self, kind: Kind, id: u64) -> Result<Option<i64>, Infallible> {
        Ok(self.rows[kind as usize].get(&id).map(|row| row.price))
    }

    fn add_customer(&mut self, id: u64) -> Result<bool, Infallible> {
        Ok(match self.customers.entry(id) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(Vec::new());
                true
            }
        })
    }

    fn reserve(&mut self, kind: Kind, customer: u64, id: u64) -> Result<bool, Infallible> {
        let Some(list) = self.customers.get_mut(&customer) else {
            return Ok(false);
        };
        let Some(row) = self.rows[kind as usize].get_mut(&id) else {
            return Ok(false);
        };
        // STAMP makes the reservation, then undoes it if the customer's list refuses the
        // duplicate; checking the list first leaves the same state.
        let Err(at) = position(list, (kind, id)) else {
            return Ok(false);
        };
        if !row.make() {
            return Ok(false);
        }
        let price = row.price;
        list.insert(at, ReservationInfo { kind, id, price });
        Ok(true)
    }

    fn query_customer_bill(&mut self, customer: u64) -> Result<Option<i64>, Infallible> {
        Ok(self
            .customers
            .get(&customer)
            .map(|list| list.iter().map(|info| info.price).sum()))
    }

    fn delete_customer(&mut self, customer: u64) -> Result<Option<u64>, Infallible> {
        let Some(list) = self.customers.remove(&customer) else {
            return Ok(None);
        };
        for info in &list {
            let row = self.rows[info.kind as usize]
                .get_mut(&info.id)
                .expect("a reserved row cannot be deleted");
            assert!(row.cancel(), "a reserved row has a used unit");
        }
        Ok(Some(list.len() as u64))
    }

    fn add_reservation(
        &mut self,
        kind: Kind,
        id: u64,
        num: i64,
        price: Option<i64>,
    ) -> Result<bool, Infallible> {
        let table = &mut self.rows[kind as usize];
        let Some(row) = table.get_mut(&id) else {
            return Ok(match price {
                Some(price) if num >= 1 && price >= 0 => {
                    table.insert(id, Reservation::new(num, price));
                    true
                }
                _ => false,
            });
        };
        if !row.add_to_total(num) {
            return Ok(false);
        }
        if row.total == 0 {
            table.remove(&id);
        } else if let Some(price) = price.filter(|&p| p >= 0) {
            row.price = price;
        }
        Ok(true)
    }

    fn delete_flight(&mut self, id: u64) -> Result<bool, Infallible> {
        let Some(row) = self.rows[Kind::Flight as usize].get(&id) else {
            return Ok(false);
        };
        if row.used > 0 {
            return Ok(false);
        }
        let total = row.total;
        self.add_reservation(Kind::Flight, id, -total, None)
    }
}

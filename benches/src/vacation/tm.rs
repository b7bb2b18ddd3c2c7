//! The manager on commute: each table a `TMap`, each client action one `atomically`.
//!
//! Rows are `TMap<u64, Reservation>` with small `Copy` values: a read clones 32 bytes; an
//! update reads, checks and writes the row in one walk with `alter` (as a user of `entry`
//! would), which replaces the row's bucket copy-on-write.
//!
//! Customers are `TMap<u64, Arc<[ReservationInfo]>>`: the list is an immutable value,
//! replaced whole when a reservation is added. That is what the map's documentation steers a
//! new user to ("cheap to clone values (numbers, `Arc`s, short strings) suit it best"): a
//! bucket is copied on every write to any of its keys, so a plain `Vec` value would be cloned
//! (allocated) for each neighbour in the bucket, and an `Arc` costs one reference count
//! instead. The alternative, a `TBox<Vec<..>>` per customer inside the map's value (STAMP's
//! customer record pointing at a transactional list), avoids rewriting the customer's bucket
//! on each reservation, but needs an `Arc` around a `TBox` to be a `Clone` value at all; it is
//! not what one writes first.
//!
//! Two choices an experienced user makes, measured (`scripts/vacation-instructions.sh`:
//! instructions per action inside `atomically`, `-r16384`, vacation-low / -high): an immutable
//! list as an `Arc<[T]>` (one allocation, and one `free` once no transaction can read it)
//! rather than an `Arc<Vec<T>>` (two of each): 3,307 / 4,426 -> 3,084 / 4,130; and a
//! reservation as one `alter` of the customer's bucket (read the list, reserve the row, write
//! the longer list) rather than a lookup, then an insert that walks to the bucket again:
//! -> 2,838 / 3,837. (`sequential`: 585 / 754 in `perform`.)
//!
//! STAMP itself keeps a row as a record whose fields are transactional words, updated in
//! place. That layout on commute (`TMap<u64, Arc<Row>>`, `Row` four `TVar<i64>`) measured
//! slower: 2,886 / 3,999 instructions against 2,700 / 3,600 over the first 32,768 actions, and
//! 3.6-4.7x sequential's time against 2.8-3.2x, each field access being a read-set or
//! write-set entry of its own (docs/hot-path.md, "Sixteenth pass").

use std::sync::Arc;

use commute::{Change, StmError, TMap, Transaction, atomically};

use super::manager::{Kind, Manager, Reservation, ReservationInfo, position, table_hasher};

/// The manager's tables as commute collections.
#[derive(Debug)]
pub struct TxTables {
    /// Cars, flights, rooms, indexed by [`Kind`].
    pub(crate) rows: [TMap<u64, Reservation>; 3],
    /// Customer id -> its reservations, sorted by (kind, id).
    pub(crate) customers: TMap<u64, Arc<[ReservationInfo]>>,
}

impl TxTables {
    /// Empty tables sized for `relations` rows each (`TMap::with_capacity`'s root: a wider
    /// root, so a lookup walks fewer levels; the map would grow without it), their hashers
    /// seeded from `seed` as the plain tables' are ([`table_hasher`]).
    pub(crate) fn with_capacity(relations: usize, seed: u64) -> Self {
        let hasher = |i| table_hasher(seed, i);
        let table = |i| TMap::with_capacity_and_hasher(relations, hasher(i));
        TxTables {
            rows: [table(0), table(1), table(2)],
            customers: TMap::with_capacity_and_hasher(relations, hasher(3)),
        }
    }

    /// Inserts `rows` into the table of `kind` (population, before the clients run), a batch
    /// of rows per transaction.
    pub(crate) fn load_rows(&self, kind: Kind, rows: &[(u64, Reservation)]) {
        let table = &self.rows[kind as usize];
        for batch in rows.chunks(LOAD_BATCH) {
            atomically(|tx| {
                for &(id, row) in batch {
                    table.insert(tx, id, row)?;
                }
                Ok(())
            });
        }
    }

    /// Inserts customers with no reservations (population).
    pub(crate) fn load_customers(&self, ids: &[u64]) {
        let empty: Arc<[ReservationInfo]> = Arc::new([]);
        for batch in ids.chunks(LOAD_BATCH) {
            atomically(|tx| {
                for &id in batch {
                    self.customers.insert(tx, id, empty.clone())?;
                }
                Ok(())
            });
        }
    }
}

/// `list` with `info` inserted at `at`, in one allocation, by two copies (collecting a chain of
/// iterators into the `Arc` copies element by element: about 300 instructions per action more).
fn with_inserted(
    list: &[ReservationInfo],
    at: usize,
    info: ReservationInfo,
) -> Arc<[ReservationInfo]> {
    let mut longer = Arc::<[ReservationInfo]>::new_uninit_slice(list.len() + 1);
    let slots = Arc::get_mut(&mut longer).expect("a new Arc is not shared");
    slots[..at].write_copy_of_slice(&list[..at]);
    slots[at].write(info);
    slots[at + 1..].write_copy_of_slice(&list[at..]);
    // SAFETY: every element was written just above (`at + 1 + (len - at)` of them).
    unsafe { longer.assume_init() }
}

/// Rows inserted per transaction while populating the tables.
const LOAD_BATCH: usize = 256;

/// The manager inside one transaction: [`Manager`] calls on [`TxTables`] through `tx`.
#[derive(Debug)]
pub struct TxManager<'a> {
    tables: &'a TxTables,
    tx: &'a Transaction,
}

impl<'a> TxManager<'a> {
    /// The tables as seen by the transaction `tx`.
    pub fn new(tables: &'a TxTables, tx: &'a Transaction) -> Self {
        TxManager { tables, tx }
    }

    fn table(&self, kind: Kind) -> &'a TMap<u64, Reservation> {
        &self.tables.rows[kind as usize]
    }
}

impl Manager for TxManager<'_> {
    type Error = StmError;

    fn query_free(&mut self, kind: Kind, id: u64) -> Result<Option<i64>, StmError> {
        Ok(self.table(kind).get(self.tx, &id)?.map(|row| row.free))
    }

    fn query_price(&mut self, kind: Kind, id: u64) -> Result<Option<i64>, StmError> {
        Ok(self.table(kind).get(self.tx, &id)?.map(|row| row.price))
    }

    fn add_customer(&mut self, id: u64) -> Result<bool, StmError> {
        // Usually present: look before allocating an empty list.
        if self.tables.customers.contains_key(self.tx, &id)? {
            return Ok(false);
        }
        self.tables.customers.insert(self.tx, id, Arc::new([]))?;
        Ok(true)
    }

    fn reserve(&mut self, kind: Kind, customer: u64, id: u64) -> Result<bool, StmError> {
        let tx = self.tx;
        let rows = self.table(kind);
        // One walk to the customer's bucket: read the list, reserve the row, write the longer
        // list (the row is in another map, so its update inside the closure is allowed).
        // The outer `?` is the walk's own conflict, the inner result the row's.
        self.tables.customers.alter(tx, customer, |list| {
            let Some(list) = list else {
                return (Change::Keep, Ok(false));
            };
            let Err(at) = position(list, (kind, id)) else {
                return (Change::Keep, Ok(false));
            };
            // Read, check and update the row in one walk.
            let row = rows.alter(tx, id, |row| match row {
                Some(&row) => {
                    let mut row = row;
                    if row.make() {
                        (Change::Set(row), Some(row))
                    } else {
                        (Change::Keep, None)
                    }
                }
                None => (Change::Keep, None),
            });
            match row {
                Ok(Some(row)) => {
                    let info = ReservationInfo {
                        kind,
                        id,
                        price: row.price,
                    };
                    (Change::Set(with_inserted(list, at, info)), Ok(true))
                }
                Ok(None) => (Change::Keep, Ok(false)),
                Err(e) => (Change::Keep, Err(e)),
            }
        })?
    }

    fn query_customer_bill(&mut self, customer: u64) -> Result<Option<i64>, StmError> {
        Ok(self
            .tables
            .customers
            .get_ref(self.tx, &customer)?
            .map(|list| list.iter().map(|info| info.price).sum()))
    }

    fn delete_customer(&mut self, customer: u64) -> Result<Option<u64>, StmError> {
        let Some(list) = self.tables.customers.remove(self.tx, &customer)? else {
            return Ok(None);
        };
        for info in list.iter() {
            // Every attempt sees a consistent state (opacity), in which a reserved row exists
            // and has a used unit: STAMP's TM_RESTART cases cannot happen here.
            self.table(info.kind).alter(self.tx, info.id, |row| {
                let mut row = *row.expect("a reserved row cannot be deleted");
                assert!(row.cancel(), "a reserved row has a used unit");
                (Change::Set(row), ())
            })?;
        }
        Ok(Some(list.len() as u64))
    }

    fn add_reservation(
        &mut self,
        kind: Kind,
        id: u64,
        num: i64,
        price: Option<i64>,
    ) -> Result<bool, StmError> {
        // Read, check and insert, update or remove the row in one walk.
        self.table(kind).alter(self.tx, id, |row| match row {
            None => match price {
                Some(price) if num >= 1 && price >= 0 => {
                    (Change::Set(Reservation::new(num, price)), true)
                }
                _ => (Change::Keep, false),
            },
            Some(&row) => {
                let mut row = row;
                if !row.add_to_total(num) {
                    (Change::Keep, false)
                } else if row.total == 0 {
                    (Change::Remove, true)
                } else {
                    if let Some(price) = price.filter(|&p| p >= 0) {
                        row.price = price;
                    }
                    (Change::Set(row), true)
                }
            }
        })
    }

    fn delete_flight(&mut self, id: u64) -> Result<bool, StmError> {
        let Some(row) = self.table(Kind::Flight).get(self.tx, &id)? else {
            return Ok(false);
        };
        if row.used > 0 {
            return Ok(false);
        }
        self.add_reservation(Kind::Flight, id, -row.total, None)
    }
}

//! The clients (STAMP's `client.c`) and the initial population (`initializeManager` in
//! `vacation.c`).
//!
//! Each client draws its actions from its own seeded generator, outside any transaction, in
//! exactly the order of STAMP's draws; [`perform`] then runs one action against a [`Manager`].
//! So the same seed gives every implementation the same stream of actions, and the same
//! population.

use crate::rng::XorShift;

use super::manager::{Kind, Manager};

/// STAMP's parameters (`-n -q -u -r -t -c`).
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::client::Params;
///
/// let p = Params { number: 2, queries: 90, user: 98, relations: 1000, transactions: 5000, clients: 2 };
/// assert_eq!(p.query_range(), 900);
/// assert_eq!(p.actions_per_client(), 2500);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// `-n`: the most queries (or table updates) one action makes; each draws 1 to n.
    pub number: u64,
    /// `-q`: the percentage of the ids that actions use (ids and customers 1 to r * q / 100).
    pub queries: u64,
    /// `-u`: the percentage of make-reservation actions; the rest are half delete-customer,
    /// half update-tables.
    pub user: u64,
    /// `-r`: rows per table (and customers) at the start.
    pub relations: u64,
    /// `-t`: actions in all, split over the clients.
    pub transactions: u64,
    /// `-c`: clients, one thread each.
    pub clients: usize,
}

/// The most queries per action (`-n`) accepted: each client holds a buffer of that many.
pub const MAX_NUMBER: u64 = 1 << 20;

/// The most clients (`-c`, one thread each) accepted.
pub const MAX_CLIENTS: usize = 4096;

impl Params {
    /// The ids that actions draw from, 1 to this (STAMP's `queryRange`, rounded as it does).
    pub fn query_range(&self) -> u64 {
        (self.queries as f64 / 100.0 * self.relations as f64 + 0.5) as u64
    }

    /// Actions per client (STAMP's `numTransactionPerClient`, rounded as it does).
    pub fn actions_per_client(&self) -> u64 {
        (self.transactions as f64 / self.clients as f64 + 0.5) as u64
    }

    /// Actions run in all: `actions_per_client() * clients`.
    pub fn actions(&self) -> u64 {
        self.actions_per_client() * self.clients as u64
    }

    /// Checks that the parameters make sense.
    ///
    /// # Errors
    ///
    /// A message naming the bad parameter.
    pub fn validate(&self) -> Result<(), String> {
        if self.number == 0 {
            return Err("-n must be at least 1".into());
        }
        if self.queries > 100 || self.user > 100 {
            return Err("-q and -u are percentages (0 to 100)".into());
        }
        if self.relations == 0 || self.transactions == 0 || self.clients == 0 {
            return Err("-r, -t and -c must be at least 1".into());
        }
        if self.number > MAX_NUMBER {
            return Err(format!(
                "-n{} is more queries per action than the {MAX_NUMBER} allowed",
                self.number
            ));
        }
        if self.clients > MAX_CLIENTS {
            return Err(format!(
                "-c{} is more clients (one thread each) than the {MAX_CLIENTS} allowed",
                self.clients
            ));
        }
        if self.actions_per_client() == 0 {
            return Err(format!(
                "-t{} over -c{} clients gives each client 0 actions (-t must be at least -c/2)",
                self.transactions, self.clients
            ));
        }
        if self.query_range() == 0 {
            return Err(format!(
                "-q{} of -r{} leaves no ids to query",
                self.queries, self.relations
            ));
        }
        Ok(())
    }
}

/// One of make-reservation's queries: a row to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    /// Its table.
    pub kind: Kind,
    /// Its id.
    pub id: u64,
}

/// One of update-tables' changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    /// The table.
    pub kind: Kind,
    /// The row.
    pub id: u64,
    /// `Some(price)`: add 100 units at that price; `None`: delete (100 cars or rooms, or the
    /// whole flight).
    pub add_at_price: Option<i64>,
}

/// One client action, its random choices already drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Query rows, then reserve the dearest found of each kind for the customer (added if
    /// absent).
    MakeReservation {
        /// The customer.
        customer: u64,
        /// The rows to look at.
        queries: &'a [Query],
    },
    /// Remove the customer, if present, and cancel its reservations.
    DeleteCustomer {
        /// The customer.
        customer: u64,
    },
    /// Add or delete resources.
    UpdateTables {
        /// The changes, in order.
        updates: &'a [Update],
    },
}

/// One client: its generator and the buffers its actions borrow (STAMP's `client_t`).
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::client::{Action, Client, Params};
///
/// let p = Params { number: 4, queries: 60, user: 90, relations: 100, transactions: 10, clients: 1 };
/// let mut a = Client::new(&p, 7, 0);
/// let mut b = Client::new(&p, 7, 0);
/// for _ in 0..10 {
///     assert_eq!(a.next_action(), b.next_action(), "same seed, same stream");
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    rng: XorShift,
    number: u64,
    query_range: u64,
    user: u64,
    queries: Vec<Query>,
    updates: Vec<Update>,
}

impl Client {
    /// Client `index` of a run seeded with `seed`.
    pub fn new(params: &Params, seed: u64, index: usize) -> Self {
        Client {
            rng: XorShift::new(
                seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            ),
            number: params.number,
            query_range: params.query_range(),
            user: params.user,
            queries: Vec::with_capacity(params.number as usize),
            updates: Vec::with_capacity(params.number as usize),
        }
    }

    /// Draws the next action, as `client_run` does before its transaction begins.
    pub fn next_action(&mut self) -> Action<'_> {
        let rng = &mut self.rng;
        let range = self.query_range;
        let r = rng.below(100);
        if r < self.user {
            let count = rng.below(self.number) + 1;
            let customer = rng.below(range) + 1;
            self.queries.clear();
            for _ in 0..count {
                let kind = Kind::from_index(rng.below(3));
                let id = rng.below(range) + 1;
                self.queries.push(Query { kind, id });
            }
            Action::MakeReservation {
                customer,
                queries: &self.queries,
            }
        } else if r & 1 == 1 {
            Action::DeleteCustomer {
                customer: rng.below(range) + 1,
            }
        } else {
            let count = rng.below(self.number) + 1;
            self.updates.clear();
            for _ in 0..count {
                let kind = Kind::from_index(rng.below(3));
                let id = rng.below(range) + 1;
                let add = rng.below(2) == 1;
                let add_at_price = add.then(|| (rng.below(5) * 10 + 50) as i64);
                self.updates.push(Update {
                    kind,
                    id,
                    add_at_price,
                });
            }
            Action::UpdateTables {
                updates: &self.updates,
            }
        }
    }
}

/// Runs `action` against `manager`: the body of one case of `client_run`'s switch, between
/// `TM_BEGIN` and `TM_END`. Returns by how much it changed the number of reservations the
/// customers hold (one more per reservation made, less those of a deleted customer), for the
/// end-of-run ledger check ([`CheckReport::account`](super::check::CheckReport::account)).
///
/// # Errors
///
/// The manager's error (inside a transaction: roll back and rerun the whole action).
pub fn perform<M: Manager>(manager: &mut M, action: &Action<'_>) -> Result<i64, M::Error> {
    let mut held = 0i64;
    match *action {
        Action::MakeReservation { customer, queries } => {
            let mut max_price = [-1i64; 3];
            let mut max_id = [0u64; 3];
            let mut found = false;
            for query in queries {
                let mut price = -1;
                if manager.query_free(query.kind, query.id)?.is_some() {
                    price = manager.query_price(query.kind, query.id)?.unwrap_or(-1);
                }
                let k = query.kind as usize;
                if price > max_price[k] {
                    max_price[k] = price;
                    max_id[k] = query.id;
                    found = true;
                }
            }
            if found {
                manager.add_customer(customer)?;
            }
            for kind in Kind::ALL {
                if max_id[kind as usize] > 0
                    && manager.reserve(kind, customer, max_id[kind as usize])?
                {
                    held += 1;
                }
            }
        }
        Action::DeleteCustomer { customer } => {
            if manager.query_customer_bill(customer)?.is_some() {
                let cancelled = manager.delete_customer(customer)?.unwrap_or(0);
                held -= i64::try_from(cancelled).expect("a customer's reservations fit an i64");
            }
        }
        Action::UpdateTables { updates } => {
            for update in updates {
                match (update.add_at_price, update.kind) {
                    (Some(price), kind) => {
                        manager.add_reservation(kind, update.id, 100, Some(price))?;
                    }
                    (None, Kind::Flight) => {
                        manager.delete_flight(update.id)?;
                    }
                    (None, kind) => {
                        manager.add_reservation(kind, update.id, -100, None)?;
                    }
                }
            }
        }
    }
    Ok(held)
}

/// What a table starts with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Population {
    /// Per [`Kind`]: (id, units, price) for ids 1 to r, in STAMP's shuffled order.
    pub rows: [Vec<(u64, i64, i64)>; 3],
    /// Customer ids 1 to r, shuffled.
    pub customers: Vec<u64>,
}

/// The initial tables of a run seeded with `seed` (`initializeManager`): for cars, flights,
/// rooms and customers in turn, shuffle the ids 1 to r, then give each id
/// `((random % 5) + 1) * 100` units at `((random % 5) * 10) + 50` (customers draw the two
/// numbers too and ignore them).
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::client::population;
///
/// let p = population(10, 1);
/// assert_eq!(p.customers.len(), 10);
/// assert!(p.rows[0].iter().all(|&(_, units, price)| units % 100 == 0 && (50..=90).contains(&price)));
/// assert_eq!(p, population(10, 1));
/// ```
pub fn population(relations: u64, seed: u64) -> Population {
    let mut rng = XorShift::new(seed);
    let mut ids: Vec<u64> = (1..=relations).collect();
    let mut out = Population::default();
    for table in 0..4 {
        for _ in 0..relations {
            let x = rng.below(relations) as usize;
            let y = rng.below(relations) as usize;
            ids.swap(x, y);
        }
        let rows: Vec<(u64, i64, i64)> = ids
            .iter()
            .map(|&id| {
                let units = ((rng.below(5) + 1) * 100) as i64;
                let price = (rng.below(5) * 10 + 50) as i64;
                (id, units, price)
            })
            .collect();
        match table {
            3 => out.customers = rows.into_iter().map(|(id, _, _)| id).collect(),
            kind => out.rows[kind] = rows,
        }
    }
    out
}

//! Single-thread cost of the core's basic transactions, beside `std::sync::Mutex<u64>` and
//! fast-stm 0.7 doing the same work in the same run.
//!
//! One criterion group per operation, with `commute`, `fast-stm` and `mutex` as its functions:
//!
//! - `rmw`: read-modify-write of one variable (`x += 1`);
//! - `read`: a read-only transaction of one variable;
//! - `transfer`: move one unit between two variables (two reads, two writes);
//! - `add`: commute's commutative `add` (no read-set entry); fast-stm has no commutative update,
//!   so it runs the same `x += 1` as a read-modify-write, and the mutex a locked increment.
//!
//! Run with `cargo bench -p commute-benches --bench core` (about a minute).

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn rmw(c: &mut Criterion) {
    let mut group = c.benchmark_group("rmw");
    let var = commute_stm::TVar::new(0u64);
    group.bench_function("commute", |b| {
        b.iter(|| commute_stm::atomically(|tx| var.modify(tx, |x| x + 1)))
    });
    let fast = fast_stm::TVar::new(0u64);
    group.bench_function("fast-stm", |b| {
        b.iter(|| fast_stm::atomically(|tx| fast.modify(tx, |x| x + 1)))
    });
    let mutex = Mutex::new(0u64);
    group.bench_function("mutex", |b| {
        b.iter(|| {
            let mut guard = mutex.lock().unwrap();
            *guard += 1;
            *guard
        })
    });
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    let var = commute_stm::TVar::new(7u64);
    group.bench_function("commute", |b| {
        b.iter(|| commute_stm::atomically(|tx| var.read(tx)))
    });
    let fast = fast_stm::TVar::new(7u64);
    group.bench_function("fast-stm", |b| {
        b.iter(|| fast_stm::atomically(|tx| fast.read(tx)))
    });
    let mutex = Mutex::new(7u64);
    group.bench_function("mutex", |b| b.iter(|| *black_box(&mutex).lock().unwrap()));
    group.finish();
}

fn transfer(c: &mut Criterion) {
    let mut group = c.benchmark_group("transfer");
    let (from, to) = (
        commute_stm::TVar::new(u64::MAX / 2),
        commute_stm::TVar::new(0u64),
    );
    group.bench_function("commute", |b| {
        b.iter(|| {
            commute_stm::atomically(|tx| {
                from.modify(tx, |x| x - 1)?;
                to.modify(tx, |x| x + 1)
            })
        })
    });
    let (fast_from, fast_to) = (fast_stm::TVar::new(u64::MAX / 2), fast_stm::TVar::new(0u64));
    group.bench_function("fast-stm", |b| {
        b.iter(|| {
            fast_stm::atomically(|tx| {
                fast_from.modify(tx, |x| x - 1)?;
                fast_to.modify(tx, |x| x + 1)
            })
        })
    });
    let (mutex_from, mutex_to) = (Mutex::new(u64::MAX / 2), Mutex::new(0u64));
    group.bench_function("mutex", |b| {
        b.iter(|| {
            // Both locks, always in the same order, as a two-account transfer must.
            let mut from = mutex_from.lock().unwrap();
            let mut to = mutex_to.lock().unwrap();
            *from -= 1;
            *to += 1;
        })
    });
    group.finish();
}

fn add(c: &mut Criterion) {
    let mut group = c.benchmark_group("add");
    let var = commute_stm::TVar::new(0u64);
    group.bench_function("commute", |b| {
        b.iter(|| {
            commute_stm::atomically(|tx| {
                var.add(tx, 1);
                Ok(())
            })
        })
    });
    let fast = fast_stm::TVar::new(0u64);
    group.bench_function("fast-stm", |b| {
        b.iter(|| fast_stm::atomically(|tx| fast.modify(tx, |x| x + 1)))
    });
    let mutex = Mutex::new(0u64);
    group.bench_function("mutex", |b| b.iter(|| *mutex.lock().unwrap() += 1));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = core;
    config = config();
    targets = rmw, read, transfer, add
}
criterion_main!(core);

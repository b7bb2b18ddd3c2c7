//! Misuse and bad input: every documented panic of the core and the collections that had no
//! test elsewhere, the undocumented ones that guard the low-level API, and hostile keys.
//!
//! Already tested elsewhere (not repeated here): nested `atomically`
//! (stm/tests/progress.rs), `retry` with nothing read (stm/tests/blocking.rs), `TBox::load`
//! inside a transaction (stm/tests/tbox.rs), `TBoundedQueue::with_capacity(0)`
//! (collections/tests/bounded_queue.rs), `TCounter::with_shards(0)` and `TCounter::load` inside
//! a transaction (collections/tests/counter.rs), `TMap::with_config` with a root that is not a
//! power of two (collections/tests/map.rs), `TaskPool::run` inside a transaction
//! (collections/tests/pool.rs).
//!
//! Each panic is caught, its message checked, and the thread checked to be usable afterwards
//! (no transaction left open, the variables involved unlocked and unchanged).

use commute_test_support::with_watchdog;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};

use commute::{
    TBoundedQueue, TBox, TCounter, TMap, TQueue, TSet, TVar, atomically, in_transaction,
};
use commute_benches::rng::XorShift;
use commute_benches::soak::flood::{colliding_keys, known_hasher};

/// Runs `f`, which must panic; returns the panic message.
#[track_caller]
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        panic!("a panic without a message")
    }
}

/// `f` panics with a message containing `needle`, and leaves the thread out of any
/// transaction.
#[track_caller]
fn assert_panics_with(needle: &str, f: impl FnOnce()) {
    let message = panic_message(f);
    assert!(message.contains(needle), "`{message}` lacks `{needle}`");
    assert!(
        !in_transaction(),
        "a panic left the thread inside a transaction"
    );
}

/// Inside a transaction, every one-call method of `view` must panic (transactions do not
/// nest), and the enclosing transaction must still commit.
#[track_caller]
fn each_panics_inside_a_transaction(calls: &[(&str, &dyn Fn())]) {
    let marker = TVar::new(0u32);
    atomically(|tx| {
        for (name, call) in calls {
            let message = panic_message(call);
            assert!(
                message.contains("transactions do not nest"),
                "{name}: `{message}`"
            );
            assert!(
                in_transaction(),
                "{name}: the enclosing transaction was lost"
            );
        }
        marker.write(tx, 1);
        Ok(())
    });
    assert_eq!(marker.load(), 1, "the enclosing transaction did not commit");
    assert!(!in_transaction());
}

// ----- the core ------------------------------------------------------------------------------

#[test]
fn tbox_load_with_inside_a_transaction_panics() {
    with_watchdog(20, || {
        let b = TBox::new(vec![1u8]);
        assert_panics_with("use TBox::read(tx)", || {
            atomically(|_| Ok(b.load_with(|v| v.len())));
        });
        assert_eq!(b.load(), vec![1]);
    });
}

#[test]
fn retry_in_both_branches_with_nothing_read_panics() {
    with_watchdog(20, || {
        assert_panics_with("has read no TVar", || {
            atomically(|tx| tx.or_else(|tx| tx.retry::<()>(), |tx| tx.retry()));
        });
    });
}

#[test]
fn a_nested_atomically_from_a_commit_hook_is_allowed() {
    // Not misuse: hooks run outside the transaction (the documented way to chain work).
    let v = TVar::new(0u32);
    let w = std::rc::Rc::new(TVar::new(0u32));
    let w2 = w.clone();
    atomically(|tx| {
        v.write(tx, 1);
        let w = w2.clone();
        tx.on_commit(move || {
            atomically(|tx| {
                w.write(tx, 2);
                Ok(())
            })
        });
        Ok(())
    });
    assert_eq!((v.load(), w.load()), (1, 2));
}

#[test]
fn a_local_key_cannot_also_be_written_or_commuted() {
    with_watchdog(20, || {
        let key = TVar::new(0u64);
        assert_panics_with("transaction-local key is also read or written", || {
            atomically(|tx| {
                key.write(tx, 1);
                key.set_local(tx, 2);
                Ok(())
            });
        });
        assert_panics_with("transaction-local key cannot also be written", || {
            atomically(|tx| {
                key.set_local(tx, 2);
                key.write(tx, 1);
                Ok(())
            });
        });
        assert_panics_with("transaction-local key cannot also be written", || {
            atomically(|tx| {
                key.set_local(tx, 2);
                key.add(tx, 1);
                Ok(())
            });
        });
        assert_panics_with("transaction-local key cannot also be written", || {
            atomically(|tx| {
                key.set_local(tx, 2);
                key.commute(tx, |x| x + 1);
                Ok(())
            });
        });
        // Nothing of those attempts stayed: the variable is unchanged and not locked.
        assert_eq!(key.load(), 0);
        atomically(|tx| key.modify(tx, |x| x + 5));
        assert_eq!(key.load(), 5);
    });
}

/// `TVar::set_local` panics if the transaction also reads the key as a shared variable, before
/// or after (a read after it used to return the local value as if it were the shared one).
#[test]
fn a_local_key_cannot_also_be_read() {
    with_watchdog(20, || {
        let key = TVar::new(7u64);
        assert_panics_with("transaction-local key", || {
            atomically(|tx| {
                key.read(tx)?;
                key.set_local(tx, 2);
                Ok(())
            });
        });
        assert_panics_with("transaction-local key", || {
            let seen = atomically(|tx| {
                key.set_local(tx, 2);
                key.read(tx)
            });
            assert_eq!(
                seen, 7,
                "a shared read returned the transaction-local value"
            );
        });
    });
}

/// Registers a publishing operation that adds one.
fn publish_increment(v: &TVar<u64>, tx: &commute::Transaction) {
    // SAFETY: the operation neither panics nor touches any memory besides the new value.
    unsafe { v.publish_on_commit(tx, |x, _| x + 1) };
}

#[test]
fn publishing_cannot_be_mixed_with_writes_commutes_or_local_values() {
    with_watchdog(20, || {
        let v = TVar::new(10u64);
        assert_panics_with(
            "publish_on_commit on a TVar that this transaction also writes",
            || {
                atomically(|tx| {
                    v.write(tx, 1);
                    publish_increment(&v, tx);
                    Ok(())
                });
            },
        );
        assert_panics_with(
            "publish_on_commit on a TVar that this transaction also writes",
            || {
                atomically(|tx| {
                    v.add(tx, 1);
                    publish_increment(&v, tx);
                    Ok(())
                });
            },
        );
        assert_panics_with(
            "commit-time publishing operations cannot also be written",
            || {
                atomically(|tx| {
                    publish_increment(&v, tx);
                    v.write(tx, 1);
                    Ok(())
                });
            },
        );
        assert_panics_with(
            "commit-time publishing operations cannot also be written",
            || {
                atomically(|tx| {
                    publish_increment(&v, tx);
                    v.commute(tx, |x| x * 2);
                    Ok(())
                });
            },
        );
        assert_panics_with("transaction-local key is also read or written", || {
            atomically(|tx| {
                publish_increment(&v, tx);
                v.set_local(tx, 3);
                Ok(())
            });
        });
        assert_eq!(v.load(), 10, "a rolled-back publish was applied");
        // Reading and publishing the same variable is allowed: the read sees the committed value.
        let seen = atomically(|tx| {
            publish_increment(&v, tx);
            v.read(tx)
        });
        assert_eq!((seen, v.load()), (10, 11));
    });
}

// ----- the collections' constructors ----------------------------------------------------------

#[test]
fn map_and_set_shapes_must_be_powers_of_two_and_leaves_non_empty() {
    type M = TMap<u8, u8>;
    let root = "root_slots must be a power of two";
    let inner = "inner_slots must be a power of two";
    let leaf = "leaf_capacity must be at least 1";
    let cases: [(&str, (usize, usize, usize)); 7] = [
        (root, (0, 2, 1)),
        (root, (1 << 17, 2, 1)),
        (inner, (2, 1, 1)),
        (inner, (2, 3, 1)),
        (inner, (2, 1 << 17, 1)),
        (leaf, (2, 2, 0)),
        (root, (6, 16, 8)),
    ];
    for (needle, (r, i, l)) in cases {
        assert_panics_with(needle, || drop(M::with_config(r, i, l)));
        assert_panics_with(needle, || {
            drop(TMap::<u8, u8, _>::with_config_and_hasher(
                r,
                i,
                l,
                known_hasher(),
            ))
        });
        assert_panics_with(needle, || drop(TSet::<u8>::with_config(r, i, l)));
    }
    // The extremes that are allowed.
    let m = M::with_config(1, 1 << 16, 1);
    m.atomic().insert(1, 1);
    let m = M::with_config(1 << 16, 2, 1);
    m.atomic().insert(1, 1);
    assert_eq!(m.atomic().get(&1), Some(1));
}

// ----- one-call forms inside a transaction ------------------------------------------------------

#[test]
fn counter_one_call_forms_panic_inside_a_transaction() {
    with_watchdog(20, || {
        let c = TCounter::new();
        each_panics_inside_a_transaction(&[
            ("add", &|| c.atomic().add(1)),
            ("incr", &|| c.atomic().incr()),
            ("decr", &|| c.atomic().decr()),
            ("get", &|| {
                let _ = c.atomic().get();
            }),
            ("load", &|| {
                let _ = c.load();
            }),
        ]);
        assert_eq!(c.load(), 0);
    });
}

#[test]
fn queue_one_call_forms_panic_inside_a_transaction() {
    with_watchdog(20, || {
        let q: TQueue<String> = TQueue::new();
        q.atomic().push("kept".to_string());
        each_panics_inside_a_transaction(&[
            ("push", &|| q.atomic().push("lost".to_string())),
            ("pop", &|| {
                let _ = q.atomic().pop();
            }),
            ("pop_wait", &|| {
                let _ = q.atomic().pop_wait();
            }),
            ("peek", &|| {
                let _ = q.atomic().peek();
            }),
            ("len", &|| {
                let _ = q.atomic().len();
            }),
            ("is_empty", &|| {
                let _ = q.atomic().is_empty();
            }),
        ]);
        assert_eq!(q.atomic().pop().as_deref(), Some("kept"));
        assert_eq!(q.atomic().pop(), None);
    });
}

#[test]
fn bounded_queue_one_call_forms_panic_inside_a_transaction() {
    with_watchdog(20, || {
        let q: TBoundedQueue<u32> = TBoundedQueue::with_capacity(2);
        q.atomic().push(1);
        each_panics_inside_a_transaction(&[
            ("push", &|| q.atomic().push(2)),
            ("try_push", &|| {
                let _ = q.atomic().try_push(2);
            }),
            ("pop", &|| {
                let _ = q.atomic().pop();
            }),
            ("pop_wait", &|| {
                let _ = q.atomic().pop_wait();
            }),
            ("peek", &|| {
                let _ = q.atomic().peek();
            }),
            ("len", &|| {
                let _ = q.atomic().len();
            }),
            ("is_empty", &|| {
                let _ = q.atomic().is_empty();
            }),
        ]);
        // The capacity accounting is intact: one item in, room for exactly one more.
        assert_eq!(q.atomic().try_push(2), Ok(()));
        assert_eq!(q.atomic().try_push(3), Err(3));
        assert_eq!((q.atomic().pop(), q.atomic().pop()), (Some(1), Some(2)));
    });
}

#[test]
fn map_one_call_forms_panic_inside_a_transaction() {
    with_watchdog(20, || {
        let m: TMap<u32, u32> = TMap::new();
        m.atomic().insert(1, 10);
        each_panics_inside_a_transaction(&[
            ("get", &|| {
                let _ = m.atomic().get(&1);
            }),
            ("contains_key", &|| {
                let _ = m.atomic().contains_key(&1);
            }),
            ("insert", &|| {
                let _ = m.atomic().insert(2, 20);
            }),
            ("insert_if_absent", &|| {
                let _ = m.atomic().insert_if_absent(2, 20);
            }),
            ("remove", &|| {
                let _ = m.atomic().remove(&1);
            }),
            ("upsert", &|| m.atomic().upsert(1, || 0, |v| *v += 1)),
            ("alter", &|| {
                m.atomic().alter(1, |_| (commute::Change::Remove, ()));
            }),
            ("len", &|| {
                let _ = m.atomic().len();
            }),
            ("is_empty", &|| {
                let _ = m.atomic().is_empty();
            }),
            ("iter", &|| {
                let _ = m.atomic().iter();
            }),
            ("keys", &|| {
                let _ = m.atomic().keys();
            }),
            ("clear", &|| m.atomic().clear()),
            ("retain", &|| m.atomic().retain(|_, _| false)),
        ]);
        assert_eq!(m.atomic().iter(), vec![(1, 10)]);
    });
}

#[test]
fn set_one_call_forms_panic_inside_a_transaction() {
    with_watchdog(20, || {
        let s: TSet<u32> = TSet::new();
        s.atomic().insert(1);
        each_panics_inside_a_transaction(&[
            ("insert", &|| {
                let _ = s.atomic().insert(2);
            }),
            ("remove", &|| {
                let _ = s.atomic().remove(&1);
            }),
            ("contains", &|| {
                let _ = s.atomic().contains(&1);
            }),
            ("len", &|| {
                let _ = s.atomic().len();
            }),
            ("is_empty", &|| {
                let _ = s.atomic().is_empty();
            }),
            ("iter", &|| {
                let _ = s.atomic().iter();
            }),
            ("toggle", &|| {
                let _ = s.atomic().toggle(1);
            }),
            ("clear", &|| s.atomic().clear()),
            ("retain", &|| s.atomic().retain(|_| false)),
        ]);
        assert_eq!(s.atomic().iter(), vec![1]);
    });
}

// ----- the benches' own helpers ------------------------------------------------------------------

#[test]
fn rng_below_zero_panics() {
    assert_panics_with("below(0)", || {
        let _ = XorShift::new(1).below(0);
    });
}

#[test]
fn colliding_keys_needs_bits_below_64_and_a_thread() {
    assert_panics_with("bits below 64", || {
        drop(colliding_keys(&known_hasher(), 64, 1, 1))
    });
    assert_panics_with("at least one thread", || {
        drop(colliding_keys(&known_hasher(), 4, 1, 0))
    });
}

// ----- hostile keys --------------------------------------------------------------------------------

/// Keys whose hashes share their low 12 bits under the known hasher all fall under one root slot
/// of a 4096-slot map that uses that hasher; with the default (randomly seeded) hasher they
/// spread over the root. Both maps stay correct. (The timings of the same experiment, with 20
/// shared bits, are in the soak's output.)
#[test]
fn keys_colliding_under_a_known_hasher_spread_under_the_default_one() {
    let known = known_hasher();
    let keys = colliding_keys(&known, 12, 200, 2);
    let target = known.hash_one(keys[0]) & 0xfff;
    assert!(keys.iter().all(|k| known.hash_one(k) & 0xfff == target));

    let flooded: TMap<u64, u64, _> = TMap::with_config_and_hasher(1 << 12, 16, 8, known_hasher());
    let defended: TMap<u64, u64> = TMap::with_config(1 << 12, 16, 8);
    let roots = |f: &dyn Fn(&u64) -> usize| keys.iter().map(f).collect::<HashSet<usize>>();
    assert_eq!(roots(&|k| flooded.root_index(k)).len(), 1);
    let spread = roots(&|k| defended.root_index(k)).len();
    // 200 random picks of 4096 slots: about 195 distinct; 150 is far in the tail.
    assert!(
        spread >= 150,
        "the default hasher put 200 keys in {spread} root slots"
    );

    for map in [&flooded as &dyn MapLike, &defended] {
        for &k in &keys {
            map.insert(k);
        }
        assert_eq!(map.len(), keys.len());
        assert!(keys.iter().all(|&k| map.get(k) == Some(k * 3)));
    }
}

/// A hasher that gives every key the same hash: the trie runs out of hash bits and the leaf
/// grows past its capacity. Slow, but it must stay a correct map.
#[derive(Clone, Default)]
struct SameHash;

impl BuildHasher for SameHash {
    type Hasher = SameHasher;
    fn build_hasher(&self) -> SameHasher {
        SameHasher
    }
}

struct SameHasher;

impl Hasher for SameHasher {
    fn finish(&self) -> u64 {
        0x5555_5555_5555_5555
    }
    fn write(&mut self, _: &[u8]) {}
}

#[test]
fn a_hasher_that_always_collides_still_gives_a_correct_map() {
    let map: TMap<u32, u32, SameHash> = TMap::with_hasher(SameHash);
    let mut model = HashMap::new();
    let mut rng = XorShift::new(9);
    for _ in 0..600 {
        let k = rng.below(150) as u32;
        if rng.below(3) == 0 {
            assert_eq!(map.atomic().remove(&k), model.remove(&k));
        } else {
            let v = rng.below(1000) as u32;
            assert_eq!(map.atomic().insert(k, v), model.insert(k, v));
        }
    }
    let mut found = map.atomic().iter();
    found.sort_unstable();
    let mut want: Vec<_> = model.into_iter().collect();
    want.sort_unstable();
    assert_eq!(found, want);
    assert_eq!(map.atomic().len(), want.len());
    let set: TSet<u32, SameHash> = TSet::with_hasher(SameHash);
    for k in 0..100 {
        assert!(set.atomic().insert(k));
    }
    assert!((0..100).all(|k| set.atomic().contains(&k)));
    assert!(!set.atomic().contains(&100));
}

/// The two maps of the flooding test behind one interface.
trait MapLike {
    fn insert(&self, k: u64);
    fn get(&self, k: u64) -> Option<u64>;
    fn len(&self) -> usize;
}

impl<S: BuildHasher> MapLike for TMap<u64, u64, S> {
    fn insert(&self, k: u64) {
        self.atomic().insert(k, k * 3);
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.atomic().get(&k)
    }
    fn len(&self) -> usize {
        self.atomic().len()
    }
}

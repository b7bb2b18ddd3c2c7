//! `TVar::commit_owned_alone_through`: the commit "read `path` and this variable, write this
//! variable" succeeds only if every variable of `path` is unchanged since it was read (a commit
//! that replaced a node on the way made this variable unreachable).

use commute_stm::{OwnedWord, TVar, atomically};

#[path = "common/owned.rs"]
mod owned;

/// A boxed `u64`, or null.
type Owned = owned::Owned<u64>;

fn owned(n: u64) -> Owned {
    Owned::new(n)
}

fn value(v: &TVar<Owned>) -> Option<u64> {
    let p = v.load().0;
    // SAFETY: no transaction runs; the box is alive while the variable holds it.
    (!p.is_null()).then(|| unsafe { *p })
}

#[test]
fn a_commit_through_a_path_that_changed_is_refused() {
    let inner = [TVar::new(owned(1)), TVar::new(owned(2))];
    let leaf = TVar::new(owned(3));

    // Unchanged path: commits.
    let seen_path: Vec<_> = inner.iter().map(|v| (v, v.load_seen().1)).collect();
    let (_, seen) = leaf.load_seen();
    // SAFETY: every value of these variables is owned by its variable alone.
    unsafe { leaf.commit_owned_alone_through(seen, owned(30), seen_path) }
        .unwrap_or_else(|_| panic!("nothing changed"));
    assert_eq!(value(&leaf), Some(30));

    // Each variable of the path changed in turn (by a transaction, then by a commit alone)
    // after it was read: refused, the value given back, the leaf unchanged.
    for changed in 0..inner.len() {
        let seen_path: Vec<_> = inner.iter().map(|v| (v, v.load_seen().1)).collect();
        let (_, seen) = leaf.load_seen();
        if changed == 0 {
            atomically(|tx| {
                // SAFETY: a fresh box that nothing else owns.
                unsafe { inner[0].write_owned(tx, owned(10)) };
                Ok(())
            });
        } else {
            let (_, s) = inner[changed].load_seen();
            // SAFETY: as above.
            unsafe { inner[changed].commit_owned_alone(s, owned(20)) }
                .unwrap_or_else(|_| panic!("nobody else commits"));
        }
        // SAFETY: as above.
        let refused = unsafe { leaf.commit_owned_alone_through(seen, owned(99), seen_path) };
        match refused {
            Ok(()) => panic!(
                "a commit through a path whose variable {changed} changed since it was read \
                 committed"
            ),
            // SAFETY: given back, owned by us.
            Err(back) => unsafe {
                assert_eq!(*back.0, 99);
                back.free();
            },
        }
        assert_eq!(value(&leaf), Some(30));
    }
    assert_eq!((value(&inner[0]), value(&inner[1])), (Some(10), Some(20)));
    // SAFETY: no transaction runs; each value freed once.
    unsafe {
        for v in inner {
            v.into_inner().free();
        }
        leaf.into_inner().free();
    }
    commute_stm::reclaim_retired();
}

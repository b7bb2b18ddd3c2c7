//! Task ids count up over the pool's life, children included: after a run whose tasks added
//! children, the next task added gets the id after the last child's, never one of theirs.

mod common;

use std::sync::{Arc, Mutex};

use commute::TaskPool;

#[test]
fn ids_after_a_run_with_children_follow_the_children() {
    common::with_watchdog(20, || {
        for ordered in [false, true] {
            let mut pool = if ordered {
                TaskPool::ordered()
            } else {
                TaskPool::new()
            }
            .with_threads(2);
            let seen = Arc::new(Mutex::new(Vec::new()));
            let s = seen.clone();
            let root = pool.add(move |tx, ctx| {
                s.lock().unwrap().push(ctx.task().index());
                for _ in 0..3 {
                    let s = s.clone();
                    ctx.add(tx, move |_, ctx| {
                        s.lock().unwrap().push(ctx.task().index());
                        Ok(())
                    });
                }
                Ok(())
            });
            assert_eq!(root.index(), 0);
            assert_eq!(pool.run().unwrap().tasks, 4);
            let mut ids = seen.lock().unwrap().clone();
            ids.sort_unstable();
            assert_eq!(ids, [0, 1, 2, 3], "the root and its three children");

            // The next run: a new root, and its child, after the children of the first run.
            let s = seen.clone();
            let next = pool.add(move |tx, ctx| {
                s.lock().unwrap().push(ctx.task().index());
                let s = s.clone();
                ctx.add(tx, move |_, ctx| {
                    s.lock().unwrap().push(ctx.task().index());
                    Ok(())
                });
                Ok(())
            });
            assert_eq!(next.index(), 4, "ordered: {ordered}");
            assert_eq!(pool.run().unwrap().tasks, 2);
            let mut ids = seen.lock().unwrap().clone();
            ids.sort_unstable();
            assert_eq!(ids, [0, 1, 2, 3, 4, 5], "ordered: {ordered}");
            assert_eq!(pool.add(|_, _| Ok(())).index(), 6);
        }
    });
}

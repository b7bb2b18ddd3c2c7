//! Sizes too large to allocate: `TaskPool::with_threads` took any count but 0, and `run` then
//! built a queue per thread (`usize::MAX`: std's bare "capacity overflow"; `1 << 40`: the
//! process aborted on a failed allocation); `TCounter::with_shards` took any count up to
//! `usize::MAX / 2 + 1` (`1 << 60`: "capacity overflow"; `1 << 40`: an abort). Both now refuse
//! counts above their documented maximum at once, naming it.

use commute::{TCounter, TaskPool};
use std::panic::{AssertUnwindSafe, catch_unwind};

fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("refused");
    commute_test_support::panic_message(&*payload)
}

#[test]
fn a_pool_of_too_many_threads_is_refused_when_built() {
    for threads in [TaskPool::MAX_THREADS + 1, 1 << 40, usize::MAX] {
        let message = panic_message(|| drop(TaskPool::new().with_threads(threads)));
        assert!(message.contains("threads is too many"), "{message}");
        let message = panic_message(|| drop(TaskPool::ordered().with_threads(threads)));
        assert!(message.contains("threads is too many"), "{message}");
    }
    assert_eq!(
        TaskPool::new()
            .with_threads(TaskPool::MAX_THREADS)
            .threads(),
        TaskPool::MAX_THREADS
    );
}

#[test]
fn a_counter_of_too_many_shards_is_refused() {
    for shards in [TCounter::MAX_SHARDS + 1, 1 << 40, 1 << 60, usize::MAX] {
        let message = panic_message(|| drop(TCounter::with_shards(shards)));
        assert!(message.contains("shards is too many"), "{message}");
    }
    let most = TCounter::with_shards(TCounter::MAX_SHARDS);
    assert_eq!(most.shard_count(), TCounter::MAX_SHARDS);
    most.atomic().add(3);
    assert_eq!(most.atomic().get(), 3);
}

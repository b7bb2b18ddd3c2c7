//! `AppState::next_job`, the state's own wait for a job: counted in `/stats`'s `waiting` while
//! it waits, it takes the job pushed later; cancelled, it is uncounted and takes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use commute_server::{AppState, Mode};
use commute_test_support::with_watchdog;

/// Yields to the runtime until `state` counts `n` waiters, for at most 10 s.
async fn until_waiting(state: &AppState, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = state.stats().waiting;
        if waiting == n || Instant::now() > deadline {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn waits_counted_and_cancel_safe(mode: Mode) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let state = Arc::new(AppState::new(mode));
        let waiter = tokio::spawn({
            let state = state.clone();
            async move { state.next_job().await }
        });
        assert_eq!(
            until_waiting(&state, 1).await,
            1,
            "{mode:?}: counted while it waits"
        );
        state.push_job("resize 1".to_owned());
        let job = tokio::time::timeout(Duration::from_secs(20), waiter)
            .await
            .expect("the waiter was woken")
            .unwrap();
        assert_eq!(job, "resize 1", "{mode:?}");
        let stats = state.stats();
        assert_eq!((stats.jobs, stats.waiting), (0, 0), "{mode:?}");

        let cancelled = tokio::spawn({
            let state = state.clone();
            async move { state.next_job().await }
        });
        assert_eq!(
            until_waiting(&state, 1).await,
            1,
            "{mode:?}: the second waits"
        );
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        assert_eq!(
            until_waiting(&state, 0).await,
            0,
            "{mode:?}: uncounted once cancelled"
        );
        state.push_job("resize 2".to_owned());
        assert_eq!(
            state.stats().jobs,
            1,
            "{mode:?}: the cancelled waiter took nothing"
        );
        assert_eq!(state.next_job().await, "resize 2", "{mode:?}");
    });
}

#[test]
fn next_job_is_counted_and_cancel_safe_commute() {
    with_watchdog(60, || waits_counted_and_cancel_safe(Mode::Commute));
}

#[test]
fn next_job_is_counted_and_cancel_safe_mutex() {
    with_watchdog(60, || waits_counted_and_cancel_safe(Mode::Mutex));
}

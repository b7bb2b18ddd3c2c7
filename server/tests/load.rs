//! The server under load from a real HTTP client (hyper, keep-alive connections), in both
//! state modes: `/stats` must account for every hit exactly. And `/next-job` waits for a job
//! posted after it is known to be waiting.

use std::collections::HashSet;
use std::time::Duration;

use commute_server::client::{Connection, run_load, user_of};
use commute_server::state::Stats;
use commute_server::{Mode, start_in_process};
use commute_test_support::with_watchdog;

const REQUESTS: usize = 2_000;
const CONNECTIONS: usize = 32;
const USERS: usize = 50;

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn load_then_check(mode: Mode) {
    let server = start_in_process(mode, 2).unwrap();
    let addr = server.addr;
    let stats = client_runtime().block_on(async move {
        let report = run_load(addr, CONNECTIONS, REQUESTS, USERS).await.unwrap();
        assert_eq!(report.requests, REQUESTS);
        let mut conn = Connection::open(addr).await.unwrap();
        Stats::from_json(&conn.get("/stats").await.unwrap()).unwrap()
    });
    let users: HashSet<usize> = (0..REQUESTS).map(|i| user_of(i, USERS)).collect();
    let hits = REQUESTS as u64;
    assert_eq!(stats.requests, hits, "{mode:?}: {stats:?}");
    assert_eq!(stats.log_len, hits, "{mode:?}: {stats:?}");
    assert_eq!(stats.hits_sum, hits, "{mode:?}: {stats:?}");
    assert_eq!(stats.sessions, users.len() as u64, "{mode:?}: {stats:?}");
    assert_eq!(server.state.stats(), stats, "nothing changed after the run");
}

#[test]
fn load_commute_state() {
    with_watchdog(60, || load_then_check(Mode::Commute));
}

#[test]
fn load_mutex_state() {
    with_watchdog(60, || load_then_check(Mode::Mutex));
}

/// Snapshots taken while hits are in flight must be consistent: every hit is counted in
/// the counter, the sessions and the log, or in none of them.
#[test]
fn stats_during_load_are_consistent() {
    with_watchdog(60, || {
        let server = start_in_process(Mode::Commute, 2).unwrap();
        let addr = server.addr;
        client_runtime().block_on(async move {
            let load = tokio::spawn(run_load(addr, 16, REQUESTS, USERS));
            let mut conn = Connection::open(addr).await.unwrap();
            let mut last = 0;
            while !load.is_finished() {
                let s = Stats::from_json(&conn.get("/stats").await.unwrap()).unwrap();
                assert_eq!(s.requests, s.log_len, "{s:?}");
                assert_eq!(s.requests, s.hits_sum, "{s:?}");
                assert!(s.requests >= last, "snapshots go forward");
                last = s.requests;
            }
            load.await.unwrap().unwrap();
        });
    });
}

fn next_job_waits(mode: Mode) {
    let server = start_in_process(mode, 2).unwrap();
    let addr = server.addr;
    client_runtime().block_on(async move {
        let mut waiter = Connection::open(addr).await.unwrap();
        let waiting = tokio::spawn(async move { waiter.get("/next-job").await.unwrap() });
        let mut conn = Connection::open(addr).await.unwrap();
        // Post only once the server reports the request waiting (not a sleep: a condition).
        loop {
            let s = Stats::from_json(&conn.get("/stats").await.unwrap()).unwrap();
            // On commute, also until its transaction retried and registered its waker: the
            // job then arrives through a wake, not through a first attempt that finds it.
            let parked = mode == Mode::Mutex || commute::pending_async_registrations() > 0;
            if s.waiting == 1 && parked {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "no job yet, so nothing to return");
        assert_eq!(conn.post("/job", "thumbnail 42").await.unwrap(), "queued");
        // Bounded: a lost wake-up fails here instead of hanging.
        let job = tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .expect("the waiting /next-job was woken")
            .unwrap();
        assert_eq!(job, "thumbnail 42");
        let s = Stats::from_json(&conn.get("/stats").await.unwrap()).unwrap();
        assert_eq!((s.jobs, s.waiting), (0, 0));
    });
}

#[test]
fn next_job_waits_for_a_later_post_commute() {
    with_watchdog(60, || next_job_waits(Mode::Commute));
}

#[test]
fn next_job_waits_for_a_later_post_mutex() {
    with_watchdog(60, || next_job_waits(Mode::Mutex));
}

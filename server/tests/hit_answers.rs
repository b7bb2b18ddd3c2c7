//! `GET /hit/{user}` answers that user's own hit count, in both state modes: interleaved users
//! each count from 1, whatever the others did (the load tests check only `/stats`, and the
//! crate's example only the commute state with one user).

use commute_server::client::Connection;
use commute_server::state::Stats;
use commute_server::{Mode, start_in_process};
use commute_test_support::with_watchdog;

fn answers_count_per_user(mode: Mode) {
    let server = start_in_process(mode, 1).unwrap();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client.block_on(async {
        let mut conn = Connection::open(server.addr).await.unwrap();
        let mut model = std::collections::HashMap::new();
        for user in ["ada", "bob", "ada", "ada", "cy", "bob", "ada", "cy"] {
            let want = {
                let n = model.entry(user).or_insert(0u64);
                *n += 1;
                *n
            };
            let got = conn.get(&format!("/hit/{user}")).await.unwrap();
            assert_eq!(got, want.to_string(), "{mode:?}: hit {want} of {user}");
        }
        let stats = Stats::from_json(&conn.get("/stats").await.unwrap()).unwrap();
        assert_eq!(
            (
                stats.requests,
                stats.sessions,
                stats.log_len,
                stats.hits_sum
            ),
            (8, 3, 8, 8),
            "{mode:?}"
        );
    });
}

#[test]
fn each_users_hits_are_counted_apart_commute() {
    with_watchdog(30, || answers_count_per_user(Mode::Commute));
}

#[test]
fn each_users_hits_are_counted_apart_mutex() {
    with_watchdog(30, || answers_count_per_user(Mode::Mutex));
}

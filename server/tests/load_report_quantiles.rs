//! `LoadReport::quantile` (the `load` benchmark's p50 and p99): the latency below which the
//! fraction `q` of the requests finished, on sorted latencies, at the ends and in between.

use std::time::Duration;

use commute_server::client::LoadReport;

#[test]
fn quantiles_pick_the_right_latency() {
    let ms = Duration::from_millis;
    let report = LoadReport {
        requests: 100,
        elapsed: Duration::from_secs(2),
        latencies: (1..=100).map(ms).collect(),
    };
    assert_eq!(report.quantile(0.0), ms(1));
    assert_eq!(report.quantile(0.01), ms(1));
    assert_eq!(report.quantile(0.5), ms(50));
    assert_eq!(report.quantile(0.99), ms(99));
    assert_eq!(report.quantile(1.0), ms(100));
    assert_eq!(report.per_second(), 50.0);
    let one = LoadReport {
        requests: 1,
        elapsed: Duration::from_secs(1),
        latencies: vec![ms(7)],
    };
    assert_eq!((one.quantile(0.5), one.quantile(0.99)), (ms(7), ms(7)));
    let none = LoadReport {
        requests: 0,
        elapsed: Duration::from_secs(1),
        latencies: Vec::new(),
    };
    assert_eq!(none.quantile(0.5), Duration::ZERO);
}

use commute_stm::{TBox, TVar, atomically, stats};
use std::sync::Arc;

#[test]
fn two_thread_increments_are_exact() {
    let v = Arc::new(TVar::new(0u64));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let v = v.clone();
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    atomically(|tx| v.modify(tx, |x| x + 1));
                }
                stats::thread()
            })
        })
        .collect();
    let s: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(v.load(), 200_000);
    eprintln!("{:?}", s.iter().map(|s| (s.commits, s.aborts())).collect::<Vec<_>>());
}

#[test]
fn tbox_churn() {
    let b = Arc::new(TBox::new(vec![0u64; 4]));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    atomically(|tx| {
                        let mut v = b.read(tx)?.clone();
                        v[0] += 1;
                        b.write(tx, v);
                        Ok(())
                    });
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(b.load()[0], 40_000);
}

//! A `TVar` of each pointer type (`*const T`, `*mut T`, `NonNull<T>`, `Option<NonNull<T>>`)
//! gives back the exact address written, null and `None` included, and addresses with low
//! (tag) bits set or high bits set, through `new`/`load`, `write`/`read` and `replace`. No
//! pointer is dereferenced: the addresses are only compared.

use commute_stm::{TVar, Word, atomically};
use core::ptr::NonNull;

/// Addresses a pointer word must keep exactly: a real one, its neighbours with tag bits,
/// and some with high bits set.
fn addresses(real: usize) -> Vec<usize> {
    vec![
        real,
        real | 1,
        real | 7,
        1,
        usize::MAX,
        usize::MAX - 7,
        1 << (usize::BITS - 1),
        usize::MAX >> 17 << 12,
    ]
}

/// Writes every value into a fresh and a shared variable and reads it back every way.
fn round_trips<T: Word + PartialEq + core::fmt::Debug>(start: T, values: &[T]) {
    let shared = TVar::new(start);
    let mut previous = start;
    for &value in values {
        assert_eq!(TVar::new(value).load(), value, "new then load");
        assert_eq!(
            atomically(|tx| TVar::new(value).read(tx)),
            value,
            "new then read"
        );
        let (old, now) = atomically(|tx| {
            let old = shared.replace(tx, value)?;
            Ok((old, shared.read(tx)?))
        });
        assert_eq!((old, now), (previous, value), "replace then read");
        assert_eq!(shared.load(), value, "committed write then load");
        previous = value;
    }
}

#[test]
fn pointer_words_read_back_bit_for_bit() {
    let target = 5u64;
    let real = &target as *const u64 as usize;
    let addrs = addresses(real);

    let consts: Vec<*const u64> = addrs.iter().map(|&a| a as *const u64).collect();
    round_trips(core::ptr::null(), &consts);
    round_trips(consts[0], &[core::ptr::null()]);

    let muts: Vec<*mut u64> = addrs.iter().map(|&a| a as *mut u64).collect();
    round_trips(core::ptr::null_mut(), &muts);
    round_trips(muts[0], &[core::ptr::null_mut()]);

    let non_null: Vec<NonNull<u64>> = addrs
        .iter()
        .map(|&a| NonNull::new(a as *mut u64).unwrap())
        .collect();
    round_trips(non_null[0], &non_null);

    let options: Vec<Option<NonNull<u64>>> =
        non_null.iter().copied().map(Some).chain([None]).collect();
    round_trips(None, &options);
    round_trips(Some(non_null[0]), &[None, Some(non_null[1]), None]);
}

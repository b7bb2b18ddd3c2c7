//! `{:?}` of a `TBox` inside a transaction reads nothing (it would read outside the
//! transaction, which `TBox::load_with` refuses with a panic) and says so; outside, it shows
//! the committed value, the one a transaction's write left.

use commute_stm::{TBox, atomically};

#[test]
fn debug_of_a_tbox_inside_a_transaction_reads_nothing() {
    let b = TBox::new(vec![1u32, 2]);
    let inside = atomically(|tx| {
        let before = format!("{b:?}");
        b.write(tx, vec![3]);
        Ok((before, format!("{b:?}")))
    });
    assert_eq!(
        inside,
        (
            String::from("TBox { value: <in a transaction> }"),
            String::from("TBox { value: <in a transaction> }")
        )
    );
    assert_eq!(format!("{b:?}"), "TBox { value: [3] }");
    // A box inside a box: the outer one's load shows the inner one's value, outside.
    let outer = TBox::new(TBox::new(7u8));
    let inside = atomically(|_| Ok(format!("{outer:?}")));
    assert_eq!(inside, "TBox { value: <in a transaction> }");
    assert_eq!(format!("{outer:?}"), "TBox { value: TBox { value: 7 } }");
}

//! `{:?}` of a `TVar` names it as statistics do: by its label when it has one (given with
//! `with_label` or `set_label`), else by the place it was created; with the committed value
//! outside a transaction.

use commute_stm::{TVar, atomically};

#[test]
fn debug_of_a_tvar_shows_its_label_or_its_creation_site() {
    let plain = TVar::new(9u32);
    let site = plain.created_at();
    assert_eq!(
        format!("{plain:?}"),
        format!("TVar {{ value: 9, created_at: {site} }}")
    );

    let labelled = TVar::new(-3i64).with_label("balance");
    assert_eq!(
        format!("{labelled:?}"),
        "TVar { value: -3, label: \"balance\" }"
    );

    let mut renamed = TVar::new('x');
    renamed.set_label("initial");
    atomically(|tx| {
        renamed.write(tx, 'y');
        Ok(())
    });
    assert_eq!(
        format!("{renamed:?}"),
        "TVar { value: 'y', label: \"initial\" }"
    );
    let inside = atomically(|_| Ok(format!("{renamed:?}")));
    assert_eq!(
        inside,
        "TVar { value: <in a transaction>, label: \"initial\" }"
    );
}

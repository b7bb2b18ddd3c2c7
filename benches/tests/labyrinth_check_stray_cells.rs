//! labyrinth's grid check counts the cells that hold each path's id: a path's id on a cell
//! outside its path (a cell a rip-up left behind, or a route written one cell too wide) fails
//! it, for a routed pair and for an unrouted one (whose id may hold only its endpoints).

use commute_benches::apps::labyrinth::{LabyrinthParams, Pair, check_grid};

/// One row of six cells; pair 1 from cell 0 to cell 3.
fn row() -> (LabyrinthParams, [Pair; 1]) {
    let p = LabyrinthParams {
        x: 6,
        y: 1,
        z: 1,
        paths: 1,
    };
    (p, [Pair { src: 0, dst: 3 }])
}

#[test]
fn a_routed_paths_id_on_an_extra_cell_fails_the_check() {
    let (p, pairs) = row();
    let path = Some(vec![0, 1, 2, 3]);
    let grid = [1, 1, 1, 1, 0, 0];
    assert_eq!(
        check_grid(&p, &grid, &pairs, std::slice::from_ref(&path)),
        Ok(1)
    );
    let stray = [1, 1, 1, 1, 0, 1];
    let err = check_grid(&p, &stray, &pairs, &[path]).unwrap_err();
    assert!(err.contains("5 cells hold path 1, which has 4"), "{err}");
}

#[test]
fn an_unrouted_pairs_id_beyond_its_endpoints_fails_the_check() {
    let (p, pairs) = row();
    assert_eq!(check_grid(&p, &[1, 0, 0, 1, 0, 0], &pairs, &[None]), Ok(0));
    // A ripped-up path whose middle cell was not cleared.
    let err = check_grid(&p, &[1, 0, 1, 1, 0, 0], &pairs, &[None]).unwrap_err();
    assert!(err.contains("3 cells hold path 1, which has 2"), "{err}");
}

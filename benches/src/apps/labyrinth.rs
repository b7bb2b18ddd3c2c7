//! STAMP's labyrinth: Lee routing of many paths through a 3-D grid, each route one
//! transaction, and a variant whose routers block in `retry` while a rip-up thread clears
//! paths.
//!
//! Follows STAMP's `labyrinth/router.c`: a router takes the next pair of endpoints, copies the
//! grid privately (plain loads, outside any transaction), expands a breadth-first wave from the
//! source over free cells until it reaches the destination, traces the shortest path back, and
//! then, in one transaction, reads every cell of the path (each must still be free) and writes
//! its id into them. A cell another route took meanwhile makes the transaction give up, and
//! the router starts again from a fresh copy (STAMP's `TM_RESTART`). A pair with no free path
//! on the copy is left unrouted. Each cell is a `TVar<u32>` (0 free, else the id of the path on
//! it); endpoints are reserved for their pair from the start, and no two endpoints are
//! neighbours, so that a grid with no paths on it always connects every pair. What differs from
//! STAMP: unit-cost expansion (no bend costs), pairs drawn from a seeded generator (no input
//! files), and a smaller grid (STAMP's `random-x512-y512-z7-n512` copies 1.8M cells per route).
//!
//! Implementations: `sequential` (a `Vec<u32>` grid, one thread), `global-lock` (the grid under
//! one `Mutex`, held for a whole route: copy, expansion and write), `commute` (a `Vec` of
//! `TVar::new` cells; the copy and the expansion outside the transaction that validates and
//! writes the path) and `commute-inline` (the same with the cells made by the low-level
//! `TVar::new_inline` in one `Box<[_]>`: each cell's words beside its neighbours' instead of in
//! a heap block of its own, at the price of one `unsafe` block; the copy reads one array instead
//! of chasing a pointer per cell).
//!
//! The check: every routed path is connected from its source to its destination, every cell
//! of it holds its id, and no other cell does (so no two paths share a cell); and every pair
//! left unrouted has no free path on the final grid (it was not abandoned). At one thread,
//! the suite also compares each row's routed count with the sequential run's.
//!
//! **The `retry` variant** ([`run_blocking`], commute only): every pair is routed several
//! times (rounds), and a router that finds no free path does not give up: it reads, in a
//! transaction, the occupied cells that stopped its wave (the wall around the region it could
//! reach) and calls `tx.retry()` while they are all still occupied, so it sleeps until one of
//! them is freed. A rip-up thread removes the oldest path whenever more than `keep` are on the
//! grid, or whenever every router still working is waiting; a pair's next route waits (in
//! `retry` too) until its previous path is ripped up. Every route must be laid: the program
//! terminates only if no wake-up is lost (rust-stm #17 deadlocked on such a Lee router).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use commute::{Home, Inline, TBox, TQueue, TVar, atomically};

use super::{AppRun, counts_since, run_threads, sum_counts};
use crate::rng::XorShift;

/// The implementations of the plain variant, in the order they run.
pub const IMPLEMENTATIONS: [&str; 4] = ["sequential", "global-lock", "commute", "commute-inline"];

/// A cell no path may enter, in the expansion's distance array.
const BLOCKED: u32 = u32::MAX;

/// A free cell the wave has not reached yet.
const UNSEEN: u32 = u32::MAX - 1;

/// The size of a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabyrinthParams {
    /// Cells along x.
    pub x: usize,
    /// Cells along y.
    pub y: usize,
    /// Cells along z (layers).
    pub z: usize,
    /// Pairs to route.
    pub paths: usize,
}

impl LabyrinthParams {
    /// Cells in the grid.
    pub fn cells(&self) -> usize {
        self.x * self.y * self.z
    }

    /// The six neighbours of `cell` (fewer on the faces), in a fixed order.
    fn neighbours(&self, cell: u32, out: &mut [u32; 6]) -> usize {
        let cell = cell as usize;
        let (cx, rest) = (cell % self.x, cell / self.x);
        let (cy, cz) = (rest % self.y, rest / self.y);
        let plane = self.x * self.y;
        let mut n = 0;
        let mut push = |c: usize| {
            out[n] = c as u32;
            n += 1;
        };
        if cx > 0 {
            push(cell - 1);
        }
        if cx + 1 < self.x {
            push(cell + 1);
        }
        if cy > 0 {
            push(cell - self.x);
        }
        if cy + 1 < self.y {
            push(cell + self.x);
        }
        if cz > 0 {
            push(cell - plane);
        }
        if cz + 1 < self.z {
            push(cell + plane);
        }
        n
    }

    fn coords(&self, cell: u32) -> (usize, usize, usize) {
        let cell = cell as usize;
        (
            cell % self.x,
            (cell / self.x) % self.y,
            cell / (self.x * self.y),
        )
    }
}

/// A pair of endpoints; its path's id is its index plus one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    /// Source cell.
    pub src: u32,
    /// Destination cell.
    pub dst: u32,
}

/// `params.paths` pairs drawn from `seed`, no two endpoints within one cell of each other
/// (diagonals included).
///
/// # Panics
///
/// If the grid is too small to place them.
///
/// # Examples
///
/// ```
/// use commute_benches::apps::labyrinth::{LabyrinthParams, pairs};
///
/// let p = LabyrinthParams { x: 16, y: 16, z: 2, paths: 10 };
/// assert_eq!(pairs(&p, 1).len(), 10);
/// ```
pub fn pairs(params: &LabyrinthParams, seed: u64) -> Vec<Pair> {
    let mut rng = XorShift::new(seed);
    let mut near_endpoint = vec![false; params.cells()];
    let mut draw = |rng: &mut XorShift| {
        for _ in 0..1_000_000 {
            let cell = rng.below(params.cells() as u64) as u32;
            if near_endpoint[cell as usize] {
                continue;
            }
            let (cx, cy, cz) = params.coords(cell);
            for z in cz.saturating_sub(1)..(cz + 2).min(params.z) {
                for y in cy.saturating_sub(1)..(cy + 2).min(params.y) {
                    for x in cx.saturating_sub(1)..(cx + 2).min(params.x) {
                        near_endpoint[(z * params.y + y) * params.x + x] = true;
                    }
                }
            }
            return cell;
        }
        panic!("labyrinth: no room for {} pairs", params.paths);
    };
    (0..params.paths)
        .map(|_| Pair {
            src: draw(&mut rng),
            dst: draw(&mut rng),
        })
        .collect()
}

/// A router's private buffers: the distance array (STAMP's grid copy) and the wave.
struct Router {
    distance: Vec<u32>,
    wave: Vec<u32>,
    /// Occupied cells the wave ran into, when it found no path.
    wall: Vec<u32>,
}

impl Router {
    fn new(cells: usize) -> Self {
        Router {
            distance: vec![UNSEEN; cells],
            wave: Vec::new(),
            wall: Vec::new(),
        }
    }

    /// Copies the grid (`cell(i)` reads cell `i`) and finds a shortest path of free cells
    /// (or cells of path `id`: its endpoints) from `pair.src` to `pair.dst`. `None` if there
    /// is none; the wall it ran into is then in `self.wall`.
    fn route(
        &mut self,
        params: &LabyrinthParams,
        pair: Pair,
        id: u32,
        cell: impl Fn(usize) -> u32,
    ) -> Option<Vec<u32>> {
        for (i, d) in self.distance.iter_mut().enumerate() {
            let v = cell(i);
            *d = if v == 0 || v == id { UNSEEN } else { BLOCKED };
        }
        self.wave.clear();
        self.wall.clear();
        let mut next = [0u32; 6];
        self.distance[pair.src as usize] = 0;
        self.wave.push(pair.src);
        let mut head = 0;
        let mut reached = false;
        while head < self.wave.len() && !reached {
            let c = self.wave[head];
            head += 1;
            let d = self.distance[c as usize];
            let count = params.neighbours(c, &mut next);
            for &n in &next[..count] {
                match self.distance[n as usize] {
                    UNSEEN => {
                        self.distance[n as usize] = d + 1;
                        self.wave.push(n);
                        if n == pair.dst {
                            reached = true;
                        }
                    }
                    BLOCKED => {
                        // Mark it once: the wall of the region the wave reached.
                        self.distance[n as usize] = BLOCKED - 2;
                        self.wall.push(n);
                    }
                    _ => {}
                }
            }
        }
        if !reached {
            return None;
        }
        // Trace back: from the destination, always to a neighbour one step nearer.
        let mut path = vec![pair.dst];
        let mut c = pair.dst;
        while c != pair.src {
            let d = self.distance[c as usize];
            let count = params.neighbours(c, &mut next);
            c = *next[..count]
                .iter()
                .find(|&&n| self.distance[n as usize] == d - 1)
                .expect("the wave came from somewhere");
            path.push(c);
        }
        path.reverse();
        Some(path)
    }
}

/// Checks a final grid: for each pair, the cells holding its id are exactly its path's (or its
/// two endpoints, unrouted), and a path runs from its source to its destination through
/// neighbouring cells. `Ok` with the number of routed paths.
pub fn check_grid(
    params: &LabyrinthParams,
    grid: &[u32],
    pairs: &[Pair],
    paths: &[Option<Vec<u32>>],
) -> Result<usize, String> {
    let mut held = vec![0usize; pairs.len() + 1];
    for &v in grid {
        match held.get_mut(v as usize) {
            Some(count) => *count += 1,
            None => return Err(format!("a cell holds {v}, which is no path's id")),
        }
    }
    let mut next = [0u32; 6];
    for (i, (pair, path)) in pairs.iter().zip(paths).enumerate() {
        let id = i as u32 + 1;
        let cells = match path {
            Some(path) => path.clone(),
            None => vec![pair.src, pair.dst],
        };
        if let Some(c) = cells.iter().find(|&&c| grid[c as usize] != id) {
            return Err(format!(
                "cell {c} of path {id} holds {} (two paths share a cell)",
                grid[*c as usize]
            ));
        }
        if held[id as usize] != cells.len() {
            return Err(format!(
                "{} cells hold path {id}, which has {}",
                held[id as usize],
                cells.len()
            ));
        }
        if let Some(path) = path {
            if path.first() != Some(&pair.src) || path.last() != Some(&pair.dst) {
                return Err(format!("path {id} does not join its endpoints"));
            }
            for w in path.windows(2) {
                let count = params.neighbours(w[0], &mut next);
                if !next[..count].contains(&w[1]) {
                    return Err(format!("path {id} jumps from {} to {}", w[0], w[1]));
                }
            }
        }
    }
    Ok(paths.iter().filter(|p| p.is_some()).count())
}

/// Checks that every pair left unrouted has no path on the final `grid`: the router, run on
/// the final grid, must find none from its source to its destination through free cells (a
/// router gives up only when its copy has no free path, and cells only ever go from free to
/// taken in [`run`], so a pair with a free path at the end was wrongly abandoned). Only for
/// [`run`]: the `retry` variant's ripped-up pairs may have a free path at the end.
pub fn check_abandoned(
    params: &LabyrinthParams,
    grid: &[u32],
    pairs: &[Pair],
    paths: &[Option<Vec<u32>>],
) -> Result<(), String> {
    let mut router = Router::new(params.cells());
    for (i, (&pair, path)) in pairs.iter().zip(paths).enumerate() {
        let id = i as u32 + 1;
        if path.is_none()
            && let Some(free) = router.route(params, pair, id, |c| grid[c])
        {
            return Err(format!(
                "path {id} was left unrouted, but the final grid has a free path of {} cells \
                 for it",
                free.len()
            ));
        }
    }
    Ok(())
}

/// A grid with every pair's endpoints reserved.
fn initial_grid(params: &LabyrinthParams, pairs: &[Pair]) -> Vec<u32> {
    let mut grid = vec![0u32; params.cells()];
    for (i, p) in pairs.iter().enumerate() {
        grid[p.src as usize] = i as u32 + 1;
        grid[p.dst as usize] = i as u32 + 1;
    }
    grid
}

/// Runs `implementation` (one of [`IMPLEMENTATIONS`]) on `pairs` with `threads` routers.
///
/// # Panics
///
/// On an unknown implementation.
///
/// # Examples
///
/// ```
/// use commute_benches::apps::labyrinth::{LabyrinthParams, pairs, run};
///
/// let p = LabyrinthParams { x: 32, y: 32, z: 3, paths: 40 };
/// let pairs = pairs(&p, 1);
/// let run = run("commute", &p, &pairs, 2);
/// assert!(run.check.is_ok(), "{:?}", run.check);
/// ```
pub fn run(
    implementation: &'static str,
    params: &LabyrinthParams,
    pairs: &[Pair],
    threads: usize,
) -> AppRun {
    let threads = if implementation == "sequential" {
        1
    } else {
        threads
    };
    let start = initial_grid(params, pairs);
    let next_pair = AtomicUsize::new(0);
    let claim = || {
        let i = next_pair.fetch_add(1, Ordering::Relaxed);
        (i < pairs.len()).then_some(i)
    };
    let (seconds, grid, paths, counts) = match implementation {
        "sequential" => {
            let mut grid = start;
            let mut router = Router::new(params.cells());
            let began = Instant::now();
            let mut paths = Vec::with_capacity(pairs.len());
            for (i, &pair) in pairs.iter().enumerate() {
                let id = i as u32 + 1;
                let path = router.route(params, pair, id, |c| grid[c]);
                if let Some(path) = &path {
                    for &c in path {
                        grid[c as usize] = id;
                    }
                }
                paths.push(path);
            }
            (began.elapsed().as_secs_f64(), grid, paths, None)
        }
        "global-lock" => {
            let grid = Mutex::new(start);
            let jobs: Vec<_> = (0..threads)
                .map(|_| {
                    let (grid, claim) = (&grid, &claim);
                    move || {
                        let mut router = Router::new(params.cells());
                        let mut mine = Vec::new();
                        while let Some(i) = claim() {
                            let id = i as u32 + 1;
                            let mut grid = grid.lock().expect("no router panics");
                            let path = router.route(params, pairs[i], id, |c| grid[c]);
                            if let Some(path) = &path {
                                for &c in path {
                                    grid[c as usize] = id;
                                }
                            }
                            mine.push((i, path));
                        }
                        mine
                    }
                })
                .collect();
            let (seconds, routed) = run_threads(jobs);
            let grid = grid.into_inner().expect("no router panicked");
            (seconds, grid, collect_paths(pairs.len(), routed), None)
        }
        "commute" => {
            let cells: Vec<TVar<u32>> = start.iter().map(|&v| TVar::new(v)).collect();
            route_on_cells(params, pairs, threads, &cells, &claim)
        }
        "commute-inline" => {
            let cells: Box<[TVar<u32, Inline>]> = start
                .iter()
                // SAFETY: the variables go straight into the boxed slice and never leave it
                // (no push, no swap) until it is dropped after the routers have joined.
                .map(|&v| unsafe { TVar::new_inline(v) })
                .collect();
            route_on_cells(params, pairs, threads, &cells, &claim)
        }
        other => panic!("labyrinth: no implementation `{other}`"),
    };
    let check = check_grid(params, &grid, pairs, &paths)
        .and_then(|routed| check_abandoned(params, &grid, pairs, &paths).map(|()| routed))
        .map(|routed| {
            format!(
                "{routed} of {} paths routed, none sharing a cell, every unrouted pair blocked",
                pairs.len()
            )
        });
    AppRun {
        benchmark: "labyrinth".into(),
        implementation,
        threads,
        seconds,
        work: pairs.len() as u64,
        commits: counts.map(|c| c.0),
        aborts: counts.map(|c| c.1),
        check,
    }
}

/// The routing transaction: if every cell of `path` is still free (or one of the pair's own
/// endpoints), writes `id` into all of them and returns true; otherwise changes nothing.
fn lay<H: Home>(cells: &[TVar<u32, H>], path: &[u32], id: u32) -> bool {
    atomically(|tx| {
        for &c in path {
            let v = cells[c as usize].read(tx)?;
            if v != 0 && v != id {
                return Ok(false);
            }
        }
        for &c in path {
            cells[c as usize].write(tx, id);
        }
        Ok(true)
    })
}

/// The commute routers over `cells` (boxed or inline variables): returns the time, the final
/// grid, the paths and the commits and aborts.
#[allow(clippy::type_complexity)]
fn route_on_cells<H: Home>(
    params: &LabyrinthParams,
    pairs: &[Pair],
    threads: usize,
    cells: &[TVar<u32, H>],
    claim: &(impl Fn() -> Option<usize> + Sync),
) -> (f64, Vec<u32>, Vec<Option<Vec<u32>>>, Option<(u64, u64)>) {
    let jobs: Vec<_> = (0..threads)
        .map(|_| {
            move || {
                let before = commute::stats::thread();
                let mut router = Router::new(params.cells());
                let mut mine = Vec::new();
                while let Some(i) = claim() {
                    let id = i as u32 + 1;
                    let path = loop {
                        let Some(path) = router.route(params, pairs[i], id, |c| cells[c].load())
                        else {
                            break None;
                        };
                        if lay(cells, &path, id) {
                            break Some(path);
                        }
                        // Another route took a cell of this one: copy again.
                    };
                    mine.push((i, path));
                }
                (mine, counts_since(before))
            }
        })
        .collect();
    let (seconds, results) = run_threads(jobs);
    let (routed, counts): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    let grid = cells.iter().map(TVar::load).collect();
    (
        seconds,
        grid,
        collect_paths(pairs.len(), routed),
        Some(sum_counts(counts)),
    )
}

/// Each router's `(pair index, path)` lists, as one path (or none) per pair.
fn collect_paths(
    count: usize,
    routed: Vec<Vec<(usize, Option<Vec<u32>>)>>,
) -> Vec<Option<Vec<u32>>> {
    let mut paths = vec![None; count];
    for (i, path) in routed.into_iter().flatten() {
        paths[i] = path;
    }
    paths
}

/// What [`run_blocking`] did, beyond its row.
#[derive(Clone, Debug)]
pub struct BlockingOutcome {
    /// The row (implementation `commute`, threads = routers; the rip-up thread is extra).
    pub run: AppRun,
    /// Times a router waited in `retry`: for a wall to open, or for its pair's earlier path
    /// to be ripped up.
    pub waits: u64,
    /// Paths the rip-up thread removed.
    pub ripped: u64,
}

/// A pair's state in [`run_blocking`]: no path on the grid.
const OFF: u8 = 0;
/// A router is routing the pair.
const ROUTING: u8 = 1;
/// The pair's path is on the grid.
const ON: u8 = 2;

/// The `retry` variant: `routers` threads route every pair `rounds` times (a pair's next
/// route waits until its previous path is ripped up), waiting in `retry` when no path is free,
/// while a rip-up thread removes the oldest path whenever more than `keep` are on the grid or
/// every working router waits. Every route must be laid once; every removed path must still
/// be intact when removed, and the final grid must pass [`check_grid`].
///
/// # Examples
///
/// ```
/// use commute_benches::apps::labyrinth::{LabyrinthParams, pairs, run_blocking};
///
/// let p = LabyrinthParams { x: 12, y: 12, z: 1, paths: 4 };
/// let out = run_blocking(&p, &pairs(&p, 2), 2, 2, 10);
/// assert!(out.run.check.is_ok(), "{:?}", out.run.check);
/// ```
pub fn run_blocking(
    params: &LabyrinthParams,
    pairs: &[Pair],
    routers: usize,
    keep: u64,
    rounds: usize,
) -> BlockingOutcome {
    let start = initial_grid(params, pairs);
    let cells: Vec<TVar<u32>> = start.iter().map(|&v| TVar::new(v)).collect();
    let laid: Vec<TBox<Vec<u32>>> = pairs.iter().map(|_| TBox::new(Vec::new())).collect();
    let state: Vec<TVar<u8>> = pairs.iter().map(|_| TVar::new(OFF)).collect();
    let on_grid: TQueue<u32> = TQueue::new();
    let live = TVar::new(0u64);
    let waiting = TVar::new(0u64);
    let working = TVar::new(routers as u64);
    let next_job = AtomicUsize::new(0);
    let jobs = pairs.len() * rounds;
    // Blocks in `wait` (a transaction that retries until it can go on), counted in `waiting`
    // meanwhile, so that the rip-up thread can tell when every router is stuck.
    let blocking = |wait: &dyn Fn(&commute::Transaction) -> commute::StmResult<()>| {
        atomically(|tx| waiting.modify(tx, |n| n + 1));
        atomically(wait);
        atomically(|tx| waiting.modify(tx, |n| n - 1));
    };
    let began = Instant::now();
    let (ripper_result, router_results) = std::thread::scope(|s| {
        let ripper = s.spawn(|| {
            let before = commute::stats::thread();
            let (mut ripped, mut damaged) = (0u64, 0u64);
            loop {
                let step = atomically(|tx| {
                    let working_now = working.read(tx)?;
                    if working_now == 0 {
                        return Ok(None);
                    }
                    let live_now = live.read(tx)?;
                    let all_waiting = waiting.read(tx)? == working_now;
                    if live_now <= keep && !(all_waiting && live_now > 0) {
                        return tx.retry();
                    }
                    let id = on_grid.pop(tx)?.expect("live paths are queued");
                    let i = id as usize - 1;
                    let path = laid[i].read(tx)?;
                    let mut bad = 0u64;
                    let last = path.len() - 1;
                    for (n, &c) in path.iter().enumerate() {
                        if cells[c as usize].read(tx)? != id {
                            bad += 1;
                        }
                        // The endpoints stay reserved for their pair.
                        if n != 0 && n != last {
                            cells[c as usize].write(tx, 0);
                        }
                    }
                    state[i].write(tx, OFF);
                    live.write(tx, live_now - 1);
                    Ok(Some(bad))
                });
                match step {
                    Some(bad) => {
                        ripped += 1;
                        damaged += bad;
                    }
                    None => break,
                }
            }
            (ripped, damaged, counts_since(before))
        });
        let handles: Vec<_> = (0..routers)
            .map(|_| {
                let (cells, laid, state, on_grid, live, working, next_job, blocking) = (
                    &cells, &laid, &state, &on_grid, &live, &working, &next_job, &blocking,
                );
                s.spawn(move || {
                    let before = commute::stats::thread();
                    let mut router = Router::new(params.cells());
                    let (mut routed, mut waits) = (0u64, 0u64);
                    loop {
                        let job = next_job.fetch_add(1, Ordering::Relaxed);
                        if job >= jobs {
                            break;
                        }
                        let i = job % pairs.len();
                        let id = i as u32 + 1;
                        // Claim the pair; if its last path is still on the grid (or another
                        // router is routing it), wait for the rip-up thread.
                        let claim = |tx: &commute::Transaction| {
                            if state[i].read(tx)? != OFF {
                                return tx.retry();
                            }
                            state[i].write(tx, ROUTING);
                            Ok(())
                        };
                        if !atomically(|tx| {
                            tx.or_else(|tx| claim(tx).map(|()| true), |_| Ok(false))
                        }) {
                            waits += 1;
                            blocking(&claim);
                        }
                        loop {
                            match router.route(params, pairs[i], id, |c| cells[c].load()) {
                                Some(path) => {
                                    let done = atomically(|tx| {
                                        for &c in &path {
                                            let v = cells[c as usize].read(tx)?;
                                            if v != 0 && v != id {
                                                return Ok(false);
                                            }
                                        }
                                        for &c in &path {
                                            cells[c as usize].write(tx, id);
                                        }
                                        laid[i].write(tx, path.clone());
                                        state[i].write(tx, ON);
                                        on_grid.push(tx, id);
                                        live.modify(tx, |n| n + 1)?;
                                        Ok(true)
                                    });
                                    if done {
                                        routed += 1;
                                        break;
                                    }
                                }
                                None => {
                                    waits += 1;
                                    let wall = &router.wall;
                                    // Sleep until a cell of the wall is freed (the region the
                                    // wave reached is then no longer closed).
                                    blocking(&|tx| {
                                        for &c in wall {
                                            let v = cells[c as usize].read(tx)?;
                                            if v == 0 || v == id {
                                                return Ok(());
                                            }
                                        }
                                        tx.retry()
                                    });
                                }
                            }
                        }
                    }
                    atomically(|tx| working.modify(tx, |n| n - 1));
                    (routed, waits, counts_since(before))
                })
            })
            .collect();
        let routers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (ripper.join().unwrap(), routers)
    });
    let seconds = began.elapsed().as_secs_f64();
    let (ripped, damaged, ripper_counts) = ripper_result;
    let routed: u64 = router_results.iter().map(|r| r.0).sum();
    let waits: u64 = router_results.iter().map(|r| r.1).sum();
    let (commits, aborts) = sum_counts(router_results.iter().map(|r| r.2).chain([ripper_counts]));
    // Paths still on the grid: those the ripper did not remove.
    let remaining: std::collections::HashSet<u32> =
        atomically(|tx| on_grid.iter(tx)).into_iter().collect();
    let paths: Vec<Option<Vec<u32>>> = (0..pairs.len())
        .map(|i| remaining.contains(&(i as u32 + 1)).then(|| laid[i].load()))
        .collect();
    let grid: Vec<u32> = cells.iter().map(TVar::load).collect();
    let check = if routed != jobs as u64 {
        Err(format!("{routed} of {jobs} routes laid"))
    } else if damaged > 0 {
        Err(format!(
            "{damaged} cells of removed paths held another path's id"
        ))
    } else if ripped + remaining.len() as u64 != routed {
        Err(format!(
            "{ripped} removed and {} on the grid, of {routed} laid",
            remaining.len()
        ))
    } else {
        check_grid(params, &grid, pairs, &paths).map(|on_grid| {
            format!(
                "all {routed} routes laid ({waits} waits in retry, {ripped} ripped up, \
                 {on_grid} left on the grid)"
            )
        })
    };
    BlockingOutcome {
        run: AppRun {
            benchmark: "labyrinth-retry".into(),
            implementation: "commute",
            threads: routers,
            seconds,
            work: jobs as u64,
            commits: Some(commits),
            aborts: Some(aborts),
            check,
        },
        waits,
        ripped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> LabyrinthParams {
        LabyrinthParams {
            x: 32,
            y: 32,
            z: 2,
            paths: 40,
        }
    }

    #[test]
    fn one_router_lays_the_same_paths_everywhere() {
        let p = small();
        let pairs = pairs(&p, 3);
        let runs: Vec<AppRun> = IMPLEMENTATIONS
            .iter()
            .map(|&i| run(i, &p, &pairs, 1))
            .collect();
        for r in &runs {
            assert!(r.check.is_ok(), "{r:?}");
            assert_eq!(r.check, runs[0].check);
        }
    }

    #[test]
    fn several_routers_keep_paths_apart() {
        let p = small();
        let pairs = pairs(&p, 4);
        for i in IMPLEMENTATIONS {
            let r = run(i, &p, &pairs, 3);
            assert!(r.check.is_ok(), "{r:?}");
        }
    }

    /// A grid of one row of six cells, and a pair from one end to the other.
    fn one_row_of_six() -> (LabyrinthParams, Pair) {
        let p = LabyrinthParams {
            x: 6,
            y: 1,
            z: 1,
            paths: 1,
        };
        (p, Pair { src: 0, dst: 5 })
    }

    #[test]
    fn the_check_catches_a_shared_cell_and_a_gap() {
        let (p, pair) = one_row_of_six();
        let path: Vec<u32> = (0..6).collect();
        let mut grid = vec![1u32; 6];
        assert_eq!(check_grid(&p, &grid, &[pair], &[Some(path.clone())]), Ok(1));
        grid[3] = 0; // a cell lost to an overwrite
        assert!(check_grid(&p, &grid, &[pair], &[Some(path.clone())]).is_err());
        let gap = vec![0, 1, 3, 4, 5];
        grid[3] = 1;
        grid[2] = 0;
        let err = check_grid(&p, &grid, &[pair], &[Some(gap)]).unwrap_err();
        assert!(err.contains("jumps"), "{err}");
    }

    #[test]
    fn the_check_catches_an_abandoned_pair() {
        let (p, pair) = one_row_of_six();
        let mut grid = vec![1, 0, 0, 0, 0, 1];
        // Unrouted with a free way between its endpoints: abandoned.
        assert_eq!(check_grid(&p, &grid, &[pair], &[None]), Ok(0));
        let err = check_abandoned(&p, &grid, &[pair], &[None]).unwrap_err();
        assert!(err.contains("left unrouted"), "{err}");
        // Unrouted behind another path's cell: blocked, accepted.
        let pairs = [pair, Pair { src: 2, dst: 2 }];
        grid[2] = 2;
        assert_eq!(
            check_abandoned(&p, &grid, &pairs, &[None, Some(vec![2])]),
            Ok(())
        );
    }
}

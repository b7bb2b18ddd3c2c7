//! STAMP's kmeans: points assigned to their nearest centre, round after round, each
//! assignment adding the point into its cluster's running sums in one transaction.
//!
//! Follows STAMP's `kmeans/normal.c`: each round, every thread takes its share of the points,
//! finds each point's nearest centre (reading the round's centres, which nobody writes during
//! the round), and adds the point into that cluster's sums and count; between rounds the new
//! centres are the sums over the counts. Rounds stop when fewer than `threshold` of the points
//! changed cluster, or after [`MAX_ROUNDS`]. `-m`/`-n` (the cluster count) pick the mix:
//! kmeans-low has 40 clusters (few threads add into the same one at once), kmeans-high 15.
//!
//! What differs from STAMP: points come from a seeded generator around 16 true centres (no
//! input files), and coordinates are fixed-point integers ([`SCALE`] per unit), so that the
//! sums are exact whatever order the points are added in: every implementation, at any thread
//! count, must find the same clustering, bit for bit. Implementations:
//!
//! - `sequential`: plain `Vec<i64>` sums, one thread;
//! - `global-lock`: the sums under one `Mutex`, locked for each point;
//! - `commute-naive`: one `TVar<i64>` per sum, each point one `atomically` that reads, adds
//!   and writes every coordinate of its cluster (`modify`): two threads adding into the same
//!   cluster conflict;
//! - `commute-add`: the same `TVar`s, updated with the commutative `TVar::add`: no reads, so
//!   adds into the same cluster never abort each other.

use std::sync::Mutex;
use std::time::Instant;

use commute::{TVar, atomically};

use super::{AppRun, counts_since, sum_counts};
use crate::rng::XorShift;

/// Fixed-point units per coordinate unit: generated coordinates lie in `0..SCALE`.
pub const SCALE: i64 = 1 << 20;

/// The most rounds, as in STAMP.
pub const MAX_ROUNDS: usize = 500;

/// STAMP's `-t`: stop when fewer than this fraction of the points changed cluster.
pub const THRESHOLD: f64 = 0.00001;

/// The true centres the points are generated around (STAMP's inputs have 16).
pub const TRUE_CENTRES: usize = 16;

/// The implementations, in the order they run.
pub const IMPLEMENTATIONS: [&str; 4] =
    ["sequential", "global-lock", "commute-naive", "commute-add"];

/// The size of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmeansParams {
    /// Points (STAMP: 65,536).
    pub points: usize,
    /// Coordinates per point (STAMP: 32).
    pub dims: usize,
    /// Clusters: 40 for kmeans-low (`-m40 -n40`), 15 for kmeans-high (`-m15 -n15`).
    pub clusters: usize,
}

/// Generated points: `dims` fixed-point coordinates each, row after row.
#[derive(Clone, Debug)]
pub struct Points {
    /// Coordinates per point.
    pub dims: usize,
    /// `points * dims` coordinates.
    pub coords: Vec<i64>,
}

impl Points {
    /// `count` points of `dims` coordinates around [`TRUE_CENTRES`] centres drawn from `seed`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = commute_benches::apps::kmeans::Points::generate(100, 4, 1);
    /// assert_eq!(p.coords.len(), 400);
    /// assert_eq!(p.len(), 100);
    /// ```
    pub fn generate(count: usize, dims: usize, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let spread = SCALE as u64 / 8;
        let centres: Vec<i64> = (0..TRUE_CENTRES * dims)
            .map(|_| (spread + rng.below(SCALE as u64 - 2 * spread)) as i64)
            .collect();
        let mut coords = Vec::with_capacity(count * dims);
        for _ in 0..count {
            let c = rng.below(TRUE_CENTRES as u64) as usize;
            for d in 0..dims {
                let noise = rng.below(2 * spread) as i64 - spread as i64;
                coords.push(centres[c * dims + d] + noise);
            }
        }
        Points { dims, coords }
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.coords.len() / self.dims
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.coords.is_empty()
    }

    fn point(&self, i: usize) -> &[i64] {
        &self.coords[i * self.dims..(i + 1) * self.dims]
    }
}

/// A clustering: what every implementation must agree on.
#[derive(Clone, Debug, PartialEq)]
pub struct Clustering {
    /// Each point's cluster.
    pub membership: Vec<u32>,
    /// The final centres, `clusters * dims` coordinates.
    pub centres: Vec<f64>,
    /// Rounds run.
    pub rounds: usize,
}

/// One run: its row and its clustering.
#[derive(Clone, Debug)]
pub struct KmeansRun {
    /// The row (its `check` covers this run alone: every round's counts and sums add up).
    pub run: AppRun,
    /// The clustering found.
    pub clustering: Clustering,
}

/// The index of the centre nearest to `point` (the lowest index on a tie).
fn nearest(centres: &[f64], point: &[i64]) -> usize {
    let dims = point.len();
    let mut best = 0;
    let mut best_distance = f64::INFINITY;
    for (k, centre) in centres.chunks_exact(dims).enumerate() {
        let distance: f64 = centre
            .iter()
            .zip(point)
            .map(|(c, &x)| {
                let d = x as f64 - c;
                d * d
            })
            .sum();
        if distance < best_distance {
            best = k;
            best_distance = distance;
        }
    }
    best
}

/// The starting centres: `clusters` distinct points drawn from `seed`.
fn initial_centres(points: &Points, clusters: usize, seed: u64) -> Vec<f64> {
    let mut rng = XorShift::new(seed ^ 0x6b6d_6561_6e73);
    let mut chosen: Vec<usize> = Vec::with_capacity(clusters);
    while chosen.len() < clusters.min(points.len()) {
        let i = rng.below(points.len() as u64) as usize;
        if !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    chosen
        .iter()
        .flat_map(|&i| points.point(i).iter().map(|&x| x as f64))
        .collect()
}

/// Sums and counts at the end of a round, checked and turned into the next centres.
struct Round {
    sums: Vec<i64>,
    counts: Vec<i64>,
    changed: usize,
}

/// What every round's sums must add up to: each coordinate's total over all points.
fn totals(points: &Points) -> Vec<i64> {
    let mut totals = vec![0; points.dims];
    for p in points.coords.chunks_exact(points.dims) {
        for (t, &x) in totals.iter_mut().zip(p) {
            *t += x;
        }
    }
    totals
}

/// The loop every implementation shares: `round(centres, membership)` runs one round; the
/// rest (new centres, the stopping rule, the check that no point was lost) is common.
fn cluster(
    points: &Points,
    clusters: usize,
    seed: u64,
    mut round: impl FnMut(&[f64], &mut [u32]) -> Round,
) -> (Clustering, Result<String, String>, f64) {
    let dims = points.dims;
    let expected = totals(points);
    let mut centres = initial_centres(points, clusters, seed);
    let mut membership = vec![u32::MAX; points.len()];
    let mut problem = None;
    let mut rounds = 0;
    let began = Instant::now();
    loop {
        let r = round(&centres, &mut membership);
        rounds += 1;
        // A lost update (an add that vanished) shows here, in any round.
        let counted: i64 = r.counts.iter().sum();
        if problem.is_none() && counted != points.len() as i64 {
            problem = Some(format!(
                "round {rounds}: the clusters count {counted} points, not {}",
                points.len()
            ));
        }
        for (d, &total) in expected.iter().enumerate() {
            let sum: i64 = (0..clusters).map(|k| r.sums[k * dims + d]).sum();
            if problem.is_none() && sum != total {
                problem = Some(format!(
                    "round {rounds}: coordinate {d} sums to {sum}, not {total}"
                ));
            }
        }
        for k in 0..clusters {
            if r.counts[k] > 0 {
                for d in 0..dims {
                    centres[k * dims + d] = r.sums[k * dims + d] as f64 / r.counts[k] as f64;
                }
            }
        }
        let fraction = r.changed as f64 / points.len() as f64;
        if fraction <= THRESHOLD || rounds >= MAX_ROUNDS {
            break;
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    let check = match problem {
        Some(p) => Err(p),
        None => Ok(format!("{rounds} rounds, every round's sums add up")),
    };
    (
        Clustering {
            membership,
            centres,
            rounds,
        },
        check,
        seconds,
    )
}

/// Assigns the points of `chunk` (starting at point `first`), returning how many changed
/// cluster; `add(k, point)` adds each point into its cluster.
fn assign_chunk(
    points: &Points,
    centres: &[f64],
    first: usize,
    chunk: &mut [u32],
    mut add: impl FnMut(usize, &[i64]),
) -> usize {
    let mut changed = 0;
    for (offset, member) in chunk.iter_mut().enumerate() {
        let point = points.point(first + offset);
        let k = nearest(centres, point);
        if *member != k as u32 {
            changed += 1;
            *member = k as u32;
        }
        add(k, point);
    }
    changed
}

/// Splits `membership` into one contiguous share per thread, with each share's first index.
fn shares(membership: &mut [u32], threads: usize) -> Vec<(usize, &mut [u32])> {
    let per = membership.len().div_ceil(threads.max(1)).max(1);
    membership
        .chunks_mut(per)
        .enumerate()
        .map(|(i, c)| (i * per, c))
        .collect()
}

/// Runs `implementation` (one of [`IMPLEMENTATIONS`]) on `points` with `threads` threads.
///
/// # Panics
///
/// On an unknown implementation.
///
/// # Examples
///
/// ```
/// use commute_benches::apps::kmeans::{KmeansParams, Points, run};
///
/// let p = KmeansParams { points: 500, dims: 4, clusters: 5 };
/// let points = Points::generate(p.points, p.dims, 3);
/// let seq = run("sequential", &points, &p, 1, 3);
/// let add = run("commute-add", &points, &p, 2, 3);
/// assert!(seq.run.check.is_ok() && add.run.check.is_ok());
/// assert_eq!(seq.clustering, add.clustering);
/// ```
pub fn run(
    implementation: &'static str,
    points: &Points,
    params: &KmeansParams,
    threads: usize,
    seed: u64,
) -> KmeansRun {
    let dims = points.dims;
    let k = params.clusters;
    let mut counts = (0u64, 0u64);
    let threads = if implementation == "sequential" {
        1
    } else {
        threads
    };
    let (clustering, check, seconds) = match implementation {
        "sequential" => cluster(points, k, seed, |centres, membership| {
            let mut sums = vec![0i64; k * dims];
            let mut sizes = vec![0i64; k];
            let changed = assign_chunk(points, centres, 0, membership, |c, point| {
                for (s, &x) in sums[c * dims..(c + 1) * dims].iter_mut().zip(point) {
                    *s += x;
                }
                sizes[c] += 1;
            });
            Round {
                sums,
                counts: sizes,
                changed,
            }
        }),
        "global-lock" => cluster(points, k, seed, |centres, membership| {
            let acc = Mutex::new((vec![0i64; k * dims], vec![0i64; k]));
            let changed: usize = std::thread::scope(|s| {
                let handles: Vec<_> = shares(membership, threads)
                    .into_iter()
                    .map(|(first, chunk)| {
                        let acc = &acc;
                        s.spawn(move || {
                            assign_chunk(points, centres, first, chunk, |c, point| {
                                let mut guard = acc.lock().expect("no thread panics");
                                let (sums, sizes) = &mut *guard;
                                for (s, &x) in sums[c * dims..(c + 1) * dims].iter_mut().zip(point)
                                {
                                    *s += x;
                                }
                                sizes[c] += 1;
                            })
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            let (sums, sizes) = acc.into_inner().expect("no thread panicked");
            Round {
                sums,
                counts: sizes,
                changed,
            }
        }),
        "commute-naive" | "commute-add" => {
            let commutative = implementation == "commute-add";
            let sums: Vec<TVar<i64>> = (0..k * dims).map(|_| TVar::new(0)).collect();
            let sizes: Vec<TVar<i64>> = (0..k).map(|_| TVar::new(0)).collect();
            cluster(points, k, seed, |centres, membership| {
                let (changed, round_counts) = std::thread::scope(|s| {
                    let handles: Vec<_> = shares(membership, threads)
                        .into_iter()
                        .map(|(first, chunk)| {
                            let (sums, sizes) = (&sums, &sizes);
                            s.spawn(move || {
                                let before = commute::stats::thread();
                                let changed =
                                    assign_chunk(points, centres, first, chunk, |c, point| {
                                        let cluster_sums = &sums[c * dims..(c + 1) * dims];
                                        atomically(|tx| {
                                            for (s, &x) in cluster_sums.iter().zip(point) {
                                                if commutative {
                                                    s.add(tx, x);
                                                } else {
                                                    s.modify(tx, |v| v + x)?;
                                                }
                                            }
                                            if commutative {
                                                sizes[c].add(tx, 1);
                                            } else {
                                                sizes[c].modify(tx, |v| v + 1)?;
                                            }
                                            Ok(())
                                        });
                                    });
                                (changed, counts_since(before))
                            })
                        })
                        .collect();
                    let results: Vec<(usize, (u64, u64))> =
                        handles.into_iter().map(|h| h.join().unwrap()).collect();
                    let changed = results.iter().map(|r| r.0).sum::<usize>();
                    (changed, sum_counts(results.into_iter().map(|r| r.1)))
                });
                counts.0 += round_counts.0;
                counts.1 += round_counts.1;
                // Between rounds no transaction runs: read the sums and start the next round
                // from zero (one transaction, so a reader would never see half a reset).
                let round = Round {
                    sums: sums.iter().map(TVar::load).collect(),
                    counts: sizes.iter().map(TVar::load).collect(),
                    changed,
                };
                atomically(|tx| {
                    for v in sums.iter().chain(&sizes) {
                        v.write(tx, 0);
                    }
                    Ok(())
                });
                round
            })
        }
        other => panic!("kmeans: no implementation `{other}`"),
    };
    let commute = implementation.starts_with("commute");
    let run = AppRun {
        benchmark: format!("kmeans-k{k}"),
        implementation,
        threads,
        seconds,
        work: (clustering.rounds * points.len()) as u64,
        commits: commute.then_some(counts.0),
        aborts: commute.then_some(counts.1),
        check,
    };
    KmeansRun { run, clustering }
}

/// Whether `other` found exactly `reference`'s clustering: `Ok` with a summary, else what
/// differs.
pub fn compare(reference: &Clustering, other: &Clustering) -> Result<String, String> {
    if reference.rounds != other.rounds {
        return Err(format!(
            "{} rounds, sequential took {}",
            other.rounds, reference.rounds
        ));
    }
    if let Some(i) =
        (0..reference.membership.len()).find(|&i| reference.membership[i] != other.membership[i])
    {
        return Err(format!(
            "point {i} is in cluster {}, sequential put it in {}",
            other.membership[i], reference.membership[i]
        ));
    }
    if reference.centres != other.centres {
        return Err("the centres differ from sequential's".into());
    }
    Ok(format!(
        "{} rounds, same clustering as sequential",
        other.rounds
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_implementation_finds_the_sequential_clustering() {
        let p = KmeansParams {
            points: 2000,
            dims: 8,
            clusters: 15,
        };
        let points = Points::generate(p.points, p.dims, 11);
        let reference = run("sequential", &points, &p, 1, 11);
        assert!(reference.run.check.is_ok(), "{:?}", reference.run.check);
        assert!(reference.clustering.rounds > 1);
        for implementation in IMPLEMENTATIONS {
            for threads in [1, 3] {
                let r = run(implementation, &points, &p, threads, 11);
                assert!(r.run.check.is_ok(), "{implementation}: {:?}", r.run.check);
                compare(&reference.clustering, &r.clustering).unwrap();
            }
        }
    }

    #[test]
    fn a_lost_add_fails_the_check() {
        let p = KmeansParams {
            points: 300,
            dims: 2,
            clusters: 4,
        };
        let points = Points::generate(p.points, p.dims, 2);
        let mut first = true;
        let (_, check, _) = cluster(&points, p.clusters, 2, |centres, membership| {
            let mut sums = vec![0; p.clusters * 2];
            let mut sizes = vec![0; p.clusters];
            let changed = assign_chunk(&points, centres, 0, membership, |c, point| {
                if std::mem::take(&mut first) {
                    return; // the lost update
                }
                sums[c * 2] += point[0];
                sums[c * 2 + 1] += point[1];
                sizes[c] += 1;
            });
            Round {
                sums,
                counts: sizes,
                changed,
            }
        });
        assert!(check.unwrap_err().contains("round 1"));
    }

    /// An add lost in a later round (round 1 adding up) fails the check too, whether its
    /// count or only its coordinates were lost.
    #[test]
    fn a_lost_add_in_a_later_round_fails_the_check() {
        let p = KmeansParams {
            points: 300,
            dims: 2,
            clusters: 4,
        };
        let points = Points::generate(p.points, p.dims, 2);
        for lose_count in [true, false] {
            let mut round = 0;
            let (clustering, check, _) = cluster(&points, p.clusters, 2, |centres, membership| {
                round += 1;
                let mut first = round == 2;
                let mut sums = vec![0; p.clusters * 2];
                let mut sizes = vec![0; p.clusters];
                let changed = assign_chunk(&points, centres, 0, membership, |c, point| {
                    let lost = std::mem::take(&mut first);
                    if !lost {
                        sums[c * 2] += point[0];
                        sums[c * 2 + 1] += point[1];
                    }
                    if !lost || !lose_count {
                        sizes[c] += 1;
                    }
                });
                Round {
                    sums,
                    counts: sizes,
                    changed,
                }
            });
            assert!(clustering.rounds >= 2, "the run reaches round 2");
            let err = check.unwrap_err();
            assert!(err.contains("round 2"), "lose_count {lose_count}: {err}");
        }
    }
}

//! The B-tree of PyPy-STM's multithread suite: an order-20 B-tree that a user writes by hand
//! from commute's core types (not a commute collection), under a stream of `contains`,
//! `insert` and `remove` on keys 1 to 10,000, 198:1:1, after 1,000 keys are inserted.
//!
//! The transactional tree keeps each node in a `TBox<Node>` (keys, children as
//! `Arc<TBox<Node>>`) and each key's presence in a `TVar<bool>` of its own. A lookup borrows
//! nodes down the path (no clone, no reference count touched); inserting a new key writes the
//! leaf, and the nodes split on the way down (CLRS's top-down insertion, splitting full nodes
//! before entering them, so no write goes back up); removing a key, and inserting one that was
//! removed before, write only that key's flag. Deletion is lazy: a removed key stays in its
//! node as a tombstone and nodes never merge; with keys drawn from 1 to 10,000 the tree stays
//! bounded (at most 10,000 keys in it). The `sequential` and `global-lock` trees are the same
//! algorithm on plain `Box`ed nodes with a `bool` per key.
//!
//! The operation stream is drawn so that its final key set is the same in every serial order:
//! inserts draw odd keys, removes even keys, so no key is both inserted and removed, and the
//! set at the end is `(pre-inserted ∪ inserted) \ removed` whatever order the operations ran
//! in. Every run's final set must equal that set and `sequential`'s, and its tree must be a
//! well-formed B-tree (keys in order, no node over [`MAX_KEYS`], all leaves at one depth).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use commute::{StmResult, TBox, TVar, TaskPool, Transaction, atomically};

use super::{AppRun, counts_since, run_threads, sum_counts};
use crate::rng::XorShift;

/// Children per node at most: the order of PyPy's tree.
pub const ORDER: usize = 20;

/// Keys per node at most (a full node splits into two of `MAX_KEYS / 2` around a median).
pub const MAX_KEYS: usize = ORDER - 1;

/// Keys are drawn from `1..=KEY_RANGE`.
pub const KEY_RANGE: u64 = 10_000;

/// Keys inserted before the operations run.
pub const PRE_INSERTED: usize = 1_000;

/// The implementations, in the order they run.
pub const IMPLEMENTATIONS: [&str; 3] = ["sequential", "global-lock", "commute"];

/// One operation of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Is the key present?
    Contains(u64),
    /// Insert the key (an odd key).
    Insert(u64),
    /// Remove the key (an even key).
    Remove(u64),
}

/// The stream: `pre` keys to insert first, then `ops` operations, contains:insert:remove
/// 198:1:1.
///
/// # Examples
///
/// ```
/// use commute_benches::apps::btree::{Op, Stream};
///
/// let s = Stream::generate(10_000, 1);
/// assert_eq!(s.pre.len(), 1_000);
/// assert!(s.ops.iter().all(|op| match *op {
///     Op::Insert(k) => k % 2 == 1,
///     Op::Remove(k) => k % 2 == 0,
///     Op::Contains(_) => true,
/// }));
/// ```
#[derive(Clone, Debug)]
pub struct Stream {
    /// Distinct keys inserted before the operations.
    pub pre: Vec<u64>,
    /// The operations.
    pub ops: Vec<Op>,
}

impl Stream {
    /// `ops` operations drawn from `seed`.
    pub fn generate(ops: usize, seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        let mut chosen = BTreeSet::new();
        let mut pre = Vec::with_capacity(PRE_INSERTED);
        while pre.len() < PRE_INSERTED {
            let key = 1 + rng.below(KEY_RANGE);
            if chosen.insert(key) {
                pre.push(key);
            }
        }
        let ops = (0..ops)
            .map(|_| match rng.below(200) {
                0 => Op::Insert(1 + 2 * rng.below(KEY_RANGE / 2)),
                1 => Op::Remove(2 + 2 * rng.below(KEY_RANGE / 2)),
                _ => Op::Contains(1 + rng.below(KEY_RANGE)),
            })
            .collect();
        Stream { pre, ops }
    }

    /// The final key set of any serial order of the stream.
    pub fn expected(&self) -> BTreeSet<u64> {
        let mut set: BTreeSet<u64> = self.pre.iter().copied().collect();
        for op in &self.ops {
            match *op {
                Op::Insert(k) => {
                    set.insert(k);
                }
                Op::Remove(k) => {
                    set.remove(&k);
                }
                Op::Contains(_) => {}
            }
        }
        set
    }
}

/// The answers a lookup must give whatever the interleaving: a key that no insert or remove of
/// the stream touches is present throughout exactly when it was pre-inserted. (Lookups of the
/// other keys may see either answer under concurrency.)
#[derive(Clone, Debug)]
pub struct Lookups {
    /// By key: `Some(present)` for a key the stream never changes, `None` for the others (a
    /// table, so that checking costs every implementation about one load per lookup).
    answer: Vec<Option<bool>>,
    /// How many of the stream's lookups have a fixed answer.
    pub fixed: u64,
}

impl Lookups {
    /// The fixed answers of `stream`'s lookups.
    pub fn new(stream: &Stream) -> Self {
        let key = |k: u64| k as usize;
        let top = stream
            .pre
            .iter()
            .chain(stream.ops.iter().map(|op| match op {
                Op::Contains(k) | Op::Insert(k) | Op::Remove(k) => k,
            }))
            .map(|&k| key(k))
            .max()
            .unwrap_or(0);
        let mut answer = vec![Some(false); top + 1];
        for &k in &stream.pre {
            answer[key(k)] = Some(true);
        }
        for op in &stream.ops {
            if let Op::Insert(k) | Op::Remove(k) = *op {
                answer[key(k)] = None;
            }
        }
        let fixed = stream
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Contains(k) if answer[key(*k)].is_some()))
            .count() as u64;
        Lookups { answer, fixed }
    }

    /// Whether `answer` is wrong for `op`: a lookup of a key the stream never changes that
    /// does not say whether it was pre-inserted.
    pub fn wrong(&self, op: Op, answer: bool) -> bool {
        match op {
            Op::Contains(k) => self.answer[k as usize].is_some_and(|fixed| fixed != answer),
            Op::Insert(_) | Op::Remove(_) => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The plain tree (sequential and global-lock).

/// A node of the plain tree.
#[derive(Debug, Default)]
struct SeqNode {
    keys: Vec<u64>,
    present: Vec<bool>,
    /// Empty in a leaf; `keys.len() + 1` children otherwise.
    children: Vec<SeqNode>,
}

/// The plain B-tree.
#[derive(Debug, Default)]
struct SeqTree {
    root: SeqNode,
}

impl SeqNode {
    /// Splits a full node: it keeps the lower half, returns the median and the upper half.
    fn split(&mut self) -> (u64, bool, SeqNode) {
        let mid = self.keys.len() / 2;
        let right = SeqNode {
            keys: self.keys.split_off(mid + 1),
            present: self.present.split_off(mid + 1),
            children: if self.children.is_empty() {
                Vec::new()
            } else {
                self.children.split_off(mid + 1)
            },
        };
        let key = self.keys.pop().expect("a full node");
        let flag = self.present.pop().expect("a full node");
        (key, flag, right)
    }
}

impl SeqTree {
    /// The key's flag, if the key is in a node.
    fn flag(&mut self, key: u64) -> Option<&mut bool> {
        let mut node = &mut self.root;
        loop {
            match node.keys.binary_search(&key) {
                Ok(i) => return Some(&mut node.present[i]),
                Err(_) if node.children.is_empty() => return None,
                Err(i) => node = &mut node.children[i],
            }
        }
    }

    fn contains(&mut self, key: u64) -> bool {
        self.flag(key).is_some_and(|f| *f)
    }

    fn remove(&mut self, key: u64) -> bool {
        self.flag(key).is_some_and(|f| std::mem::replace(f, false))
    }

    fn insert(&mut self, key: u64) -> bool {
        if let Some(flag) = self.flag(key) {
            return !std::mem::replace(flag, true);
        }
        if self.root.keys.len() == MAX_KEYS {
            let mut left = std::mem::take(&mut self.root);
            let (up, flag, right) = left.split();
            self.root = SeqNode {
                keys: vec![up],
                present: vec![flag],
                children: vec![left, right],
            };
        }
        let mut node = &mut self.root;
        loop {
            let Err(mut i) = node.keys.binary_search(&key) else {
                unreachable!("the key is absent")
            };
            if node.children.is_empty() {
                node.keys.insert(i, key);
                node.present.insert(i, true);
                return true;
            }
            if node.children[i].keys.len() == MAX_KEYS {
                let (up, flag, right) = node.children[i].split();
                node.keys.insert(i, up);
                node.present.insert(i, flag);
                node.children.insert(i + 1, right);
                if key > up {
                    i += 1;
                }
            }
            node = &mut node.children[i];
        }
    }

    fn apply(&mut self, op: Op) -> bool {
        match op {
            Op::Contains(k) => self.contains(k),
            Op::Insert(k) => self.insert(k),
            Op::Remove(k) => self.remove(k),
        }
    }

    /// Present keys in order, and the shape check.
    fn walk(&self) -> (Vec<u64>, Result<(), String>) {
        let mut keys = Vec::new();
        let mut all = Vec::new();
        let mut leaf_depths = BTreeSet::new();
        fn visit(
            n: &SeqNode,
            depth: usize,
            keys: &mut Vec<u64>,
            all: &mut Vec<u64>,
            leaves: &mut BTreeSet<usize>,
            problem: &mut Option<String>,
        ) {
            if n.keys.len() > MAX_KEYS || n.keys.len() != n.present.len() {
                *problem = Some(format!("a node holds {} keys", n.keys.len()));
            }
            if n.children.is_empty() {
                leaves.insert(depth);
            } else if n.children.len() != n.keys.len() + 1 {
                *problem = Some("a node's children do not match its keys".into());
            }
            for i in 0..=n.keys.len() {
                if let Some(c) = n.children.get(i) {
                    visit(c, depth + 1, keys, all, leaves, problem);
                }
                if i < n.keys.len() {
                    all.push(n.keys[i]);
                    if n.present[i] {
                        keys.push(n.keys[i]);
                    }
                }
            }
        }
        let mut problem = None;
        visit(
            &self.root,
            0,
            &mut keys,
            &mut all,
            &mut leaf_depths,
            &mut problem,
        );
        (keys, shape(&all, &leaf_depths, problem))
    }
}

/// The shape check shared by both trees.
fn shape(
    all: &[u64],
    leaf_depths: &BTreeSet<usize>,
    problem: Option<String>,
) -> Result<(), String> {
    if let Some(p) = problem {
        return Err(p);
    }
    if all.windows(2).any(|w| w[0] >= w[1]) {
        return Err("the keys are not in order".into());
    }
    if leaf_depths.len() > 1 {
        return Err(format!("leaves at depths {leaf_depths:?}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The transactional tree.

/// A node of the transactional tree: replaced whole (copy-on-write) when its keys change.
#[derive(Clone, Debug, Default)]
struct Node {
    keys: Vec<u64>,
    /// Each key's presence, shared by the node's copies: removing a key writes this word only.
    present: Vec<Arc<TVar<bool>>>,
    /// Empty in a leaf; `keys.len() + 1` children otherwise.
    children: Vec<Arc<TBox<Node>>>,
}

impl Node {
    /// Splits a full node into its lower half, the median (key and flag) and its upper half.
    fn split(mut self) -> (Node, u64, Arc<TVar<bool>>, Node) {
        let mid = self.keys.len() / 2;
        let right = Node {
            keys: self.keys.split_off(mid + 1),
            present: self.present.split_off(mid + 1),
            children: if self.children.is_empty() {
                Vec::new()
            } else {
                self.children.split_off(mid + 1)
            },
        };
        let key = self.keys.pop().expect("a full node");
        let flag = self.present.pop().expect("a full node");
        (self, key, flag, right)
    }
}

/// The B-tree of `TBox` nodes, shared by the pool's tasks.
#[derive(Debug)]
pub struct TxTree {
    root: TBox<Arc<TBox<Node>>>,
}

impl Default for TxTree {
    fn default() -> Self {
        TxTree {
            root: TBox::new(Arc::new(TBox::new(Node::default()))),
        }
    }
}

impl TxTree {
    /// The key's flag, if the key is in a node: borrowed down the path, nothing cloned.
    fn flag<'a>(&'a self, tx: &'a Transaction, key: u64) -> StmResult<Option<&'a TVar<bool>>> {
        let mut node: &TBox<Node> = self.root.read(tx)?;
        loop {
            let n = node.read(tx)?;
            match n.keys.binary_search(&key) {
                Ok(i) => return Ok(Some(&n.present[i])),
                Err(_) if n.children.is_empty() => return Ok(None),
                Err(i) => node = &n.children[i],
            }
        }
    }

    /// Whether `key` is present.
    pub fn contains(&self, tx: &Transaction, key: u64) -> StmResult<bool> {
        match self.flag(tx, key)? {
            Some(flag) => flag.read(tx),
            None => Ok(false),
        }
    }

    /// Removes `key`; whether it was present.
    pub fn remove(&self, tx: &Transaction, key: u64) -> StmResult<bool> {
        match self.flag(tx, key)? {
            Some(flag) => flag.replace(tx, false),
            None => Ok(false),
        }
    }

    /// Inserts `key`; whether it was absent.
    pub fn insert(&self, tx: &Transaction, key: u64) -> StmResult<bool> {
        if let Some(flag) = self.flag(tx, key)? {
            return Ok(!flag.replace(tx, true)?);
        }
        let mut node_box = self.root.read(tx)?.clone();
        let mut node = node_box.read(tx)?.clone();
        if node.keys.len() == MAX_KEYS {
            // The old root's box keeps the lower half; a new root goes above it.
            let (left, up, flag, right) = node.split();
            node_box.write(tx, left);
            let root = Node {
                keys: vec![up],
                present: vec![flag],
                children: vec![node_box, Arc::new(TBox::new(right))],
            };
            node_box = Arc::new(TBox::new(root.clone()));
            self.root.write(tx, node_box.clone());
            node = root;
        }
        loop {
            let Err(i) = node.keys.binary_search(&key) else {
                unreachable!("the key is absent")
            };
            if node.children.is_empty() {
                node.keys.insert(i, key);
                node.present.insert(i, Arc::new(TVar::new(true)));
                node_box.write(tx, node);
                return Ok(true);
            }
            let child_box = node.children[i].clone();
            let child = child_box.read(tx)?.clone();
            if child.keys.len() < MAX_KEYS {
                (node_box, node) = (child_box, child);
                continue;
            }
            // Split the full child before entering it: this node has room for the median.
            let (left, up, flag, right) = child.split();
            let right_box = Arc::new(TBox::new(right.clone()));
            node.keys.insert(i, up);
            node.present.insert(i, flag);
            node.children.insert(i + 1, right_box.clone());
            node_box.write(tx, node);
            child_box.write(tx, left.clone());
            (node_box, node) = if key > up {
                (right_box, right)
            } else {
                (child_box, left)
            };
        }
    }

    fn apply(&self, tx: &Transaction, op: Op) -> StmResult<bool> {
        match op {
            Op::Contains(k) => self.contains(tx, k),
            Op::Insert(k) => self.insert(tx, k),
            Op::Remove(k) => self.remove(tx, k),
        }
    }

    /// Present keys in order, and the shape check, in one transaction.
    fn walk(&self) -> (Vec<u64>, Result<(), String>) {
        fn visit(
            tx: &Transaction,
            n: &TBox<Node>,
            depth: usize,
            out: &mut (Vec<u64>, Vec<u64>, BTreeSet<usize>, Option<String>),
        ) -> StmResult<()> {
            let n = n.read(tx)?;
            if n.keys.len() > MAX_KEYS || n.keys.len() != n.present.len() {
                out.3 = Some(format!("a node holds {} keys", n.keys.len()));
            }
            if n.children.is_empty() {
                out.2.insert(depth);
            } else if n.children.len() != n.keys.len() + 1 {
                out.3 = Some("a node's children do not match its keys".into());
            }
            for i in 0..=n.keys.len() {
                if let Some(c) = n.children.get(i) {
                    visit(tx, c, depth + 1, out)?;
                }
                if i < n.keys.len() {
                    out.1.push(n.keys[i]);
                    if n.present[i].read(tx)? {
                        out.0.push(n.keys[i]);
                    }
                }
            }
            Ok(())
        }
        let (keys, all, leaves, problem) = atomically(|tx| {
            let mut out = (Vec::new(), Vec::new(), BTreeSet::new(), None);
            visit(tx, self.root.read(tx)?, 0, &mut out)?;
            Ok(out)
        });
        (keys, shape(&all, &leaves, problem))
    }
}

// ---------------------------------------------------------------------------------------------
// Runs.

/// One run: its row and its final key set.
#[derive(Clone, Debug)]
pub struct BtreeRun {
    /// The row; its `check` covers this run alone (the shape, and the set against
    /// [`Stream::expected`]).
    pub run: AppRun,
    /// The present keys at the end, in order.
    pub keys: Vec<u64>,
}

/// Runs `implementation` (one of [`IMPLEMENTATIONS`]) over `stream` with `threads` threads:
/// `commute` runs each operation as a `TaskPool` task, `global-lock` splits the stream into one
/// contiguous share per thread.
///
/// # Panics
///
/// On an unknown implementation.
///
/// # Examples
///
/// ```
/// use commute_benches::apps::btree::{Stream, run};
///
/// let stream = Stream::generate(20_000, 1);
/// let seq = run("sequential", &stream, 1);
/// let stm = run("commute", &stream, 2);
/// assert!(seq.run.check.is_ok() && stm.run.check.is_ok());
/// assert_eq!(seq.keys, stm.keys);
/// ```
pub fn run(implementation: &'static str, stream: &Stream, threads: usize) -> BtreeRun {
    let threads = if implementation == "sequential" {
        1
    } else {
        threads
    };
    let lookups = Arc::new(Lookups::new(stream));
    let (seconds, counts, wrong, (keys, shape_check)) = match implementation {
        "sequential" => {
            let mut tree = SeqTree::default();
            for &k in &stream.pre {
                tree.insert(k);
            }
            let began = Instant::now();
            let mut wrong = 0u64;
            for &op in &stream.ops {
                let answer = tree.apply(op);
                wrong += u64::from(lookups.wrong(op, answer));
            }
            let seconds = began.elapsed().as_secs_f64();
            (seconds, None, wrong, tree.walk())
        }
        "global-lock" => {
            let mut plain = SeqTree::default();
            for &k in &stream.pre {
                plain.insert(k);
            }
            let tree = Mutex::new(plain);
            let per = stream.ops.len().div_ceil(threads).max(1);
            let jobs: Vec<_> = stream
                .ops
                .chunks(per)
                .map(|share| {
                    let (tree, lookups) = (&tree, &lookups);
                    move || {
                        let mut wrong = 0u64;
                        for &op in share {
                            let answer = tree.lock().expect("no thread panics").apply(op);
                            wrong += u64::from(lookups.wrong(op, answer));
                        }
                        wrong
                    }
                })
                .collect();
            let (seconds, wrong) = run_threads(jobs);
            let tree = tree.into_inner().expect("no thread panicked");
            (seconds, None, wrong.into_iter().sum(), tree.walk())
        }
        "commute" => {
            let tree = Arc::new(TxTree::default());
            for batch in stream.pre.chunks(64) {
                atomically(|tx| {
                    for &k in batch {
                        tree.insert(tx, k)?;
                    }
                    Ok(())
                });
            }
            let wrong = Arc::new(AtomicU64::new(0));
            let mut pool = TaskPool::new().with_threads(threads);
            for &op in &stream.ops {
                let (tree, lookups, wrong) = (tree.clone(), lookups.clone(), wrong.clone());
                pool.add(move |tx, _| {
                    let answer = tree.apply(tx, op)?;
                    if lookups.wrong(op, answer) {
                        // Counted once, by the attempt that commits.
                        let wrong = wrong.clone();
                        tx.on_commit(move || {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                    Ok(())
                });
            }
            let report = pool.run().expect("no task panics");
            let seconds = report.elapsed.as_secs_f64();
            let wrong = wrong.load(Ordering::Relaxed);
            (
                seconds,
                Some((report.commits, report.aborts)),
                wrong,
                tree.walk(),
            )
        }
        other => panic!("btree: no implementation `{other}`"),
    };
    let check = shape_check
        .and_then(|()| check_keys(&keys, stream))
        .and_then(|keys| check_lookups(keys, wrong, &lookups));
    BtreeRun {
        run: AppRun {
            benchmark: "btree".into(),
            implementation,
            threads,
            seconds,
            work: stream.ops.len() as u64,
            commits: counts.map(|c| c.0),
            aborts: counts.map(|c| c.1),
            check,
        },
        keys,
    }
}

/// Whether `keys` (in order) is the set every serial order of `stream` ends with.
fn check_keys(keys: &[u64], stream: &Stream) -> Result<String, String> {
    let expected: Vec<u64> = stream.expected().into_iter().collect();
    if keys == expected {
        return Ok(format!("{} keys, the serial result", keys.len()));
    }
    let missing = expected
        .iter()
        .filter(|k| keys.binary_search(k).is_err())
        .count();
    let extra = keys
        .iter()
        .filter(|k| expected.binary_search(k).is_err())
        .count();
    Err(format!(
        "{} keys where any serial order gives {}: {missing} missing, {extra} extra",
        keys.len(),
        expected.len()
    ))
}

/// Adds the lookups' verdict to a passing key check: `wrong` of the `lookups.fixed` lookups
/// with a fixed answer gave the other one.
fn check_lookups(keys: String, wrong: u64, lookups: &Lookups) -> Result<String, String> {
    if wrong == 0 {
        Ok(format!(
            "{keys}; all {} lookups of unchanged keys right",
            lookups.fixed
        ))
    } else {
        Err(format!(
            "{wrong} of {} lookups of keys the stream never changes answered wrong",
            lookups.fixed
        ))
    }
}

/// Runs commute's tree on plain threads instead of the pool: each thread one contiguous share
/// of the stream, each operation one `atomically`. Returns the row (implementation
/// `commute-threads`).
pub fn run_on_threads(stream: &Stream, threads: usize) -> AppRun {
    let lookups = Lookups::new(stream);
    let tree = TxTree::default();
    for &k in &stream.pre {
        atomically(|tx| tree.insert(tx, k));
    }
    let per = stream.ops.len().div_ceil(threads).max(1);
    let jobs: Vec<_> = stream
        .ops
        .chunks(per)
        .map(|share| {
            let (tree, lookups) = (&tree, &lookups);
            move || {
                let before = commute::stats::thread();
                let mut wrong = 0u64;
                for &op in share {
                    let answer = atomically(|tx| tree.apply(tx, op));
                    wrong += u64::from(lookups.wrong(op, answer));
                }
                (counts_since(before), wrong)
            }
        })
        .collect();
    let (seconds, results) = run_threads(jobs);
    let (counts, wrong): (Vec<_>, Vec<u64>) = results.into_iter().unzip();
    let (commits, aborts) = sum_counts(counts);
    let (keys, shape_check) = tree.walk();
    AppRun {
        benchmark: "btree".into(),
        implementation: "commute-threads",
        threads,
        seconds,
        work: stream.ops.len() as u64,
        commits: Some(commits),
        aborts: Some(aborts),
        check: shape_check
            .and_then(|()| check_keys(&keys, stream))
            .and_then(|keys| check_lookups(keys, wrong.iter().sum(), &lookups)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_trees_agree_with_a_btreeset_on_a_dense_stream() {
        // Many inserts and removes: splits at every level.
        let mut rng = XorShift::new(4);
        let mut model = BTreeSet::new();
        let mut plain = SeqTree::default();
        let tx_tree = TxTree::default();
        for _ in 0..20_000 {
            let key = 1 + rng.below(3_000);
            let op = match rng.below(3) {
                0 => Op::Insert(key),
                1 => Op::Remove(key),
                _ => Op::Contains(key),
            };
            let want = match op {
                Op::Insert(k) => model.insert(k),
                Op::Remove(k) => model.remove(&k),
                Op::Contains(k) => model.contains(&k),
            };
            assert_eq!(plain.apply(op), want, "{op:?}");
            assert_eq!(atomically(|tx| tx_tree.apply(tx, op)), want, "{op:?}");
        }
        let model: Vec<u64> = model.into_iter().collect();
        let (keys, shape) = plain.walk();
        assert_eq!((keys, shape), (model.clone(), Ok(())));
        let (keys, shape) = tx_tree.walk();
        assert_eq!((keys, shape), (model, Ok(())));
    }

    #[test]
    fn every_implementation_ends_in_the_serial_set() {
        let stream = Stream::generate(40_000, 9);
        for implementation in IMPLEMENTATIONS {
            let r = run(implementation, &stream, 3);
            assert!(r.run.check.is_ok(), "{implementation}: {:?}", r.run.check);
        }
        assert!(run_on_threads(&stream, 3).check.is_ok());
    }

    #[test]
    fn a_lost_insert_fails_the_check() {
        let stream = Stream::generate(5_000, 2);
        let mut keys: Vec<u64> = stream.expected().into_iter().collect();
        assert!(check_keys(&keys, &stream).is_ok());
        let inserted = stream
            .ops
            .iter()
            .find_map(|op| match *op {
                Op::Insert(k) if !stream.pre.contains(&k) => Some(k),
                _ => None,
            })
            .expect("the stream inserts a new key");
        keys.retain(|&k| k != inserted);
        let err = check_keys(&keys, &stream).unwrap_err();
        assert!(err.contains("1 missing"), "{err}");
    }

    #[test]
    fn a_skipped_lookup_is_a_wrong_answer() {
        let stream = Stream::generate(5_000, 2);
        let lookups = Lookups::new(&stream);
        assert!(lookups.fixed > 0);
        // A lookup answered "absent" without looking, for a pre-inserted key nothing removes.
        let wrong = stream
            .ops
            .iter()
            .filter(|&&op| lookups.wrong(op, false))
            .count() as u64;
        assert!(wrong > 0);
        // The serial run's answers are all right.
        let mut set: BTreeSet<u64> = stream.pre.iter().copied().collect();
        for &op in &stream.ops {
            let answer = match op {
                Op::Contains(k) => set.contains(&k),
                Op::Insert(k) => set.insert(k),
                Op::Remove(k) => set.remove(&k),
            };
            assert!(!lookups.wrong(op, answer), "{op:?}");
        }
        assert!(check_lookups(String::new(), wrong, &lookups).is_err());
    }
}

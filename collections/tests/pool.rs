//! `TaskPool`: random task programs (tasks adding tasks included) against serial runs, ordered
//! mode against the serial run in insertion order, panics, children of rolled-back attempts,
//! `retry`, and the pool's own conflict-freedom.

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use commute::{
    StmResult, TBox, TCounter, TQueue, TVar, TaskCtx, TaskPool, Transaction, atomically,
};
use quickcheck::{Arbitrary, Gen, QuickCheck};

// ----- random task programs ------------------------------------------------------------------

/// Variables of the random programs: each one's value is its history, the ids of the tasks that
/// appended to it, in commit order.
const VARS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    /// Read a variable's history.
    Read(usize),
    /// Append the task's id to a variable.
    Append(usize),
    /// Append to `target` only if `test`'s history has even length: the result depends on order.
    AppendIfEven { test: usize, target: usize },
    /// Add a child task running this program (if the task commits).
    Spawn(Program),
    /// Burn some CPU, so that attempts overlap.
    Spin(u32),
}

/// A task's program; `label` identifies it (unique in a test case, set by `label_all`), so
/// that the replay knows which program a child task ran.
#[derive(Clone, Debug)]
struct Program {
    label: u64,
    ops: Vec<Op>,
}

impl Program {
    fn gen_depth(g: &mut Gen, depth: u32) -> Self {
        let len = usize::arbitrary(g) % 5 + 1;
        let ops = (0..len)
            .map(|_| {
                let var = |g: &mut Gen| usize::arbitrary(g) % VARS;
                match u8::arbitrary(g) % 9 {
                    8 => Op::Spin(u32::arbitrary(g) % 2000),
                    0 | 1 => Op::Read(var(g)),
                    2 | 3 => Op::Append(var(g)),
                    4 | 5 => Op::AppendIfEven {
                        test: var(g),
                        target: var(g),
                    },
                    _ if depth < 2 => Op::Spawn(Program::gen_depth(g, depth + 1)),
                    _ => Op::Read(var(g)),
                }
            })
            .collect();
        Program { label: 0, ops }
    }

    /// Gives this program and every program it spawns a label from `next`.
    fn label(&mut self, next: &mut u64) {
        self.label = *next;
        *next += 1;
        for op in &mut self.ops {
            if let Op::Spawn(child) = op {
                child.label(next);
            }
        }
    }

    /// Every program by label.
    fn collect(&self, all: &mut HashMap<u64, Program>) {
        all.insert(self.label, self.clone());
        for op in &self.ops {
            if let Op::Spawn(child) = op {
                child.collect(all);
            }
        }
    }
}

impl Arbitrary for Program {
    fn arbitrary(g: &mut Gen) -> Self {
        Program::gen_depth(g, 0)
    }
}

fn label_all(roots: &mut [Program]) {
    let mut next = 0;
    for p in roots {
        p.label(&mut next);
    }
}

/// What one committed task did: which program it ran, and per read the variable and the length
/// of its history without the task's own appends (the committed prefix it read).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    label: u64,
    parent: Option<u64>,
    reads: Vec<(usize, usize)>,
}

type Records = Arc<Mutex<HashMap<u64, Seen>>>;

struct World {
    vars: Vec<TBox<Vec<u64>>>,
    records: Records,
}

/// Runs `program` as task `ctx.task()` inside `tx`, recording what it read on commit.
fn run_program(
    world: &Arc<World>,
    program: &Program,
    parent: Option<u64>,
    tx: &Transaction,
    ctx: &TaskCtx,
) -> StmResult<()> {
    let me = ctx.task().index();
    let mut own = [0usize; VARS];
    let mut reads = Vec::new();
    for op in &program.ops {
        match op {
            &Op::Read(x) => {
                let len = world.vars[x].read(tx)?.len();
                reads.push((x, len - own[x]));
            }
            &Op::Append(x) => {
                world.vars[x].modify(tx, |h| with(h, me))?;
                own[x] += 1;
            }
            &Op::AppendIfEven { test, target } => {
                let len = world.vars[test].read(tx)?.len();
                reads.push((test, len - own[test]));
                if len % 2 == 0 {
                    world.vars[target].modify(tx, |h| with(h, me))?;
                    own[target] += 1;
                }
            }
            Op::Spawn(child) => {
                let (w, child) = (world.clone(), child.clone());
                ctx.add(tx, move |tx, ctx| {
                    run_program(&w, &child, Some(me), tx, ctx)
                });
            }
            &Op::Spin(n) => spin(n),
        }
    }
    let records = world.records.clone();
    let seen = Seen {
        label: program.label,
        parent,
        reads,
    };
    tx.on_commit(move || {
        assert!(
            records.lock().unwrap().insert(me, seen).is_none(),
            "task {me} committed twice"
        );
    });
    Ok(())
}

fn spin(n: u32) {
    let mut x = 0u64;
    for i in 0..n {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(u64::from(i)));
    }
}

fn with(h: &[u64], id: u64) -> Vec<u64> {
    let mut h = h.to_vec();
    h.push(id);
    h
}

/// The serial semantics: runs `program` as task `me` on plain histories; returns what it read
/// and its children's programs.
fn run_serial(
    vars: &mut [Vec<u64>],
    program: &Program,
    me: u64,
) -> (Vec<(usize, usize)>, Vec<Program>) {
    let mut own = [0usize; VARS];
    let mut reads = Vec::new();
    let mut children = Vec::new();
    for op in &program.ops {
        match op {
            &Op::Read(x) => reads.push((x, vars[x].len() - own[x])),
            &Op::Append(x) => {
                vars[x].push(me);
                own[x] += 1;
            }
            &Op::AppendIfEven { test, target } => {
                let len = vars[test].len();
                reads.push((test, len - own[test]));
                if len % 2 == 0 {
                    vars[target].push(me);
                    own[target] += 1;
                }
            }
            Op::Spawn(child) => children.push(child.clone()),
            Op::Spin(_) => {}
        }
    }
    (reads, children)
}

/// Runs the roots on a pool and returns the final histories and what each task did.
fn run_on_pool(pool: TaskPool, roots: &[Program]) -> (Vec<Vec<u64>>, HashMap<u64, Seen>) {
    let mut pool = pool;
    let world = Arc::new(World {
        vars: (0..VARS).map(|_| TBox::new(Vec::new())).collect(),
        records: Arc::new(Mutex::new(HashMap::new())),
    });
    for p in roots {
        let (w, p) = (world.clone(), p.clone());
        pool.add(move |tx, ctx| run_program(&w, &p, None, tx, ctx));
    }
    let report = pool.run().expect("no task panics");
    if std::env::var_os("POOL_TEST_REPORT").is_some() {
        eprintln!("{report}");
    }
    let records = world.records.lock().unwrap().clone();
    assert_eq!(report.tasks as usize, records.len());
    let vars = world.vars.iter().map(TBox::load).collect();
    (vars, records)
}

/// The task order that explains what the pool's tasks saw, if one exists: per variable, its
/// appenders in history order; a reader after the appender of the last entry it saw and before
/// the appender of the next; a parent before its children.
fn serial_order(vars: &[Vec<u64>], seen: &HashMap<u64, Seen>) -> Option<Vec<u64>> {
    let mut edges: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut indegree: HashMap<u64, usize> = seen.keys().map(|&t| (t, 0)).collect();
    let mut edge = |a: u64, b: u64| {
        if a != b {
            edges.entry(a).or_default().push(b);
            *indegree.get_mut(&b).expect("a task that committed") += 1;
        }
    };
    for h in vars {
        for w in h.windows(2) {
            edge(w[0], w[1]);
        }
    }
    for (&t, s) in seen {
        if let Some(parent) = s.parent {
            edge(parent, t);
        }
        for &(x, prefix) in &s.reads {
            let h = &vars[x];
            if prefix > 0 {
                edge(h[prefix - 1], t);
            }
            if let Some(&next) = h.get(prefix) {
                edge(t, next);
            }
        }
    }
    let mut ready: Vec<u64> = indegree
        .iter()
        .filter(|&(_, &d)| d == 0)
        .map(|(&t, _)| t)
        .collect();
    let mut order = Vec::new();
    while let Some(t) = ready.pop() {
        order.push(t);
        for &n in edges.get(&t).map(Vec::as_slice).unwrap_or(&[]) {
            let d = indegree.get_mut(&n).unwrap();
            *d -= 1;
            if *d == 0 {
                ready.push(n);
            }
        }
    }
    (order.len() == seen.len()).then_some(order)
}

/// Checks that the pool's result is that of a serial run: replays the tasks in an order that
/// explains the observations, and compares every read, every child, and the final state.
fn check_serialisable(roots: &[Program], vars: &[Vec<u64>], seen: &HashMap<u64, Seen>) -> bool {
    let Some(order) = serial_order(vars, seen) else {
        eprintln!("no serial order explains the run: {vars:?} {seen:?}");
        return false;
    };
    let mut programs = HashMap::new();
    for p in roots {
        p.collect(&mut programs);
    }
    // Programs that may run now: the roots, then children once their parent has run.
    let mut runnable: HashMap<u64, usize> = HashMap::new();
    for p in roots {
        *runnable.entry(p.label).or_default() += 1;
    }
    let mut state = vec![Vec::new(); VARS];
    for &t in &order {
        let label = seen[&t].label;
        match runnable.get_mut(&label) {
            Some(n) if *n > 0 => *n -= 1,
            _ => {
                eprintln!("task {t} (program {label}) ran before its parent committed");
                return false;
            }
        }
        let (reads, children) = run_serial(&mut state, &programs[&label], t);
        if reads != seen[&t].reads {
            eprintln!("task {t} read {:?}, serially {reads:?}", seen[&t].reads);
            return false;
        }
        for c in children {
            *runnable.entry(c.label).or_default() += 1;
        }
    }
    if runnable.values().any(|&n| n > 0) {
        eprintln!("a committed task's child never ran");
        return false;
    }
    state == vars
}

/// The serial run in insertion order, as ordered mode defines it: roots in order, each child
/// appended to the queue when its parent commits.
fn serial_in_order(roots: &[Program]) -> (Vec<Vec<u64>>, HashMap<u64, Seen>) {
    let mut queue: VecDeque<(u64, Option<u64>, Program)> = (0..)
        .zip(roots.iter().cloned())
        .map(|(i, p)| (i, None, p))
        .collect();
    let mut next_id = roots.len() as u64;
    let mut vars = vec![Vec::new(); VARS];
    let mut seen = HashMap::new();
    while let Some((id, parent, p)) = queue.pop_front() {
        let (reads, children) = run_serial(&mut vars, &p, id);
        seen.insert(
            id,
            Seen {
                label: p.label,
                parent,
                reads,
            },
        );
        for c in children {
            queue.push_back((next_id, Some(id), c));
            next_id += 1;
        }
    }
    (vars, seen)
}

#[test]
fn random_programs_are_serialisable() {
    common::with_watchdog(20, || {
        fn prop(mut roots: Vec<Program>) -> bool {
            label_all(&mut roots);
            let (vars, seen) = run_on_pool(TaskPool::new().with_threads(2), &roots);
            check_serialisable(&roots, &vars, &seen)
        }
        QuickCheck::new()
            .tests(60)
            .quickcheck(prop as fn(Vec<Program>) -> bool);
    });
}

#[test]
fn random_programs_on_one_thread_are_serialisable() {
    common::with_watchdog(20, || {
        fn prop(mut roots: Vec<Program>) -> bool {
            label_all(&mut roots);
            let (vars, seen) = run_on_pool(TaskPool::new().with_threads(1), &roots);
            check_serialisable(&roots, &vars, &seen)
        }
        QuickCheck::new()
            .tests(30)
            .quickcheck(prop as fn(Vec<Program>) -> bool);
    });
}

#[test]
fn ordered_random_programs_equal_the_serial_run_in_order() {
    common::with_watchdog(20, || {
        fn prop(mut roots: Vec<Program>) -> bool {
            label_all(&mut roots);
            let (vars, seen) = run_on_pool(TaskPool::ordered().with_threads(2), &roots);
            (vars, seen) == serial_in_order(&roots)
        }
        QuickCheck::new()
            .tests(60)
            .quickcheck(prop as fn(Vec<Program>) -> bool);
    });
}

#[test]
fn many_conflicting_tasks_are_serialisable() {
    common::with_watchdog(20, || {
        // Larger than quickcheck's cases: 300 tasks (and their children) on 4 variables, so that
        // attempts really overlap and abort.
        let mut g = Gen::new(8);
        let mut roots: Vec<Program> = (0..300).map(|_| Program::arbitrary(&mut g)).collect();
        label_all(&mut roots);
        for _ in 0..3 {
            let (vars, seen) = run_on_pool(TaskPool::new().with_threads(2), &roots);
            assert!(check_serialisable(&roots, &vars, &seen));
            let ordered = run_on_pool(TaskPool::ordered().with_threads(2), &roots);
            assert!(ordered == serial_in_order(&roots));
        }
    });
}

// ----- ordered mode --------------------------------------------------------------------------

#[test]
fn ordered_mode_is_deterministic_for_conflicting_tasks() {
    common::with_watchdog(20, || {
        let expected = (0..500u64).fold(7u64, |x, i| x.wrapping_mul(31).wrapping_add(i));
        for _ in 0..3 {
            let v = Arc::new(TVar::new(7u64));
            let out = Arc::new(Mutex::new(Vec::new()));
            let mut pool = TaskPool::ordered().with_threads(2);
            for i in 0..500u64 {
                let (v, out) = (v.clone(), out.clone());
                pool.add(move |tx, _| {
                    let x = v.modify(tx, |x| x.wrapping_mul(31).wrapping_add(i))?;
                    let out = out.clone();
                    // Commit hooks run in commit order, which is insertion order.
                    tx.on_commit(move || out.lock().unwrap().push((i, x)));
                    Ok(())
                });
            }
            pool.run().unwrap();
            assert_eq!(v.load(), expected);
            let out = out.lock().unwrap();
            let order: Vec<u64> = out.iter().map(|&(i, _)| i).collect();
            assert_eq!(order, (0..500).collect::<Vec<_>>());
        }
    });
}

#[test]
fn ordered_read_only_tasks_see_their_predecessors() {
    common::with_watchdog(20, || {
        // Task 2i writes i; task 2i+1 only reads, and must see exactly i (not an older snapshot).
        let v = Arc::new(TVar::new(u64::MAX));
        let wrong = Arc::new(AtomicUsize::new(0));
        let mut pool = TaskPool::ordered().with_threads(2);
        for i in 0..2000u64 {
            let (v, wrong) = (v.clone(), wrong.clone());
            if i % 2 == 0 {
                pool.add(move |tx, _| {
                    v.write(tx, i / 2);
                    // Commit late, so that the reader's attempt starts from the older state.
                    spin(3000);
                    Ok(())
                });
            } else {
                pool.add(move |tx, _| {
                    let seen = v.read(tx)?;
                    if seen != i / 2 {
                        let wrong = wrong.clone();
                        tx.on_commit(move || {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                    Ok(())
                });
            }
        }
        pool.run().unwrap();
        assert_eq!(wrong.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn ordered_children_follow_every_task_added_before_their_parent_committed() {
    common::with_watchdog(20, || {
        let log = Arc::new(TQueue::new());
        let mut pool = TaskPool::ordered().with_threads(2);
        for i in 0..3u64 {
            let log = log.clone();
            pool.add(move |tx, ctx| {
                log.push(tx, format!("root {i}"));
                for c in 0..2u64 {
                    let log = log.clone();
                    ctx.add(tx, move |tx, ctx| {
                        log.push(tx, format!("child {i}.{c} = {}", ctx.task()));
                        Ok(())
                    });
                }
                Ok(())
            });
        }
        pool.run().unwrap();
        let lines: Vec<String> = std::iter::from_fn(|| log.atomic().pop()).collect();
        assert_eq!(
            lines,
            [
                "root 0",
                "root 1",
                "root 2",
                "child 0.0 = task #3",
                "child 0.1 = task #4",
                "child 1.0 = task #5",
                "child 1.1 = task #6",
                "child 2.0 = task #7",
                "child 2.1 = task #8",
            ]
        );
    });
}

// ----- panics --------------------------------------------------------------------------------

fn panicking_run(pool: TaskPool) {
    let mut pool = pool;
    let v = Arc::new(TVar::new(0u64));
    let done = Arc::new(TCounter::new());
    let children = Arc::new(TCounter::new());
    let mut ids = Vec::new();
    for i in 0..200u64 {
        let (v, done, children) = (v.clone(), done.clone(), children.clone());
        ids.push(pool.add(move |tx, ctx| {
            v.add(tx, 1);
            let children = children.clone();
            ctx.add(tx, move |tx, _| {
                children.incr(tx);
                Ok(())
            });
            if i % 50 == 7 {
                panic!("task {i} fails");
            }
            done.incr(tx);
            Ok(())
        }));
    }
    let err = pool.run().unwrap_err();
    // Nothing of the four panicking attempts is visible, their children never ran, and every
    // other task (and child) did.
    assert_eq!(v.load(), 196);
    assert_eq!(done.load(), 196);
    assert_eq!(children.load(), 196);
    let report = err.report();
    assert_eq!(report.panicked, 4);
    assert_eq!(report.tasks, 196 * 2);
    assert!([7, 57, 107, 157].contains(&err.task().index()));
    assert_eq!(
        err.message(),
        Some(format!("task {} fails", err.task().index()).as_str())
    );
}

#[test]
fn a_panicking_task_does_not_stop_the_others() {
    common::with_watchdog(20, || {
        panicking_run(TaskPool::new().with_threads(2));
        panicking_run(TaskPool::new().with_threads(1));
    });
}

#[test]
fn ordered_mode_goes_on_after_a_panic_and_reports_the_earliest() {
    common::with_watchdog(20, || {
        for _ in 0..3 {
            let mut pool = TaskPool::ordered().with_threads(2);
            let order = Arc::new(Mutex::new(Vec::new()));
            for i in 0..100u64 {
                let order = order.clone();
                pool.add(move |tx, _| {
                    if i == 80 || i == 30 {
                        panic!("task {i} fails");
                    }
                    let order = order.clone();
                    tx.on_commit(move || order.lock().unwrap().push(i));
                    Ok(())
                });
            }
            let err = pool.run().unwrap_err();
            assert_eq!(err.task().index(), 30, "the earliest in the order");
            let expected: Vec<u64> = (0..100).filter(|&i| i != 30 && i != 80).collect();
            assert_eq!(*order.lock().unwrap(), expected);
        }
    });
}

#[test]
fn a_panicking_child_is_reported() {
    common::with_watchdog(20, || {
        let mut pool = TaskPool::new().with_threads(2);
        let parent_done = Arc::new(TVar::new(false));
        let done = parent_done.clone();
        pool.add(move |tx, ctx| {
            ctx.add(tx, |_, _| panic!("child fails"));
            done.write(tx, true);
            Ok(())
        });
        let err = pool.run().unwrap_err();
        assert_eq!(
            err.task().index(),
            1,
            "the child got the id after its parent's"
        );
        assert_eq!(err.message(), Some("child fails"));
        assert_eq!((err.report().tasks, err.report().panicked), (1, 1));
        assert!(parent_done.load(), "the parent's commit stands");
    });
}

#[test]
#[should_panic(expected = "boom")]
fn a_task_panic_can_be_re_raised() {
    common::with_watchdog(20, || {
        let mut pool = TaskPool::new();
        pool.add(|_, _| panic!("boom"));
        if let Err(p) = pool.run() {
            p.resume();
        }
    });
}

// ----- children --------------------------------------------------------------------------------

#[test]
fn children_of_a_conflicted_attempt_never_run() {
    common::with_watchdog(20, || {
        let x = Arc::new(TVar::new(0u64));
        let ran = Arc::new(Mutex::new(Vec::new()));
        let go = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU32::new(0));
        let writer = {
            let (x, go, written) = (x.clone(), go.clone(), written.clone());
            std::thread::spawn(move || {
                while !go.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                atomically(|tx| {
                    x.write(tx, 1);
                    Ok(())
                });
                written.store(true, Ordering::Release);
            })
        };
        let mut pool = TaskPool::new().with_threads(1);
        {
            let (x, ran, attempts) = (x.clone(), ran.clone(), attempts.clone());
            pool.add(move |tx, ctx| {
                let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
                let seen = x.read(tx)?;
                let ran2 = ran.clone();
                ctx.add(tx, move |_, _| {
                    ran2.lock().unwrap().push((attempt, seen));
                    Ok(())
                });
                if attempt == 1 {
                    // Let another transaction change what this attempt read: its commit fails.
                    go.store(true, Ordering::Release);
                    while !written.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                }
                x.write(tx, seen + 10);
                Ok(())
            });
        }
        let report = pool.run().unwrap();
        writer.join().unwrap();
        assert_eq!(attempts.load(Ordering::Relaxed), 2);
        assert_eq!(
            *ran.lock().unwrap(),
            [(2, 1)],
            "only the committed attempt's child ran"
        );
        assert_eq!(x.load(), 11);
        assert_eq!(report.tasks, 2);
        assert_eq!(report.aborts, 1);
    });
}

#[test]
fn children_of_a_retried_or_else_branch_never_run() {
    common::with_watchdog(20, || {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(TVar::new(false));
        let mut pool = TaskPool::new().with_threads(2);
        let (r, g) = (ran.clone(), gate.clone());
        pool.add(move |tx, ctx| {
            tx.or_else(
                |tx| {
                    let r = r.clone();
                    ctx.add(tx, move |_, _| {
                        r.lock().unwrap().push("first");
                        Ok(())
                    });
                    if g.read(tx)? { Ok(()) } else { tx.retry() }
                },
                |_| {
                    let r = r.clone();
                    ctx.add(tx, move |_, _| {
                        r.lock().unwrap().push("second");
                        Ok(())
                    });
                    Ok(())
                },
            )
        });
        pool.run().unwrap();
        assert_eq!(*ran.lock().unwrap(), ["second"]);
    });
}

#[test]
fn children_see_their_parents_commit() {
    common::with_watchdog(20, || {
        for pool in [
            TaskPool::new().with_threads(2),
            TaskPool::ordered().with_threads(2),
        ] {
            let mut pool = pool;
            let cells: Arc<Vec<TVar<u64>>> = Arc::new((0..200).map(|_| TVar::new(0)).collect());
            let bad = Arc::new(AtomicUsize::new(0));
            for i in 0..200usize {
                let (cells, bad) = (cells.clone(), bad.clone());
                pool.add(move |tx, ctx| {
                    cells[i].write(tx, 1);
                    let (cells, bad) = (cells.clone(), bad.clone());
                    ctx.add(tx, move |tx, _| {
                        if cells[i].read(tx)? != 1 {
                            let bad = bad.clone();
                            tx.on_commit(move || {
                                bad.fetch_add(1, Ordering::Relaxed);
                            });
                        }
                        cells[i].write(tx, 2);
                        Ok(())
                    });
                    Ok(())
                });
            }
            let report = pool.run().unwrap();
            assert_eq!(bad.load(Ordering::Relaxed), 0);
            assert!(cells.iter().all(|c| c.load() == 2));
            assert_eq!(report.tasks, 400);
        }
    });
}

#[test]
fn a_deep_chain_of_children_runs_to_the_end() {
    common::with_watchdog(20, || {
        fn link(
            left: u32,
            count: Arc<TCounter>,
        ) -> impl FnMut(&Transaction, &TaskCtx) -> StmResult<()> + Send + 'static {
            move |tx, ctx| {
                count.incr(tx);
                if left > 0 {
                    ctx.add(tx, link(left - 1, count.clone()));
                }
                Ok(())
            }
        }
        for pool in [
            TaskPool::new().with_threads(2),
            TaskPool::ordered().with_threads(2),
        ] {
            let mut pool = pool;
            let count = Arc::new(TCounter::new());
            pool.add(link(2000, count.clone()));
            pool.add(link(2000, count.clone()));
            assert_eq!(pool.run().unwrap().tasks, 4002);
            assert_eq!(count.load(), 4002);
        }
    });
}

// ----- retry ---------------------------------------------------------------------------------

#[test]
fn a_task_waiting_for_a_later_task_does_not_block_its_worker() {
    common::with_watchdog(20, || {
        // With one worker, the consumer runs first and retries; the producer must still run.
        for threads in [1, 2] {
            let queue = Arc::new(TQueue::new());
            let got = Arc::new(Mutex::new(Vec::new()));
            let mut pool = TaskPool::new().with_threads(threads);
            for _ in 0..3 {
                let (q, got) = (queue.clone(), got.clone());
                pool.add(move |tx, _| {
                    let item = q.pop_wait(tx)?;
                    let got = got.clone();
                    tx.on_commit(move || got.lock().unwrap().push(item));
                    Ok(())
                });
            }
            for i in 0..3u64 {
                let q = queue.clone();
                pool.add(move |tx, _| {
                    q.push(tx, i);
                    Ok(())
                });
            }
            let report = pool.run().unwrap();
            assert_eq!(report.tasks, 6);
            let mut got = got.lock().unwrap().clone();
            got.sort_unstable();
            assert_eq!(got, [0, 1, 2]);
        }
    });
}

#[test]
fn put_aside_tasks_wait_for_each_other() {
    common::with_watchdog(60, || {
        // A chain where each task waits for the previous one's flag, added in reverse: the one
        // task that can go on is the last put aside. Chains longer than a worker's old limit of
        // 64 alternatives at a time (which hung) included.
        for (n, threads) in [(20, 1), (70, 1), (140, 2), (300, 2)] {
            let flags: Arc<Vec<TVar<bool>>> = Arc::new((0..n).map(|_| TVar::new(false)).collect());
            let mut pool = TaskPool::new().with_threads(threads);
            for i in (0..n).rev() {
                let flags = flags.clone();
                pool.add(move |tx, _| {
                    if i > 0 && !flags[i - 1].read(tx)? {
                        return tx.retry();
                    }
                    flags[i].write(tx, true);
                    Ok(())
                });
            }
            let report = pool.run().unwrap();
            assert_eq!(report.tasks, n as u64, "{n} tasks on {threads} workers");
            assert!(report.retried > 0);
            assert!(flags.iter().all(TVar::load));
        }
    });
}

#[test]
fn ordered_retry_waits_for_an_outside_commit() {
    common::with_watchdog(20, || {
        let flag = Arc::new(TVar::new(false));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut pool = TaskPool::ordered().with_threads(2);
        for i in 0..10u64 {
            let (flag, order) = (flag.clone(), order.clone());
            pool.add(move |tx, _| {
                if i == 3 && !flag.read(tx)? {
                    return tx.retry();
                }
                let order = order.clone();
                tx.on_commit(move || order.lock().unwrap().push(i));
                Ok(())
            });
        }
        let setter = {
            let flag = flag.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                flag.atomic_set();
            })
        };
        pool.run().unwrap();
        setter.join().unwrap();
        assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
    });
}

/// Ordered tasks that each take a job and move it out in a commit hook (`Taken::into_inner`,
/// which waits for the pinned attempts that began before the take). A task's first attempt
/// used to wait for its turn while pinned by its own take, and its predecessor's hook, which
/// runs before the turn moves on, waited for that pin: `run` never returned (a reviewer's
/// test).
#[test]
fn ordered_tasks_move_taken_jobs_out_in_commit_hooks() {
    common::with_watchdog(120, || {
        for _ in 0..20 {
            let jobs = Arc::new(TQueue::new());
            for j in 0..64 {
                jobs.atomic().push(format!("job{j}"));
            }
            let done = Arc::new(Mutex::new(Vec::new()));
            let mut pool = TaskPool::ordered().with_threads(2);
            for _ in 0..64 {
                let (jobs, done) = (jobs.clone(), done.clone());
                pool.add(move |tx, _| {
                    // Some work first, so that neighbours' attempts overlap.
                    spin(2_000);
                    let taken = jobs.take(tx)?.expect("a job per task");
                    let done = done.clone();
                    tx.on_commit(move || done.lock().unwrap().push(taken.into_inner()));
                    Ok(())
                });
            }
            pool.run().unwrap();
            let expected: Vec<String> = (0..64).map(|j| format!("job{j}")).collect();
            assert_eq!(
                *done.lock().unwrap(),
                expected,
                "taken in the order of the tasks"
            );
        }
    });
}

/// A thread outside an ordered pool moves out a job it took while the task at the turn waits
/// (in `retry`) for that thread's next commit, and the next task's first attempt, pinned by a
/// queue read, waits for its turn: each waited for the next (a reviewer's test).
#[test]
fn an_outside_thread_moves_out_a_job_while_ordered_tasks_wait() {
    common::with_watchdog(60, || {
        for _ in 0..20 {
            let gate = Arc::new(TVar::new(false));
            let other = Arc::new(TQueue::<u32>::new());
            let jobs = Arc::new(TQueue::new());
            jobs.atomic().push(String::from("job"));
            let started = Arc::new(AtomicBool::new(false));
            let mut pool = TaskPool::ordered().with_threads(2);
            {
                let gate = gate.clone();
                pool.add(move |tx, _| if gate.read(tx)? { Ok(()) } else { tx.retry() });
            }
            {
                let (other, started) = (other.clone(), started.clone());
                pool.add(move |tx, _| {
                    other.peek(tx)?;
                    started.store(true, Ordering::Release);
                    Ok(())
                });
            }
            let runner = std::thread::spawn(move || pool.run().map(|r| r.tasks));
            while !started.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            let taken = atomically(|tx| jobs.take(tx)).expect("the job");
            assert_eq!(taken.into_inner(), "job");
            gate.atomic_set();
            assert_eq!(runner.join().unwrap().unwrap(), 2);
        }
    });
}

trait AtomicSet {
    fn atomic_set(&self);
}

impl AtomicSet for TVar<bool> {
    fn atomic_set(&self) {
        atomically(|tx| {
            self.write(tx, true);
            Ok(())
        });
    }
}

// ----- the pool's own overhead -----------------------------------------------------------------

#[test]
fn empty_tasks_never_abort() {
    common::with_watchdog(20, || {
        for pool in [
            TaskPool::new().with_threads(2),
            TaskPool::ordered().with_threads(2),
        ] {
            let mut pool = pool;
            for _ in 0..20_000 {
                pool.add(|_, _| Ok(()));
            }
            let report = pool.run().unwrap();
            assert_eq!(report.tasks, 20_000);
            assert_eq!(report.commits, 20_000);
            assert_eq!(report.aborts, 0, "{report}");
        }
    });
}

#[test]
fn counting_tasks_never_abort() {
    common::with_watchdog(20, || {
        // Tasks that only touch commute's conflict-free structures: no pool-made conflicts either.
        let hits = Arc::new(TCounter::new());
        let log = Arc::new(TQueue::new());
        let mut pool = TaskPool::new().with_threads(2);
        for i in 0..20_000u64 {
            let (hits, log) = (hits.clone(), log.clone());
            pool.add(move |tx, _| {
                hits.incr(tx);
                log.push(tx, i);
                Ok(())
            });
        }
        let report = pool.run().unwrap();
        assert_eq!(hits.load(), 20_000);
        assert_eq!(log.atomic().len(), 20_000);
        assert_eq!(report.aborts, 0, "{report}");
    });
}

// ----- the pool itself -------------------------------------------------------------------------

#[test]
fn a_pool_runs_again_and_keeps_numbering() {
    common::with_watchdog(20, || {
        let mut pool = TaskPool::new().with_threads(2);
        assert_eq!(pool.run().unwrap().tasks, 0);
        let a = pool.add(|_, _| Ok(()));
        pool.run().unwrap();
        let b = pool.add(|_, _| Ok(()));
        assert_eq!((a.index(), b.index()), (0, 1));
        assert_eq!(pool.run().unwrap().tasks, 1);
        assert!(pool.is_empty());
    });
}

#[test]
#[should_panic(expected = "inside a transaction")]
fn run_inside_a_transaction_panics() {
    common::with_watchdog(20, || {
        atomically(|_| {
            let mut pool = TaskPool::new();
            pool.add(|_, _| Ok(()));
            let _ = pool.run();
            Ok(())
        });
    });
}

#[test]
fn run_from_a_commit_hook_works() {
    common::with_watchdog(20, || {
        let done = Arc::new(TCounter::new());
        let d = done.clone();
        atomically(move |tx| {
            let d = d.clone();
            tx.on_commit(move || {
                let mut pool = TaskPool::new().with_threads(2);
                for _ in 0..10 {
                    let d = d.clone();
                    pool.add(move |tx, _| {
                        d.incr(tx);
                        Ok(())
                    });
                }
                pool.run().unwrap();
            });
            Ok(())
        });
        assert_eq!(done.load(), 10);
    });
}

#[test]
fn debug_output_names_the_parts() {
    common::with_watchdog(20, || {
        let mut pool = TaskPool::ordered().with_threads(2);
        pool.add(|_, _| Ok(()));
        let s = format!("{pool:?}");
        assert!(
            s.contains("TaskPool") && s.contains("ordered: true") && s.contains("pending_tasks: 1")
        );
        let report = pool.run().unwrap();
        assert!(format!("{report:?}").contains("PoolReport"));
        assert!(report.to_string().contains("1 tasks on 2 threads"));
    });
}

#[test]
fn the_pool_can_move_between_threads() {
    common::with_watchdog(20, || {
        fn is_send<T: Send>(_: &T) {}
        let mut pool = TaskPool::new();
        pool.add(|_, _| Ok(()));
        is_send(&pool);
        let report = std::thread::spawn(move || pool.run().unwrap())
            .join()
            .unwrap();
        assert_eq!(report.tasks, 1);
    });
}

#[test]
fn the_watcher_shows_a_stuck_workers_blocked_transaction() {
    common::with_watchdog(20, || {
        let gate = Arc::new(commute::TVar::new(false).with_label("pool-test gate"));
        let mut pool = TaskPool::new().with_threads(2);
        for _ in 0..2 {
            let g = gate.clone();
            pool.add(move |tx, _| if g.read(tx)? { Ok(()) } else { tx.retry() });
        }
        let watcher = pool.watcher();
        assert!(!watcher.is_running());
        let runner = std::thread::spawn(move || pool.run().map(|r| r.tasks));
        let blocked = loop {
            let blocked = watcher.blocked_transactions();
            if !blocked.is_empty() {
                break blocked;
            }
            std::thread::yield_now();
        };
        assert!(watcher.is_running());
        assert!(
            blocked.iter().all(|b| b
                .waiting_on()
                .iter()
                .any(|v| v.label() == Some("pool-test gate"))),
            "{blocked:?}"
        );
        let shown = format!("{watcher:?}");
        assert!(shown.contains("pool-test gate"), "{shown}");
        commute::atomically(|tx| {
            gate.write(tx, true);
            Ok(())
        });
        assert_eq!(runner.join().unwrap().unwrap(), 2);
        assert!(!watcher.is_running());
        assert!(watcher.blocked_transactions().is_empty());
    });
}

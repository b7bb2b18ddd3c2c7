//! `instructions`: instructions per operation of commute's basic operations beside lock-based
//! baselines, counted by valgrind's callgrind: deterministic, unlike times. `--help` for the
//! options.
//!
//! `--measure` runs every case (`commute_benches::instructions`) under callgrind twice, with
//! `N1` and `N2` operations after the same warm-up, counting the case alone ([`CASE_ONLY`]:
//! its set-up, warm-up, operations and teardown, not the process's start and exit), reads
//! each run's instruction total from callgrind's output file, and reports
//! `(Ir(N2) - Ir(N1)) / (N2 - N1)`: the set-up, warm-up and teardown are the same in both runs
//! and cancel, while work the operations leave for later (the old versions a snapshot keeps,
//! freed when it closes) still counts. The process's exit is left out because it is not always
//! the same to the instruction: the thread's teardown frees what it still holds, and `malloc`
//! may consolidate its free lists then in one run and during the operations in the other (the
//! `vacation` case's 2,048-operation run spent 1.24 million instructions more than its other
//! run in the exit that way, and its row read 108 per operation too low).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use commute_benches::instructions::{CASES, Case, LOG_BATCH, ROWS_TABLE, Side, WARMUP, case};
use commute_benches::report::{json_number, json_string};

const USAGE: &str = "\
instructions: instructions per operation of commute and lock-based baselines (callgrind)

usage:
  instructions --measure [--case NAMES] [--n1 N] [--n2 N] [--jobs J] [--json FILE] [--keep DIR]
  instructions --annotate CASE [--ops N] [--top K]
  instructions --run CASE --ops N
  instructions --list | --help

  --measure       run each case under `valgrind --tool=callgrind` with N1 and N2 operations
                  (after the same warm-up), count the case alone (--toggle-collect: not the
                  process's start and exit), and print (Ir(N2) - Ir(N1)) / (N2 - N1) per case,
                  with the targets; never fails on a missed target
  --case NAMES    comma-separated cases (`map-get/dashmap`) or rows (`map-get`); default all
  --n1 N, --n2 N  the two operation counts (default 2048 and 12288; multiples of 64 keep the
                  event case's log empty at the end of both runs)
  --jobs J        valgrind processes at a time (default: the available cores)
  --json FILE     also write the results as JSON to FILE (`-`: to stdout, instead of the table)
  --keep DIR      keep callgrind's output files in DIR (default: a temporary folder, removed)
  --annotate CASE run CASE under callgrind collecting only the measured operations
                  (--toggle-collect), --ops N of them (default 12288), and print the top K
                  functions (default 15) by own and by inclusive instructions per operation
  --run CASE      run CASE without valgrind (what --measure runs under callgrind) and print
                  its checksum
  --list          the cases

valgrind comes from the system (Debian/Ubuntu: apt-get install valgrind); set VALGRIND to use
another binary. Build with the release profile:
  cargo run --release -p commute-benches --bin instructions -- --measure
";

/// Default operation counts of `--measure`.
const N1: u64 = 2048;
const N2: u64 = 12288;

#[derive(Debug)]
struct Options {
    mode: Mode,
    cases: Vec<&'static Case>,
    n1: u64,
    n2: u64,
    ops: u64,
    jobs: usize,
    json: Option<String>,
    keep: Option<PathBuf>,
    top: usize,
}

#[derive(Debug, PartialEq)]
enum Mode {
    Help,
    List,
    Measure,
    Annotate(&'static Case),
    Run(&'static Case),
}

fn number(flag: &str, value: Option<String>) -> Result<u64, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("{flag}: `{value}` is not a number"))
}

fn named_case(name: &str) -> Result<&'static Case, String> {
    case(name).ok_or_else(|| format!("no case `{name}` (--list shows them)"))
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut opts = Options {
        mode: Mode::Help,
        cases: CASES.iter().collect(),
        n1: N1,
        n2: N2,
        ops: N2,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        json: None,
        keep: None,
        top: 15,
    };
    let mut mode = None;
    while let Some(arg) = args.next() {
        let new_mode = match arg.as_str() {
            "--help" | "-h" => Some(Mode::Help),
            "--list" => Some(Mode::List),
            "--measure" => Some(Mode::Measure),
            "--annotate" | "--run" => {
                let name = args.next().ok_or_else(|| format!("{arg} needs a case"))?;
                let case = named_case(&name)?;
                Some(if arg == "--run" {
                    Mode::Run(case)
                } else {
                    Mode::Annotate(case)
                })
            }
            "--case" => {
                let names = args.next().ok_or("--case needs names")?;
                let mut cases = Vec::new();
                for name in names.split(',').filter(|n| !n.is_empty()) {
                    let found: Vec<_> = CASES
                        .iter()
                        .filter(|c| c.name == name || c.row == name)
                        .collect();
                    if found.is_empty() {
                        return Err(format!("no case or row `{name}` (--list shows them)"));
                    }
                    cases.extend(found);
                }
                // Table order, each once.
                opts.cases = CASES
                    .iter()
                    .filter(|c| cases.iter().any(|s| s.name == c.name))
                    .collect();
                None
            }
            "--n1" => {
                opts.n1 = number(&arg, args.next())?;
                None
            }
            "--n2" => {
                opts.n2 = number(&arg, args.next())?;
                None
            }
            "--ops" => {
                opts.ops = number(&arg, args.next())?;
                None
            }
            "--jobs" => {
                opts.jobs = number(&arg, args.next())?.max(1) as usize;
                None
            }
            "--top" => {
                opts.top = number(&arg, args.next())? as usize;
                None
            }
            "--json" => {
                opts.json = Some(args.next().ok_or("--json needs a file (or -)")?);
                None
            }
            "--keep" => {
                opts.keep = Some(args.next().ok_or("--keep needs a folder")?.into());
                None
            }
            other => return Err(format!("unknown argument `{other}` (--help)")),
        };
        if let Some(new_mode) = new_mode {
            if mode.is_some() {
                return Err("give one of --measure, --annotate, --run, --list, --help".into());
            }
            mode = Some(new_mode);
        }
    }
    opts.mode = mode.ok_or("give --measure (or --help)")?;
    if opts.mode == Mode::Measure && opts.n2 <= opts.n1 {
        return Err(format!(
            "--n2 ({}) must be greater than --n1 ({})",
            opts.n2, opts.n1
        ));
    }
    Ok(opts)
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("instructions: {message}");
            return ExitCode::from(2);
        }
    };
    let result = match opts.mode {
        Mode::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Mode::List => {
            for case in CASES {
                println!("{:<20} {}", case.name, case.what);
            }
            Ok(())
        }
        Mode::Run(case) => {
            println!(
                "{} {} ops: checksum {}",
                case.name,
                opts.ops,
                case.run(opts.ops)
            );
            Ok(())
        }
        Mode::Measure => measure(&opts),
        Mode::Annotate(case) => annotate(&opts, case),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("instructions: {message}");
            ExitCode::FAILURE
        }
    }
}

// ----- valgrind --------------------------------------------------------------------------------

fn valgrind_binary() -> String {
    std::env::var("VALGRIND").unwrap_or_else(|_| "valgrind".into())
}

/// valgrind's version line, or how to install it.
fn valgrind_version() -> Result<String, String> {
    let binary = valgrind_binary();
    match Command::new(&binary).arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(format!(
            "`{binary} --version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Err(format!(
            "cannot run valgrind (`{binary}`: {err}). The measurement runs each case under \
             valgrind's callgrind; install valgrind first (Debian/Ubuntu: apt-get install \
             valgrind; Fedora: dnf install valgrind), or set VALGRIND to its path."
        )),
    }
}

/// callgrind's option that counts the measured operations alone
/// ([`commute_benches::instructions::measured`]), for `--annotate`.
const MEASURED_ONLY: &str = "--toggle-collect=*instructions::measured*";

/// callgrind's option that counts a case alone ([`Case::run`]), for `--measure`.
const CASE_ONLY: &str = "--toggle-collect=*instructions::Case::run*";

/// Runs `case` with `ops` operations under callgrind, writing its output to `out`, and returns
/// the instruction total of the run (of the collected part, with `--toggle-collect`).
fn callgrind(case: &Case, ops: u64, out: &Path, extra: &[&str]) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut command = Command::new(valgrind_binary());
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .args(extra)
        .arg(exe)
        .args(["--run", case.name, "--ops", &ops.to_string()])
        .stdin(Stdio::null());
    let output = command
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
        return Err(format!(
            "{} with {ops} ops failed under callgrind ({}):\n{}",
            case.name,
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let text = std::fs::read_to_string(out)
        .map_err(|e| format!("cannot read callgrind's output {}: {e}", out.display()))?;
    total_instructions(&text).ok_or_else(|| {
        format!(
            "no `totals:` or `summary:` line in callgrind's output {}",
            out.display()
        )
    })
}

/// The instruction total of a callgrind output file: its `totals:` line (`summary:` in older
/// versions); the first event is Ir, the only one collected by default.
fn total_instructions(text: &str) -> Option<u64> {
    ["totals:", "summary:"].iter().find_map(|key| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    })
}

/// A temporary folder for callgrind's files, or `--keep`'s.
fn out_dir(keep: Option<&Path>) -> Result<(PathBuf, bool), String> {
    let (dir, temporary) = match keep {
        Some(dir) => (dir.to_path_buf(), false),
        None => (
            std::env::temp_dir().join(format!("commute-instructions-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok((dir, temporary))
}

fn out_file(dir: &Path, case: &Case, ops: u64, suffix: &str) -> PathBuf {
    dir.join(format!(
        "callgrind.{}.{ops}{suffix}.out",
        case.name.replace('/', "-")
    ))
}

// ----- --measure -------------------------------------------------------------------------------

/// One case measured.
struct Measured {
    case: &'static Case,
    ir1: u64,
    ir2: u64,
    per_op: f64,
}

fn measure(opts: &Options) -> Result<(), String> {
    let version = valgrind_version()?;
    let (dir, temporary) = out_dir(opts.keep.as_deref())?;
    let started = Instant::now();
    let runs: Vec<(usize, u64)> = (0..opts.cases.len())
        .flat_map(|i| [(i, opts.n1), (i, opts.n2)])
        .collect();
    eprintln!(
        "instructions: {} callgrind runs ({} cases x {} and {} ops), {} at a time; {version}",
        runs.len(),
        opts.cases.len(),
        opts.n1,
        opts.n2,
        opts.jobs
    );
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<u64, String>>>> =
        Mutex::new((0..runs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.min(runs.len()) {
            scope.spawn(|| {
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, ops)) = runs.get(j) else { break };
                    let case = opts.cases[i];
                    let t = Instant::now();
                    let file = out_file(&dir, case, ops, "");
                    let result = callgrind(case, ops, &file, &[CASE_ONLY]);
                    if let Ok(ir) = &result {
                        eprintln!(
                            "  {:<20} {ops:>6} ops: {ir:>13} Ir ({:.1} s)",
                            case.name,
                            t.elapsed().as_secs_f64()
                        );
                    }
                    results.lock().unwrap()[j] = Some(result);
                }
            });
        }
    });
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let results = results.into_inner().unwrap();
    let mut measured = Vec::new();
    for (i, case) in opts.cases.iter().enumerate() {
        let ir = |j: usize| results[j].clone().expect("every run was made");
        let (ir1, ir2) = (ir(2 * i)?, ir(2 * i + 1)?);
        measured.push(Measured {
            case,
            ir1,
            ir2,
            per_op: (ir2 as f64 - ir1 as f64) / (opts.n2 - opts.n1) as f64,
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("instructions: measured in {seconds:.0} s");
    let rows = table_rows(&measured);
    if let Some(path) = &opts.json {
        let json = json(opts, &version, &measured, &rows);
        if path == "-" {
            print!("{json}");
            return Ok(());
        }
        std::fs::write(path, json).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    print!("{}", table(opts, &version, &rows));
    Ok(())
}

/// A line of the table: one commute case beside its row's baseline.
struct Line<'a> {
    commute: &'a Measured,
    baseline: Option<&'a Measured>,
    target: String,
    met: Option<bool>,
}

impl Line<'_> {
    fn ratio(&self) -> Option<f64> {
        self.baseline
            .filter(|b| b.per_op > 0.0)
            .map(|b| self.commute.per_op / b.per_op)
    }
}

fn table_rows(measured: &[Measured]) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    for row in ROWS_TABLE {
        let baseline = measured
            .iter()
            .find(|m| m.case.row == row.name && m.case.side == Side::Baseline);
        for commute in measured
            .iter()
            .filter(|m| m.case.row == row.name && m.case.side == Side::Commute)
        {
            let targets = row.targets_of(commute.case);
            let met = match baseline {
                Some(b) => targets.met(commute.per_op, b.per_op),
                // No baseline measured: check the absolute target only.
                None if targets.max.is_some() => targets.met(commute.per_op, f64::INFINITY),
                None => None,
            };
            lines.push(Line {
                commute,
                baseline,
                target: targets.target_text(),
                met,
            });
        }
        // A baseline measured without its commute cases still gets a line.
        let has_lines = lines.iter().any(|l| l.commute.case.row == row.name);
        if let Some(b) = baseline.filter(|_| !has_lines) {
            lines.push(Line {
                commute: b,
                baseline: None,
                target: String::new(),
                met: None,
            });
        }
    }
    lines
}

fn table(opts: &Options, version: &str, lines: &[Line<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "instructions per operation, callgrind, deterministic: (Ir({n2} ops) - Ir({n1} ops)) / \
         {d}, the case alone, after {WARMUP} warm-up ops; {version}",
        n1 = opts.n1,
        n2 = opts.n2,
        d = opts.n2 - opts.n1
    );
    let _ = writeln!(
        out,
        "{:<11} {:<33} {:>7}  {:<33} {:>7} {:>7}  {:<22} met",
        "row", "commute", "Ir/op", "baseline", "Ir/op", "ratio", "target"
    );
    for line in lines {
        let (base_what, base_ir) = match line.baseline {
            Some(b) => (b.case.what, format!("{:.1}", b.per_op)),
            None => ("", String::new()),
        };
        let ratio = line.ratio().map_or(String::new(), |r| format!("{r:.2}x"));
        let met = match line.met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "",
        };
        let text = format!(
            "{:<11} {:<33} {:>7.1}  {:<33} {:>7} {:>7}  {:<22} {}",
            line.commute.case.row,
            line.commute.case.what,
            line.commute.per_op,
            base_what,
            base_ir,
            ratio,
            line.target,
            met
        );
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}

fn json_opt(x: Option<f64>) -> String {
    x.map_or_else(|| "null".into(), json_number)
}

fn json(opts: &Options, version: &str, measured: &[Measured], lines: &[Line<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{{\n  \"valgrind\": {},\n  \"warmup\": {WARMUP},\n  \"n1\": {},\n  \"n2\": {},\n  \"log_batch\": {LOG_BATCH},\n  \"cases\": [",
        json_string(version),
        opts.n1,
        opts.n2
    );
    for (i, m) in measured.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {{\"case\": {}, \"row\": {}, \"side\": {}, \"what\": {}, \"ir_n1\": {}, \"ir_n2\": {}, \"per_op\": {}}}{}",
            json_string(m.case.name),
            json_string(m.case.row),
            json_string(match m.case.side {
                Side::Commute => "commute",
                Side::Baseline => "baseline",
            }),
            json_string(m.case.what),
            m.ir1,
            m.ir2,
            m.per_op,
            if i + 1 < measured.len() { "," } else { "" }
        );
    }
    let _ = writeln!(out, "  ],\n  \"rows\": [");
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {{\"row\": {}, \"commute\": {}, \"commute_per_op\": {}, \"baseline\": {}, \"baseline_per_op\": {}, \"ratio\": {}, \"target\": {}, \"met\": {}}}{}",
            json_string(line.commute.case.row),
            json_string(line.commute.case.name),
            line.commute.per_op,
            line.baseline
                .map_or("null".into(), |b| json_string(b.case.name)),
            json_opt(line.baseline.map(|b| b.per_op)),
            json_opt(line.ratio()),
            json_string(&line.target),
            line.met.map_or("null".into(), |m| m.to_string()),
            if i + 1 < lines.len() { "," } else { "" }
        );
    }
    out.push_str("  ]\n}\n");
    out
}

// ----- --annotate ------------------------------------------------------------------------------

/// Instructions of one function in a callgrind profile: its own, and with its callees'.
#[derive(Debug, Default, Clone, PartialEq)]
struct Function {
    name: String,
    own: u64,
    inclusive: u64,
}

/// The functions of a callgrind output file (`--dump-instr=no`, the one event Ir), merged by
/// name: a function's own instructions summed over all its files (inlined code shows as parts
/// of the function it was inlined into, one per source file), its inclusive instructions its
/// own plus those of its calls to other functions. Returns the total and the functions.
fn profile(text: &str) -> (u64, Vec<Function>) {
    use std::collections::HashMap;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut functions: HashMap<String, Function> = HashMap::new();
    // Resolves `(id) name` or `(id)` with callgrind's name compression.
    let mut resolve = |spec: &str| -> String {
        let spec = spec.trim();
        match spec.strip_prefix('(').and_then(|r| r.split_once(')')) {
            Some((id, "")) => names.get(id).cloned().unwrap_or_default(),
            Some((id, name)) => {
                let name = name.trim().to_string();
                names.insert(id.to_string(), name.clone());
                name
            }
            None => spec.to_string(),
        }
    };
    let (mut current, mut callee, mut in_call) = (String::new(), String::new(), false);
    let mut total = None;
    for line in text.lines() {
        if let Some(spec) = line.strip_prefix("fn=") {
            current = resolve(spec);
        } else if let Some(spec) = line.strip_prefix("cfn=") {
            callee = resolve(spec);
        } else if line.starts_with("calls=") {
            in_call = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit() || "+-*".contains(c)) {
            let cost: u64 = line
                .split_whitespace()
                .last()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let f = functions
                .entry(current.clone())
                .or_insert_with(|| Function {
                    name: current.clone(),
                    ..Function::default()
                });
            if in_call {
                if callee != current {
                    f.inclusive += cost;
                }
                in_call = false;
            } else {
                f.own += cost;
                f.inclusive += cost;
            }
        } else if total.is_none() {
            total = total_instructions(line);
        }
    }
    let total = total.unwrap_or_else(|| functions.values().map(|f| f.own).sum());
    (total, functions.into_values().collect())
}

fn annotate(opts: &Options, case: &'static Case) -> Result<(), String> {
    let version = valgrind_version()?;
    let (dir, temporary) = out_dir(opts.keep.as_deref())?;
    let file = out_file(&dir, case, opts.ops, ".annotate");
    let ir = callgrind(case, opts.ops, &file, &["--dump-instr=no", MEASURED_ONLY])?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read callgrind's output {}: {e}", file.display()))?;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (total, mut functions) = profile(&text);
    let per_op = |x: u64| x as f64 / opts.ops as f64;
    println!(
        "{}: {} ops, {ir} Ir in the measured loop, {:.1} per op; {version}",
        case.name,
        opts.ops,
        per_op(ir)
    );
    println!(
        "functions merged by name (inlined code counts in the function it was inlined into); \
         the loop and its callers, at 100%, left out"
    );
    // Leave out the path from `main` down to the loop, which includes everything.
    functions.retain(|f| f.inclusive < total);
    for by_inclusive in [false, true] {
        let key = |f: &Function| if by_inclusive { f.inclusive } else { f.own };
        functions.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
        println!(
            "\n== top {} by {} instructions\n{:>9} {:>9}  function",
            opts.top,
            if by_inclusive { "inclusive" } else { "own" },
            "own/op",
            "incl/op"
        );
        for f in functions.iter().take(opts.top) {
            println!(
                "{:>9.1} {:>9.1}  {}",
                per_op(f.own),
                per_op(f.inclusive),
                f.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Options, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn totals_are_read_from_either_line() {
        assert_eq!(
            total_instructions("events: Ir\nsummary: 1234\ntotals: 1234\n"),
            Some(1234)
        );
        assert_eq!(total_instructions("events: Ir\nsummary: 99\n"), Some(99));
        assert_eq!(total_instructions("events: Ir\n"), None);
    }

    #[test]
    fn profiles_merge_a_function_s_parts_and_count_its_calls() {
        let text = "events: Ir\nsummary: 100\n\nob=(1) x\nfl=(1) a.rs\nfn=(1) main\n0 10\n\
                    cfn=(2) f\ncalls=1 0\n0 90\nfl=(2) b.rs\nfn=(2) f\n0 50\nfi=(3) c.rs\n\
                    0 20\nfe=(2)\ncfn=(3) g\ncalls=2 0\n0 20\ncfn=(2)\ncalls=1 0\n0 7\n\
                    fn=(3) g\n0 20\n";
        let (total, mut functions) = profile(text);
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        let f = |name: &str, own, inclusive| Function {
            name: name.into(),
            own,
            inclusive,
        };
        assert_eq!(total, 100);
        // f: 50 + 20 (an inlined part) of its own, 20 in g; its call to itself not again.
        assert_eq!(
            functions,
            [f("f", 70, 90), f("g", 20, 20), f("main", 10, 100)]
        );
    }

    #[test]
    fn options() {
        let o = args(&["--measure", "--case", "map-get,rmw/mutex", "--n1", "64"]).unwrap();
        assert_eq!(o.mode, Mode::Measure);
        let names: Vec<_> = o.cases.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "rmw/mutex",
                "map-get/commute",
                "map-get/atomic",
                "map-get/grown",
                "map-get/atomic-grown",
                "map-get/dashmap"
            ]
        );
        assert_eq!((o.n1, o.n2), (64, N2));
        assert!(args(&["--measure", "--n1", "100", "--n2", "100"]).is_err());
        assert!(args(&["--measure", "--case", "nope"]).is_err());
        assert!(args(&["--measure", "--list"]).is_err());
        assert!(args(&[]).is_err());
        assert_eq!(
            args(&["--run", "event/mutex", "--ops", "64"]).unwrap().mode,
            Mode::Run(case("event/mutex").unwrap())
        );
    }
}

//! Command-line options of the `conflicts` runner, parsed by hand (a dozen flags do not need a
//! parser crate).

use std::path::PathBuf;
use std::time::Duration;

/// Measuring time per run of a cell when `--duration-ms` is not given.
pub const DEFAULT_DURATION: Duration = Duration::from_millis(150);

/// Runs per cell when `--repeat` is not given (1 under `--quick`): the suite runs that many
/// rounds and each cell reports its median run, so that a burst of noise from outside (a
/// neighbour on a shared machine) spoils one run of a cell, not the cell.
pub const DEFAULT_REPEAT: usize = 3;

/// Measuring time per cell under `--quick` (CI smoke runs).
pub const QUICK_DURATION: Duration = Duration::from_millis(15);

/// The `--help` text.
pub const USAGE: &str = "\
conflicts: conflict rates and throughput of commute's collections, naive TVar-only structures,
lock-based structures and peer STM crates, on the workloads of an event-driven server.

USAGE:
    cargo run --release -p commute-benches --bin conflicts -- [OPTIONS]

OPTIONS:
    --threads LIST       thread counts, e.g. 1,2,4 (default: 1, 2, 4, ... up to the cores)
    --duration-ms N      measuring time per run in milliseconds (default 150; 15 with --quick)
    --repeat N           runs per cell; the cell reports its median run by throughput
                         (default 3; 1 with --quick)
    --workload LIST      workloads to run (default: all), e.g. counter,log
    --structure LIST     structures to run (default: all), e.g. TCounter,naive-counter; a
                         structure made of several (event's sets) is selected by any of its parts
    --json FILE          also write every cell as a JSON array to FILE
    --svg DIR            also write throughput and aborts-per-commit plots (SVG) per workload
    --quick              very short cells: a smoke run of a few seconds
    --in-process         run every structure in this process (default: each structure's runs
                         in a child process of the runner, so that what one structure leaves
                         in the heap cannot slow the next)
    --report             switch the conflict profiler on and print its report (which TVar
                         cost time, in which transactions) after each STM structure's cells
    --list               print the workloads and the structures each runs with, then exit
    --help               print this text

A cell is one (workload, structure, thread count): the threads run the workload's operation in a
loop for the measuring time, on a fresh structure. With --repeat N the whole suite runs N times
in turn and each cell reports its median run. Aborts per commit is blank for structures that are
not STM.
";

/// What the command line asked for.
///
/// # Examples
///
/// ```
/// use commute_benches::args::Options;
///
/// let opts = Options::parse(["--threads", "1,4", "--quick"].map(String::from), 2).unwrap();
/// assert_eq!(opts.threads, vec![1, 4]);
/// assert!(opts.quick);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Thread counts to run each cell with, in the order given.
    pub threads: Vec<usize>,
    /// Measuring time per run of a cell.
    pub duration: Duration,
    /// Runs per cell (the median is reported).
    pub repeat: usize,
    /// Workloads to run; empty means all.
    pub workloads: Vec<String>,
    /// Structures to run; empty means all that apply.
    pub structures: Vec<String>,
    /// Where to write the JSON array of cells.
    pub json: Option<PathBuf>,
    /// Where to write the SVG plots.
    pub svg: Option<PathBuf>,
    /// Very short cells for smoke runs.
    pub quick: bool,
    /// Turn the conflict profiler on and print its report after each structure's cells.
    pub report: bool,
    /// Run every structure in this process instead of one child process per structure and
    /// round (always so under `--report`).
    pub in_process: bool,
    /// Internal: this process is a child of the runner; it prints its cells one per line for
    /// the parent instead of the table.
    pub child: bool,
    /// Print the workload and structure names and exit.
    pub list: bool,
    /// Print [`USAGE`] and exit.
    pub help: bool,
}

impl Options {
    /// The default thread counts: 1, 2, 4, ... up to `cores`, with `cores` itself last.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::args::Options;
    ///
    /// assert_eq!(Options::default_threads(2), vec![1, 2]);
    /// assert_eq!(Options::default_threads(12), vec![1, 2, 4, 8, 12]);
    /// ```
    pub fn default_threads(cores: usize) -> Vec<usize> {
        let cores = cores.max(1);
        let mut threads: Vec<usize> = (0..)
            .map(|i| 1usize << i)
            .take_while(|&n| n < cores)
            .collect();
        threads.push(cores);
        threads
    }

    /// Parses the arguments after the program name; `cores` caps the default thread counts
    /// (counts given with `--threads` are used as they are).
    ///
    /// # Errors
    ///
    /// A message naming the bad option or value.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::args::Options;
    ///
    /// let opts = Options::parse(Vec::<String>::new(), 2).unwrap();
    /// assert_eq!(opts.threads, vec![1, 2]);
    /// assert!(Options::parse(["--threads", "0"].map(String::from), 2).is_err());
    /// ```
    pub fn parse<I: IntoIterator<Item = String>>(args: I, cores: usize) -> Result<Self, String> {
        let mut threads = None;
        let mut duration = None;
        let mut repeat = None;
        let mut opts = Options {
            threads: Vec::new(),
            duration: DEFAULT_DURATION,
            repeat: DEFAULT_REPEAT,
            workloads: Vec::new(),
            structures: Vec::new(),
            json: None,
            svg: None,
            quick: false,
            report: false,
            in_process: false,
            child: false,
            list: false,
            help: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = Arg::new(arg);
            let name = arg.name.as_str();
            let mut value = || arg.value(&mut args);
            match name {
                "--threads" => threads = Some(parse_threads(&value()?)?),
                "--duration-ms" => {
                    duration = Some(Duration::from_millis(positive(name, &value()?)?));
                }
                "--repeat" => repeat = Some(positive(name, &value()?)? as usize),
                "--workload" | "--workloads" => {
                    opts.workloads.extend(parse_names(name, &value()?)?)
                }
                "--structure" | "--structures" => {
                    opts.structures.extend(parse_names(name, &value()?)?);
                }
                "--json" => opts.json = Some(PathBuf::from(value()?)),
                "--svg" => opts.svg = Some(PathBuf::from(value()?)),
                "--quick" => opts.quick = arg.flag()?,
                "--report" => opts.report = arg.flag()?,
                "--in-process" => opts.in_process = arg.flag()?,
                "--child" => opts.child = arg.flag()?,
                "--list" => opts.list = arg.flag()?,
                "--help" | "-h" => opts.help = arg.flag()?,
                other => return Err(format!("unknown option `{other}` (try --help)")),
            }
        }
        opts.threads = threads.unwrap_or_else(|| Options::default_threads(cores));
        opts.duration = duration.unwrap_or(if opts.quick {
            QUICK_DURATION
        } else {
            DEFAULT_DURATION
        });
        opts.repeat = repeat.unwrap_or(if opts.quick { 1 } else { DEFAULT_REPEAT });
        Ok(opts)
    }
}

/// One command-line argument, read as an option: `--name value` and `--name=value` alike.
/// Shared by the `conflicts` and `soak` parsers.
pub(crate) struct Arg {
    /// The option's name (the whole argument, unless it is `--name=value`).
    pub(crate) name: String,
    /// The value given after `=`, if any.
    inline: Option<String>,
}

impl Arg {
    pub(crate) fn new(arg: String) -> Self {
        match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => Arg {
                name: name.to_string(),
                inline: Some(value.to_string()),
            },
            _ => Arg {
                name: arg,
                inline: None,
            },
        }
    }

    /// The option's value: the one after `=`, else the next argument of `rest`.
    pub(crate) fn value(&self, rest: &mut impl Iterator<Item = String>) -> Result<String, String> {
        match &self.inline {
            Some(v) => Ok(v.clone()),
            None => rest
                .next()
                .ok_or_else(|| format!("{} needs a value", self.name)),
        }
    }

    /// For an option that takes no value: `true`, or an error if one was given after `=`.
    pub(crate) fn flag(&self) -> Result<bool, String> {
        match self.inline {
            Some(_) => Err(format!("{} takes no value", self.name)),
            None => Ok(true),
        }
    }
}

/// `value` as a number, or an error that names the option `name` and the value.
pub(crate) fn number(name: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: `{value}` is not a number"))
}

/// `value` as a number above 0, or an error that names the option `name` and the value.
pub(crate) fn positive(name: &str, value: &str) -> Result<u64, String> {
    number(name, value)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{name}: `{value}` is not a positive number"))
}

/// The names of a list option (`--only`, `--workload`, ...): an error naming `name` if there
/// are none (`--only ,` would otherwise mean "all", silently).
pub(crate) fn parse_names(name: &str, value: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = parse_list(value).collect();
    if names.is_empty() {
        return Err(format!("{name} needs at least one name"));
    }
    Ok(names)
}

pub(crate) fn parse_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

pub(crate) fn parse_threads(value: &str) -> Result<Vec<usize>, String> {
    let threads: Vec<usize> = parse_list(value)
        .map(|t| {
            t.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("--threads: `{t}` is not a positive number"))
        })
        .collect::<Result<_, _>>()?;
    if threads.is_empty() {
        return Err("--threads needs at least one count".to_string());
    }
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|s| s.to_string()), 2)
    }

    #[test]
    fn defaults() {
        let opts = parse(&[]).unwrap();
        assert_eq!(opts.threads, vec![1, 2]);
        assert_eq!(opts.duration, DEFAULT_DURATION);
        assert!(opts.workloads.is_empty() && opts.structures.is_empty());
        assert!(opts.json.is_none() && opts.svg.is_none());
        assert!(!opts.quick && !opts.help && !opts.list);
        assert_eq!(Options::default_threads(1), vec![1]);
        assert_eq!(Options::default_threads(16), vec![1, 2, 4, 8, 16]);
    }

    #[test]
    fn every_option_in_both_spellings() {
        let opts = parse(&[
            "--threads",
            "1,2,4",
            "--duration-ms=250",
            "--workload",
            "counter, log",
            "--structure=TCounter",
            "--structure",
            "naive-counter",
            "--json",
            "out.json",
            "--svg=plots",
        ])
        .unwrap();
        assert_eq!(
            opts.threads,
            vec![1, 2, 4],
            "given counts are not capped at the cores"
        );
        assert_eq!(opts.duration, Duration::from_millis(250));
        assert_eq!(opts.workloads, ["counter", "log"]);
        assert_eq!(opts.structures, ["TCounter", "naive-counter"]);
        assert_eq!(opts.json, Some(PathBuf::from("out.json")));
        assert_eq!(opts.svg, Some(PathBuf::from("plots")));
    }

    #[test]
    fn quick_shortens_cells_unless_a_duration_is_given() {
        assert_eq!(parse(&["--quick"]).unwrap().duration, QUICK_DURATION);
        assert_eq!(parse(&["--quick"]).unwrap().repeat, 1);
        assert_eq!(parse(&[]).unwrap().repeat, DEFAULT_REPEAT);
        assert_eq!(parse(&["--quick", "--repeat", "2"]).unwrap().repeat, 2);
        let opts = parse(&["--quick", "--duration-ms", "50"]).unwrap();
        assert_eq!(opts.duration, Duration::from_millis(50));
        assert!(parse(&["--help"]).unwrap().help);
    }

    #[test]
    fn bad_input_is_an_error_that_names_it() {
        for (args, needle) in [
            (&["--threads", "1,x"][..], "`x`"),
            (&["--threads", "0"][..], "`0`"),
            (&["--repeat", "0"][..], "`0`"),
            (&["--threads", ","][..], "at least one"),
            (
                &["--workload", ""][..],
                "--workload needs at least one name",
            ),
            (
                &["--structure", " , "][..],
                "--structure needs at least one name",
            ),
            (&["--duration-ms", "-5"][..], "`-5`"),
            (&["--json"][..], "needs a value"),
            (&["--frobnicate"][..], "--frobnicate"),
            (&["--quick=yes"][..], "takes no value"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}

//! Command-line options of the `soak` binary, parsed by hand in the style of the `conflicts`
//! runner's [`args`](crate::args) (both `--name value` and `--name=value`).

use std::time::Duration;

use crate::args::{Arg, number, positive};

/// The `--help` text.
pub const USAGE: &str = "\
soak: runs every workload of commute at once on shared structures, with injected panics, and
checks invariants continuously and at the end (bank totals, queue order and exactly-once
delivery, maps against per-thread models, exact counters, progress of every thread, bounded
attempts of long transactions, flat resident memory, hash-flooding resistance).

USAGE:
    cargo run --release -p commute-benches --bin soak -- [OPTIONS]

OPTIONS:
    --seconds N          soak time in seconds (default 10)
    --threads N          mixed-workload worker threads (default: the cores, at least 2); a
                         long-transaction thread and a blocking producer/consumer pair run
                         beside them
    --seed N             seed of every thread's random choices (default 1)
    --fault-rate F       fraction of transactions that panic at an injected point, 0 to 1
                         (default 0.01)
    --mode MODE          `mixed` (default: every workload) or `churn` (heap churn only: map and
                         set inserts/removes, queue pushes/pops, TBox replacements)
    --interval N         seconds between progress lines (default 1)
    --long-vars N        TVars read and written by each long transaction, 0 or at least 2
                         (default 8000; 0 turns the long-transaction thread off)
    --stall-seconds N    a thread that makes no progress for this long is a violation
                         (default 5)
    --flood-keys N       keys of the hash-flooding check run before the soak (default 1024;
                         0 skips it)
    --no-memory-check    do not turn resident-memory growth after warm-up into a violation
                         (for runs under valgrind, whose own memory is counted in VmRSS); the
                         exact live-heap check at the end stays on
    --help               print this text

Progress lines give, per interval, committed transactions per second, aborts per commit,
injected faults, checks so far, resident memory and live heap. The last line is
`soak: N transactions, M aborts, K invariant checks, V violations`; the exit status is 1 when
V > 0, 2 on bad options. See docs/reliability.md.
";

/// Which operations the worker threads draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every workload: bank transfers and audits, queues, maps, sets, counters, heap values,
    /// short writes against the long transactions.
    Mixed,
    /// Heap churn only: map and set inserts and removals, queue pushes and pops, `TBox`
    /// replacements (with their checks), and no long-transaction thread.
    Churn,
}

/// What the command line asked for.
///
/// # Examples
///
/// ```
/// use commute_benches::soak::args::SoakOptions;
///
/// let opts = SoakOptions::parse(["--seconds", "3", "--fault-rate=0.05"].map(String::from), 2)
///     .unwrap();
/// assert_eq!(opts.seconds, 3);
/// assert_eq!(opts.fault_rate, 0.05);
/// assert_eq!(opts.threads, 2);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SoakOptions {
    /// Soak time in seconds (the flood check and the final checks come on top).
    pub seconds: u64,
    /// Mixed-workload worker threads.
    pub threads: usize,
    /// Seed of every thread's random choices.
    pub seed: u64,
    /// Fraction of transactions that panic at an injected point.
    pub fault_rate: f64,
    /// Which operations the workers draw from.
    pub mode: Mode,
    /// Time between progress lines.
    pub interval: Duration,
    /// TVars of each long transaction; 0 turns the long-transaction thread off.
    pub long_vars: usize,
    /// A thread without progress for this long is a violation.
    pub stall: Duration,
    /// Keys of the hash-flooding check; 0 skips it.
    pub flood_keys: usize,
    /// Resident-memory growth after warm-up counts as a violation.
    pub memory_check: bool,
    /// Print [`USAGE`] and exit.
    pub help: bool,
}

impl SoakOptions {
    /// The defaults for a machine with `cores` cores.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = commute_benches::soak::args::SoakOptions::defaults(1);
    /// assert_eq!(opts.threads, 2);
    /// assert!(opts.memory_check);
    /// ```
    pub fn defaults(cores: usize) -> Self {
        SoakOptions {
            seconds: 10,
            threads: cores.max(2),
            seed: 1,
            fault_rate: 0.01,
            mode: Mode::Mixed,
            interval: Duration::from_secs(1),
            long_vars: 8000,
            stall: Duration::from_secs(5),
            flood_keys: 1024,
            memory_check: true,
            help: false,
        }
    }

    /// Parses the arguments after the program name; `cores` sets the default thread count.
    ///
    /// # Errors
    ///
    /// A message naming the bad option or value.
    ///
    /// # Examples
    ///
    /// ```
    /// use commute_benches::soak::args::SoakOptions;
    ///
    /// assert!(SoakOptions::parse(["--fault-rate", "2"].map(String::from), 2).is_err());
    /// assert!(SoakOptions::parse(["--threads", "0"].map(String::from), 2).is_err());
    /// ```
    pub fn parse<I: IntoIterator<Item = String>>(args: I, cores: usize) -> Result<Self, String> {
        let mut opts = SoakOptions::defaults(cores);
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = Arg::new(arg);
            let name = arg.name.as_str();
            let mut value = || arg.value(&mut args);
            match name {
                "--seconds" => opts.seconds = positive(name, &value()?)?,
                "--threads" => opts.threads = positive(name, &value()?)? as usize,
                "--seed" => opts.seed = number(name, &value()?)?,
                "--fault-rate" => {
                    let v = value()?;
                    opts.fault_rate = v
                        .parse::<f64>()
                        .ok()
                        .filter(|f| (0.0..=1.0).contains(f))
                        .ok_or_else(|| format!("{name}: `{v}` is not a fraction from 0 to 1"))?;
                }
                "--mode" => {
                    opts.mode = match value()?.as_str() {
                        "mixed" => Mode::Mixed,
                        "churn" => Mode::Churn,
                        other => return Err(format!("{name}: `{other}` is not mixed or churn")),
                    }
                }
                "--interval" => opts.interval = Duration::from_secs(positive(name, &value()?)?),
                "--long-vars" => {
                    let v = value()?;
                    opts.long_vars = number(name, &v)? as usize;
                    // The long transactions move units between two of their variables.
                    if opts.long_vars == 1 {
                        return Err(format!(
                            "{name}: `{v}` is too few (0 turns the long transactions off, else \
                             at least 2)"
                        ));
                    }
                }
                "--stall-seconds" => opts.stall = Duration::from_secs(positive(name, &value()?)?),
                "--flood-keys" => opts.flood_keys = number(name, &value()?)? as usize,
                "--no-memory-check" => opts.memory_check = !arg.flag()?,
                "--help" | "-h" => opts.help = arg.flag()?,
                other => return Err(format!("unknown option `{other}` (try --help)")),
            }
        }
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SoakOptions, String> {
        SoakOptions::parse(args.iter().map(|s| s.to_string()), 4)
    }

    #[test]
    fn every_option_in_both_spellings() {
        let opts = parse(&[
            "--seconds=30",
            "--threads",
            "3",
            "--seed",
            "42",
            "--fault-rate",
            "0.02",
            "--mode=churn",
            "--interval",
            "5",
            "--long-vars=100",
            "--stall-seconds",
            "9",
            "--flood-keys",
            "0",
            "--no-memory-check",
        ])
        .unwrap();
        assert_eq!(opts.seconds, 30);
        assert_eq!(opts.threads, 3);
        assert_eq!(opts.seed, 42);
        assert_eq!(opts.fault_rate, 0.02);
        assert_eq!(opts.mode, Mode::Churn);
        assert_eq!(opts.interval, Duration::from_secs(5));
        assert_eq!(opts.long_vars, 100);
        assert_eq!(opts.stall, Duration::from_secs(9));
        assert_eq!(opts.flood_keys, 0);
        assert!(!opts.memory_check && !opts.help);
        assert_eq!(parse(&[]).unwrap(), SoakOptions::defaults(4));
        assert!(parse(&["-h"]).unwrap().help);
    }

    #[test]
    fn bad_input_is_an_error_that_names_it() {
        for (args, needle) in [
            (&["--seconds", "0"][..], "`0`"),
            (&["--long-vars", "1"][..], "--long-vars: `1`"),
            (&["--threads", "x"][..], "`x`"),
            (&["--fault-rate", "1.5"][..], "`1.5`"),
            (&["--fault-rate", "-0.1"][..], "`-0.1`"),
            (&["--mode", "calm"][..], "`calm`"),
            (&["--seed"][..], "needs a value"),
            (&["--help=yes"][..], "takes no value"),
            (&["--frobnicate"][..], "--frobnicate"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}

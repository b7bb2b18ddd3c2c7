//! Command-line options of the `vacation` binary: STAMP's short flags (`-n2` and `-n 2`), their
//! long forms, and the runner's own options.

use std::path::PathBuf;

use super::Implementation;
use super::client::Params;
use crate::args::{Arg, number, positive};

/// `-r` of the presets: scaled down from STAMP's 1,048,576 so that `--preset low` (three
/// implementations, three repetitions, one client) takes about 10 s on the 2-core development
/// machine.
pub const PRESET_RELATIONS: u64 = 1 << 17;

/// `-t` of the presets: four actions per relation, as in STAMP's canonical runs.
pub const PRESET_TRANSACTIONS: u64 = 4 * PRESET_RELATIONS;

/// STAMP's canonical `-r` (`--canonical`).
pub const CANONICAL_RELATIONS: u64 = 1_048_576;

/// STAMP's canonical `-t` (`--canonical`).
pub const CANONICAL_TRANSACTIONS: u64 = 4_194_304;

/// Repetitions when `--reps` is not given.
pub const DEFAULT_REPS: usize = 3;

/// The `--help` text.
pub const USAGE: &str = "\
vacation: STAMP's vacation (a travel agency's database: tables of cars, flights, rooms and
customers, client threads making reservations, deleting customers and updating the tables) on
three implementations of its manager: sequential (plain HashMaps, one thread, no
synchronisation), global-lock (the same under one Mutex, one lock per action) and commute (a
TMap per table, one transaction per action).

USAGE:
    cargo run --release -p commute-benches --bin vacation -- [OPTIONS]

STAMP'S OPTIONS (also written -n2):
    -n, --number N         queries per action: each action makes 1 to N   (preset)
    -q, --queries PCT      percentage of the relations that actions use    (preset)
    -u, --user PCT         percentage of make-reservation actions; the rest are half
                           delete-customer, half update-tables             (preset)
    -r, --relations N      rows per table, and customers, at the start     (131072)
    -t, --transactions N   actions in all, split over the clients          (524288)
    -c, --clients N        clients, one thread each                        (1)

RUNNER'S OPTIONS:
    --preset low|high      low: -n2 -q90 -u98; high: -n4 -q60 -u90 (default low); given
                           -n/-q/-u override the preset's
    --canonical            STAMP's sizes: -r1048576 -t4194304 (given -r/-t override them)
    --impl LIST            implementations to run (default sequential,global-lock,commute)
    --reps N               repetitions; each time reported is the best (default 3)
    --seed N               seed of the population, of the clients' actions and of the
                           tables' hashers (default 1)
    --json FILE            also write the results as a JSON array to FILE (- for stdout)
    --help                 print this text

With -c1 every implementation runs the same stream of actions and must end in the same state;
with more clients, sequential runs all the clients' actions one client after another on one
thread, the others one thread per client. Every final state is checked (rows consistent,
customers' reservations matching the rows' used counts); a failed check exits with status 1.
";

/// A preset of `-n -q -u`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// vacation-low: `-n2 -q90 -u98`.
    Low,
    /// vacation-high: `-n4 -q60 -u90`.
    High,
}

impl Preset {
    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Low => "low",
            Preset::High => "high",
        }
    }

    /// `(n, q, u)`.
    pub fn number_queries_user(self) -> (u64, u64, u64) {
        match self {
            Preset::Low => (2, 90, 98),
            Preset::High => (4, 60, 90),
        }
    }
}

/// What the command line asked for.
///
/// # Examples
///
/// ```
/// use commute_benches::vacation::args::VacationOptions;
///
/// let opts = VacationOptions::parse(["--preset", "high", "-c2", "-t", "100"].map(String::from)).unwrap();
/// assert_eq!((opts.params.number, opts.params.queries, opts.params.user), (4, 60, 90));
/// assert_eq!((opts.params.clients, opts.params.transactions), (2, 100));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct VacationOptions {
    /// STAMP's parameters, preset and flags applied.
    pub params: Params,
    /// The preset in force (low unless `--preset high`).
    pub preset: Preset,
    /// Whether `-n`, `-q` or `-u` changed the preset's values.
    pub custom_mix: bool,
    /// Implementations to run, in the order of [`Implementation::ALL`].
    pub implementations: Vec<Implementation>,
    /// Repetitions.
    pub reps: usize,
    /// The seed.
    pub seed: u64,
    /// Where to write JSON (`-` for stdout).
    pub json: Option<PathBuf>,
    /// Print [`USAGE`] and exit.
    pub help: bool,
}

impl VacationOptions {
    /// Parses the arguments after the program name.
    ///
    /// # Errors
    ///
    /// A message naming the bad option or value.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Self, String> {
        let (mut n, mut q, mut u, mut r, mut t, mut c) = (None, None, None, None, None, None);
        let mut preset = Preset::Low;
        let mut canonical = false;
        let mut implementations = Implementation::ALL.to_vec();
        let mut reps = DEFAULT_REPS;
        let mut seed = 1;
        let mut json = None;
        let mut help = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = Opt::new(arg);
            let name = arg.name.clone();
            let mut value = || arg.value(&mut args);
            match name.as_str() {
                "-n" | "--number" => n = Some(positive(&name, &value()?)?),
                "-q" | "--queries" => q = Some(number(&name, &value()?)?),
                "-u" | "--user" => u = Some(number(&name, &value()?)?),
                "-r" | "--relations" => r = Some(positive(&name, &value()?)?),
                "-t" | "--transactions" => t = Some(positive(&name, &value()?)?),
                "-c" | "--clients" => c = Some(positive(&name, &value()?)? as usize),
                "--preset" => {
                    preset = match value()?.as_str() {
                        "low" => Preset::Low,
                        "high" => Preset::High,
                        other => return Err(format!("--preset: `{other}` is not low or high")),
                    }
                }
                "--canonical" => canonical = arg.flag()?,
                "--impl" | "--impls" => implementations = parse_implementations(&value()?)?,
                "--reps" => reps = positive(&name, &value()?)? as usize,
                "--seed" => seed = number(&name, &value()?)?,
                "--json" => json = Some(PathBuf::from(value()?)),
                "--help" | "-h" => help = arg.flag()?,
                other => return Err(format!("unknown option `{other}` (try --help)")),
            }
        }
        let (pn, pq, pu) = preset.number_queries_user();
        let (sizes_r, sizes_t) = if canonical {
            (CANONICAL_RELATIONS, CANONICAL_TRANSACTIONS)
        } else {
            (PRESET_RELATIONS, PRESET_TRANSACTIONS)
        };
        let params = Params {
            number: n.unwrap_or(pn),
            queries: q.unwrap_or(pq),
            user: u.unwrap_or(pu),
            relations: r.unwrap_or(sizes_r),
            transactions: t.unwrap_or(sizes_t),
            clients: c.unwrap_or(1),
        };
        params.validate()?;
        let custom_mix = (params.number, params.queries, params.user) != (pn, pq, pu);
        Ok(VacationOptions {
            params,
            preset,
            custom_mix,
            implementations,
            reps,
            seed,
            json,
            help,
        })
    }
}

/// One argument read as an option: `--name value`, `--name=value`, `-n value` and `-n2` alike.
struct Opt {
    name: String,
    attached: Option<String>,
    long: Arg,
}

impl Opt {
    fn new(arg: String) -> Self {
        let is_short = arg.len() > 2 && arg.starts_with('-') && !arg.starts_with("--");
        if is_short && arg.is_char_boundary(2) {
            let (name, value) = arg.split_at(2);
            Opt {
                name: name.to_string(),
                attached: Some(value.to_string()),
                long: Arg::new(name.to_string()),
            }
        } else {
            let long = Arg::new(arg);
            Opt {
                name: long.name.clone(),
                attached: None,
                long,
            }
        }
    }

    fn value(&self, rest: &mut impl Iterator<Item = String>) -> Result<String, String> {
        match &self.attached {
            Some(value) => Ok(value.clone()),
            None => self.long.value(rest),
        }
    }

    fn flag(&self) -> Result<bool, String> {
        match self.attached {
            Some(_) => Err(format!("{} takes no value", self.name)),
            None => self.long.flag(),
        }
    }
}

fn parse_implementations(value: &str) -> Result<Vec<Implementation>, String> {
    let mut chosen = Vec::new();
    for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let found = Implementation::parse(name).ok_or_else(|| {
            format!("--impl: `{name}` is not one of sequential, global-lock, commute")
        })?;
        chosen.push(found);
    }
    if chosen.is_empty() {
        return Err("--impl needs at least one implementation".into());
    }
    // Run in the usual order whatever the order given, each once.
    Ok(Implementation::ALL
        .into_iter()
        .filter(|i| chosen.contains(i))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<VacationOptions, String> {
        VacationOptions::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_are_the_low_preset_at_the_scaled_size() {
        let opts = parse(&[]).unwrap();
        let p = opts.params;
        assert_eq!((p.number, p.queries, p.user), (2, 90, 98));
        assert_eq!(
            (p.relations, p.transactions, p.clients),
            (131072, 524288, 1)
        );
        assert_eq!(opts.implementations, Implementation::ALL);
        assert_eq!((opts.reps, opts.seed, opts.custom_mix), (3, 1, false));
    }

    #[test]
    fn stamp_flags_in_every_spelling_override_the_preset() {
        let opts = parse(&[
            "--preset=high",
            "-n8",
            "-q",
            "50",
            "--user=70",
            "--relations",
            "1000",
            "-t5000",
            "--clients",
            "2",
        ])
        .unwrap();
        let p = opts.params;
        assert_eq!((p.number, p.queries, p.user), (8, 50, 70));
        assert_eq!((p.relations, p.transactions, p.clients), (1000, 5000, 2));
        assert!(opts.custom_mix);
        let canonical = parse(&["--canonical", "--preset", "low"]).unwrap().params;
        assert_eq!(
            (canonical.relations, canonical.transactions),
            (1 << 20, 1 << 22)
        );
        let mixed = parse(&["--canonical", "-r", "10"]).unwrap().params;
        assert_eq!((mixed.relations, mixed.transactions), (10, 1 << 22));
    }

    #[test]
    fn implementations_run_in_the_usual_order() {
        let opts = parse(&["--impl", "commute,sequential", "--reps", "1", "--seed", "0"]).unwrap();
        assert_eq!(
            opts.implementations,
            [Implementation::Sequential, Implementation::Commute]
        );
        assert_eq!((opts.reps, opts.seed), (1, 0));
    }

    #[test]
    fn bad_input_is_an_error_that_names_it() {
        for (args, needle) in [
            (&["-n0"][..], "`0`"),
            (&["-q", "101"][..], "percentages"),
            (&["-q1", "-r", "10"][..], "no ids"),
            (&["--preset", "medium"][..], "medium"),
            (&["--impl", "tl2"][..], "tl2"),
            (&["-x"][..], "-x"),
            (&["-c"][..], "needs a value"),
            (&["--canonical=1"][..], "takes no value"),
            (&["-t1", "-c3"][..], "0 actions"),
            (&["-n", "99999999999999"][..], "-n99999999999999"),
            (&["-c", "99999999999"][..], "-c99999999999"),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}

//! `memory`: heap bytes per entry of a `TMap` beside a `std` `HashMap` holding the same `u64`
//! keys and values (a word, and a 32-byte record), for several key counts; `TMap` both grown by
//! its inserts (`new`) and presized (`with_capacity`). Counted by this binary's global
//! allocator (bytes requested and not yet freed), so the figures are exact and the same from one
//! run to the next but for the maps' randomly seeded hashers (a few percent at the smaller key
//! counts). The target (`TMap` within 1.2x `HashMap`) is the issue "What a transaction costs";
//! the binary prints "met" or "missed" and never fails on a miss. `--sweep` measures 21 key
//! counts from 1,000 to 836,682 (each 1.4 times the last) and prints, besides, each map's
//! lowest, highest and mean ratio over them: a map's bytes per entry rise and fall in waves as
//! it grows, and four key counts can each fall on a crest or a trough. docs/benchmarks.md,
//! "Memory per map entry", has the figures.

use std::process::ExitCode;

use commute_benches::memory::{
    CountingAllocator, MemoryRow, TARGET_RATIO, ValueKind, measure, spread, sweep_counts,
};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const USAGE: &str = "usage: memory [--keys N,N,... | --sweep]
  --keys LIST   key counts to measure (default 1000,10000,100000,1000000)
  --sweep       21 key counts from 1000 to 836682, each 1.4 times the last, and each map's
                lowest, highest and mean ratio to HashMap over them (about 10 s)
";

fn main() -> ExitCode {
    let mut counts: Vec<u64> = vec![1_000, 10_000, 100_000, 1_000_000];
    let mut sweep = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--keys" => {
                let parsed: Option<Vec<u64>> = args.next().and_then(|list| {
                    list.split(',')
                        .map(|n| n.replace('_', "").parse::<u64>().ok().filter(|&n| n > 0))
                        .collect()
                });
                match parsed {
                    Some(list) if !list.is_empty() => counts = list,
                    _ => {
                        return usage_error(
                            "--keys takes a comma-separated list of positive numbers",
                        );
                    }
                }
            }
            "--sweep" => {
                sweep = true;
                counts = sweep_counts(1_000, 1_000_000);
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage_error(&format!("unknown argument `{other}`")),
        }
    }
    println!(
        "heap bytes per entry (requested sizes, counted by the global allocator); target: TMap <= {TARGET_RATIO}x HashMap"
    );
    println!(
        "| keys | value | HashMap | TMap::new | ratio | TMap::with_capacity | ratio | target |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---|");
    let mut rows = Vec::new();
    for &keys in &counts {
        for value in ValueKind::ALL {
            let row = measure(keys, value);
            print_row(&row);
            rows.push(row);
        }
    }
    if sweep {
        print_spreads(&rows);
    }
    ExitCode::SUCCESS
}

/// Bytes per entry of one of a row's maps.
type Bytes = fn(&MemoryRow) -> f64;

/// Each map's lowest, highest and mean ratio to `HashMap` over the rows of each value kind, and
/// the mean bytes per entry.
fn print_spreads(rows: &[MemoryRow]) {
    let maps: [(&str, Bytes); 2] = [
        ("TMap::new", |r| r.tmap),
        ("TMap::with_capacity", |r| r.tmap_presized),
    ];
    println!();
    println!(
        "| value | key counts | map | lowest | highest | geometric mean | mean bytes per entry | HashMap's |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for value in ValueKind::ALL {
        let of_kind: Vec<&MemoryRow> = rows.iter().filter(|r| r.value == value).collect();
        let (Some(first), Some(last)) = (of_kind.first(), of_kind.last()) else {
            continue;
        };
        let counts = format!("{} from {} to {}", of_kind.len(), first.keys, last.keys);
        let mean =
            |bytes: Bytes| of_kind.iter().map(|r| bytes(r)).sum::<f64>() / of_kind.len() as f64;
        for (name, bytes) in maps {
            let Some(s) = spread(of_kind.iter().map(|r| bytes(r) / r.hash_map)) else {
                continue;
            };
            println!(
                "| `{}` | {counts} | {name} | {:.2}x | {:.2}x | {:.2}x | {:.1} | {:.1} |",
                value.name(),
                s.min,
                s.max,
                s.geometric_mean,
                mean(bytes),
                mean(|r| r.hash_map),
            );
        }
    }
}

fn print_row(row: &MemoryRow) {
    let met = row.ratio() <= TARGET_RATIO && row.presized_ratio() <= TARGET_RATIO;
    println!(
        "| {} | `{}` | {:.1} | {:.1} | {:.2}x | {:.1} | {:.2}x | {} |",
        row.keys,
        row.value.name(),
        row.hash_map,
        row.tmap,
        row.ratio(),
        row.tmap_presized,
        row.presized_ratio(),
        if met { "met" } else { "missed" },
    );
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("memory: {message}\n{USAGE}");
    ExitCode::from(2)
}

//! `memory`: heap bytes per entry of a `TMap` beside a `std` `HashMap` holding the same `u64`
//! keys and values (a word, and a 32-byte record), for several key counts; `TMap` both grown by
//! its inserts (`new`) and presized (`with_capacity`). Counted by this binary's global
//! allocator (bytes requested and not yet freed), so the figures are exact and the same from one
//! run to the next but for the maps' randomly seeded hashers (a few percent at the smaller key
//! counts). The target (`TMap` within 1.2x `HashMap`) is the issue "What a transaction costs";
//! the binary prints "met" or "missed" and never fails on a miss. docs/benchmarks.md, "Memory
//! per map entry", has the figures.

use std::process::ExitCode;

use commute_benches::memory::{CountingAllocator, MemoryRow, TARGET_RATIO, ValueKind, measure};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const USAGE: &str = "usage: memory [--keys N,N,...]
  --keys LIST   key counts to measure (default 1000,10000,100000,1000000)
";

fn main() -> ExitCode {
    let mut counts: Vec<u64> = vec![1_000, 10_000, 100_000, 1_000_000];
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
    for &keys in &counts {
        for value in ValueKind::ALL {
            print_row(&measure(keys, value));
        }
    }
    ExitCode::SUCCESS
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

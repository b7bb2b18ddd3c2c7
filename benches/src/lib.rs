//! Benchmarks of commute: criterion benches of the core (`benches/core.rs`).

//! Loom models of commute's STM protocol and collections.
//!
//! The models live in `tests/` and compile only under `--cfg loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" cargo test -p commute-loom-tests --release
//! ```

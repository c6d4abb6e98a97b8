//! Fleet's benchmark tools: synthetic inputs for the measurements of
//! DESIGN.md §8, whose results are written up in docs/BENCHMARKS.md.
//!
//! - [`gen_fleet`]: a synthetic but valid fleet repo of any size.
//! - [`validate_phases`]: where `fleet validate`'s time goes, phase by phase.
//! - [`status_ingest`]: signed reports per second into the real
//!   `fleet-status serve`, against the raw INSERT rate of the same database.
//! - [`suite`]: every budget of DESIGN.md §8 in one run, written to
//!   docs/BENCHMARKS.md with scaling charts.
//!
//! The measurements drive the real release binaries (`fleet`,
//! `fleet-reconciler`, `fleet-edge`, `fleet-status`) over real Git,
//! loopback HTTP and real databases. This crate is never a dependency of
//! the shipped crates.

pub mod gen_fleet;
pub mod status_ingest;
pub mod suite;
pub mod validate_phases;

//! Fleet's benchmark tools: synthetic inputs for the measurements of
//! DESIGN.md §8, whose results are written up in docs/BENCHMARKS.md.
//!
//! - [`gen_fleet`]: a synthetic but valid fleet repo of any size.
//! - [`validate_phases`]: where `fleet validate`'s time goes, phase by phase.
//! - [`status_ingest`]: signed reports per second into the real
//!   `fleet-status serve`, against the raw INSERT rate of the same database.
//!
//! Apart from `status_ingest`, which drives the real `fleet-status` binary
//! over loopback HTTP, this crate makes inputs and the scripts under
//! `scripts/` time the real binaries. It is never a dependency of the
//! shipped crates.

pub mod gen_fleet;
pub mod status_ingest;
pub mod validate_phases;

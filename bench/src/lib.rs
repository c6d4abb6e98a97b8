//! Fleet's benchmark tools: synthetic inputs for the measurements of
//! DESIGN.md §8, whose results are written up in docs/BENCHMARKS.md.
//!
//! - [`gen_fleet`]: a synthetic but valid fleet repo of any size.
//! - [`validate_phases`]: where `fleet validate`'s time goes, phase by phase.
//!
//! This crate makes inputs; it measures nothing by itself (the scripts under
//! `scripts/` time the real binaries), and it is never a dependency of the
//! shipped crates.

pub mod gen_fleet;
pub mod validate_phases;

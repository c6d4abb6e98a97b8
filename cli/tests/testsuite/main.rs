//! The `fleet` CLI's integration tests, one test binary (cargo's
//! `tests/testsuite/` layout, ADR 38): each file below is a module, so the
//! crate's test dependencies are linked once rather than once per file. Run
//! one module with `cargo test --workspace --test testsuite plan::`.

mod common;
mod corpus;

mod plan;
mod rollouts;
mod root_cmd;
mod secrets;
mod trust_gate;
mod validate_corpus;

//! `fleet-status`'s integration tests, one test binary (cargo's
//! `tests/testsuite/` layout, ADR 38): each file below is a module, so the
//! crate's test dependencies are linked once rather than once per file. Run
//! one module with `cargo test --workspace --test testsuite browser::`.

#[macro_use]
mod common;

mod actions;
mod alerts;
mod browser;
mod dashboard;
mod deploy_cloud;
mod ingest;
mod relay;
mod replicas;
mod store_backends;
mod story;
mod threats;

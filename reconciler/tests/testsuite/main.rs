//! The reconciler's integration and end-to-end tests, one test binary
//! (cargo's `tests/testsuite/` layout, ADR 38): each file below is a module,
//! so the crate's test dependencies are linked once rather than once per
//! file. Run one module with `cargo test --workspace --test testsuite
//! acceptance::`.

mod e2e;
mod packages;

mod acceptance;
mod conformance_e2e;
mod dashboard_browser;
mod deb_package;
mod deploy_pi;
mod diagnose_e2e;
mod docs_pi;
mod mirror_bound;
mod quickstart;
mod reconcile_e2e;
mod relay_e2e;
mod rollout_e2e;
mod schedule_e2e;
mod secrets_e2e;
mod staff_e2e;
mod status_e2e;
mod troubleshooting_rows;
mod trust_root_e2e;
mod validate_applies;

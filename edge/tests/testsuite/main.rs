//! `fleet-edge`'s integration tests, one test binary (cargo's
//! `tests/testsuite/` layout, ADR 38): each file below is a module, so the
//! crate's test dependencies are linked once rather than once per file. Run
//! one module with `cargo test --workspace --test testsuite api::`.

mod common;

mod api;
mod backup;
mod devices;
mod local_page;
mod openapi_fuzz;
mod orders;
mod staff;
mod tls;

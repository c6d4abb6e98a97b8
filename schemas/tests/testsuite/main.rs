//! The schemas crate's integration tests, one test binary (cargo's
//! `tests/testsuite/` layout, ADR 38): each file below is a module, so the
//! crate's test dependencies are linked once rather than once per file. Run
//! one module with `cargo test --workspace --test testsuite entity_rules::`.

/// The broken-repo corpus, shared with the cli's `validate_corpus`.
#[path = "../../../cli/tests/testsuite/corpus/mod.rs"]
mod corpus;

mod entity_rules;
mod json_schema_drift;
mod loader_fuzz;
mod render_determinism;
mod template;
mod validate_corpus;

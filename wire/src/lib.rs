//! The wire contracts between a store and head office (DESIGN.md §6, §9):
//! one set of Rust types both sides compile against.
//!
//! - [`edge`]: the edge backend's local API — paths, headers,
//!   preconditions, write ops, bodies and the error body — served by
//!   `fleet-edge` and called by `fleet-reconciler`.
//! - [`bearer`]: the one parser of `Authorization: Bearer` for both services.
//! - [`digest`]: the SHA-256 hex digest of releases, keys and bodies.
//! - `http` (feature `axum`): the one error type of both HTTP services.
//! - [`report`]: what a reconcile pass reports to the status service.
//! - [`desired`]: the long-poll's answer and the operator actions it
//!   carries (DESIGN.md §13).
//! - [`relay`]: the status service's release relay answer (DESIGN.md §13).
//! - [`node_auth`]: the signature of node requests, made by the reconciler
//!   and checked by `fleet-status` with the same code.
//!
//! Pure: no IO, no clock (callers pass the time in).

pub mod bearer;
pub mod desired;
pub mod digest;
pub mod edge;
#[cfg(feature = "axum")]
pub mod http;
pub mod json;
pub mod node_auth;
pub mod relay;
pub mod report;
#[cfg(feature = "axum")]
pub mod serve;

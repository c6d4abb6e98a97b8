//! The status service of DESIGN.md §6: enrollment of store nodes, signed
//! reports, desired revisions read from the fleet repo, store states and
//! the operator API and dashboard.
//!
//! - [`node_auth`]: the node request signature, pure; the reconciler reuses it.
//! - [`state`]: a store's state, a pure function of its inputs.
//! - [`store`]: the storage trait and its SQLite and PostgreSQL backends.
//! - [`desired`]: fetch the fleet repo and verify every store's release
//!   with the reconciler's own trust gate.
//! - [`http_metrics`]: request latency histograms for `/metrics`.
//! - [`listing`]: the overview's filter, sort and paging, pure.
//! - [`api`]: the HTTP API, one module per concern; its typed views
//!   ([`api::Overview`], [`api::StoreDetail`], [`api::TenantRollout`]) are
//!   what the JSON routes serialize and the dashboard renders, and operator
//!   authentication is an extractor ([`api::Operator`], [`api::SignedIn`]).
//! - [`dashboard`]: the HTML pages, askama templates (`status/templates/`)
//!   over those views, escaped by default; no HTML is built in Rust.
//! - [`alerts`]: conditions that need a person, as webhook events and
//!   `/metrics` gauges (DESIGN.md §13).
//! - [`cluster`]: replicas on one PostgreSQL: the fetch lock and the
//!   notifications that wake the other replicas (DESIGN.md §13).
//! - [`server`]: `serve`; [`admin`]: the admin commands; [`tokens`]:
//!   bootstrap and operator tokens; [`support`]: uploaded support bundles.
//!
//! The binary (`src/main.rs`) only parses flags and calls into these.

pub mod admin;
pub mod alerts;
pub mod api;
pub mod cluster;
pub mod dashboard;
pub mod desired;
pub mod http_metrics;
pub mod listing;
/// The node request signature lives in the reconciler library, which both
/// sides use; re-exported so status code says `crate::node_auth`.
pub use wire::node_auth;
pub mod server;
pub mod state;
pub mod store;
pub mod support;
pub mod tokens;

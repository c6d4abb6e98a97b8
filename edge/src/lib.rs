//! `fleet-edge`, the reference store edge backend: the POS API of
//! DESIGN.md §4 over one SQLite database.
//!
//! - [`model`]: entity kinds, the canonical body of each entity and the rules
//!   one entity must satisfy on its own (pure).
//! - [`pricing`]: order arithmetic in integer minor units (pure).
//! - [`store`]: applied configuration: reads, `/state`, and atomic writes with
//!   preconditions, cross-entity rules, versions and audit entries.
//! - [`audit`]: the hash-chained audit log and its verification.
//! - [`orders`]: pricing orders from the applied menu, routing tickets.
//! - [`db`]: opening, migrating and locking the database.
//! - [`api`]: the HTTP layer (axum) and its OpenAPI document (utoipa).
//! - [`backup`]: consistent online backups and verified restores.
//! - [`server`]: `fleet-edge serve`.
//!
//! The reconciler talks to this crate only over HTTP; nothing here reads the
//! fleet repo or a release.

pub mod api;
pub mod audit;
pub mod availability;
pub mod backup;
pub mod db;
pub mod devices;
pub mod local_page;
pub mod model;
pub mod orders;
pub mod pricing;
pub mod server;
pub mod staff;
pub mod store;

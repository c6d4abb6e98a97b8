//! The typed model of a Fleet repository and everything that can be said
//! about it without touching a network or a database.
//!
//! - [`model`]: the YAML sources (`fleet.yaml`, tenant base files, `store.yaml`).
//! - [`state`]: the rendered desired state of one store and the signed
//!   [`state::Release`] that carries it.
//! - [`load`]: reads a fleet repo from any [`load::SourceTree`] (a directory
//!   here, a Git tree in the reconciler) with size, file-type and YAML budgets.
//! - [`render`]: tenant base + store overrides → one deterministic desired state.
//! - [`rules`]: the rules one entity must satisfy on its own, shared by
//!   `fleet validate` and the edge's API.
//! - [`validate`]: the semantic rules of POS-MODEL.md, each with a stable rule id.
//! - [`diag`]: diagnostics that name rule, file, line and column.
//! - [`json_schema`]: JSON Schemas generated from the types.
//! - [`secrets`]: which values are secret and which stores use each.
//!
//! This crate must not do network or database IO: the shells around it do.

pub mod diag;
pub mod diff;
pub mod json_schema;
pub mod load;
pub mod model;
pub mod par;
pub mod primitives;
pub mod registry;
pub mod render;
pub mod rollout;
pub mod rules;
pub mod secrets;
pub mod state;
pub mod store_id;
pub mod trust_root;
pub mod validate;
pub mod yaml;

pub use diag::{Diagnostic, Rule};
pub use load::{DirTree, FleetRepo, SourceTree, load_repo};
pub use primitives::{Id, Money, Rate};
pub use state::{Release, StoreState};
pub use store_id::StoreId;

/// The one `apiVersion` this build reads and writes.
pub const API_VERSION: &str = "fleet/v1";

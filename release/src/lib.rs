//! A store's signed release, as every side of Fleet reads it (DESIGN.md §3,
//! §9): the store agent before it applies one, the status service when it
//! tells which revision each store should run, and `fleet verify`/`fleet
//! sign` at head office. One crate, so the three cannot disagree.
//!
//! - [`trust`]: the trust gate, a pure function that decides whether a
//!   signed release may be applied (signature, store, rollback, expiry…).
//! - [`root`]: the trust root chain a store walks to learn which keys sign
//!   releases now (threshold-signed versions, persisted step by step).
//! - [`applied`]: the last applied release record, written atomically.
//! - [`source`]: fetching the fleet repo outbound into a bare mirror and
//!   reading one store's release files from a commit, with no checkout.
//! - [`relay`]: packing a store's release files for the status service's
//!   relay, and unpacking them at the store for the same trust gate.
//! - [`secrets`]: encrypting secret values to stores, decrypting them at one.
//! - [`git_tree`]: a commit's tree as a [`schemas::load::SourceTree`].
//!
//! Nothing here talks to the edge, the status service or a clock: callers
//! pass the time in.

pub mod applied;
pub mod git_tree;
pub mod relay;
pub mod root;
pub mod secrets;
pub mod source;
pub mod trust;

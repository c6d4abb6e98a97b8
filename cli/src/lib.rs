//! `fleet`, the operator's CLI (DESIGN.md §7): the operations behind its
//! commands (validate, render, plan, scaffold, schema, hash-pin, keygen,
//! sign, verify, quickstart). Each takes an options struct and returns a
//! value; the binary only parses flags and prints.
//!
//! This crate runs at head office and in the fleet repo's CI. The store's
//! binaries (`fleet-reconciler`, `fleet-edge`) do not link it: signing keys,
//! quickstart and scaffolding never ship to a store.

pub mod ops;

//! The store side of Fleet and the operator's CLI.
//!
//! - [`trust`]: the trust gate, a pure function that decides whether a
//!   signed release may be applied (signature, store, rollback, expiry…).
//! - [`applied`]: the last applied release record, written atomically.
//! - [`node_auth`]: the signature of node requests to the status service,
//!   made here and checked by `fleet-status` with the same code.
//! - [`ops`]: the operations behind `fleet` commands (validate, render,
//!   scaffold, schema, hash-pin, keygen, sign, verify, quickstart). Each takes an options
//!   struct and returns a value; the binaries only parse flags and print.
//!
//! - [`agent`], [`daemon`]: one reconcile pass, and the loop of
//!   `fleet-reconciler run` around it; [`source`], [`planner`],
//!   [`edge_client`]: the Git source, the pure planner, the edge's API.
//! - [`outbox`], [`status_client`]: reports queued on disk and delivered,
//!   signed, to the status service; enrollment and the long-poll.
//! - [`diagnose`]: the support bundle of `fleet-reconciler diagnose`.

pub mod agent;
pub mod applied;
pub mod config;
pub mod daemon;
pub mod diagnose;
pub mod edge_client;
pub mod git_tree;
pub mod node_auth;
pub mod ops;
pub mod outbox;
pub mod planner;
pub mod report;
pub mod source;
pub mod status_client;
pub mod trust;

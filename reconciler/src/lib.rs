//! The store side of Fleet and the operator's CLI.
//!
//! - [`ops`]: the operations behind `fleet` commands (validate, render,
//!   scaffold, schema, hash-pin). Each takes an options struct and returns a
//!   value; the binaries only parse flags and print.
//!
//! The reconciler proper (Git source, trust gate, planner, edge client,
//! report outbox, agent loop) is built in later issues.

pub mod ops;

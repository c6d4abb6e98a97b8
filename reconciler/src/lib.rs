//! The store agent, `fleet-reconciler` (DESIGN.md §5): one reconcile pass
//! and the loop around it. It pulls the fleet repo outbound, verifies the
//! store's release with the trust gate of the [`release`] crate, plans
//! against what the edge has applied, converges through the edge's local
//! API and reports to the status service with the [`wire`] types.
//!
//! - [`agent`], [`daemon`]: one reconcile pass, and the loop of
//!   `fleet-reconciler run` around it; [`planner`], [`edge_client`]: the
//!   pure planner and the edge's API.
//! - [`outbox`], [`status_client`]: reports queued on disk and delivered,
//!   signed, to the status service; enrollment and the long-poll.
//! - [`relay`]: `source = "status"`, the release read from the status
//!   service's relay and cached in the state directory.
//! - [`config`]: `reconciler.toml`; [`diagnose`]: the support bundle of
//!   `fleet-reconciler diagnose`.
//! - [`conformance`]: the edge conformance kit behind `fleet conformance
//!   edge`: what this reconciler relies on, checked against any backend
//!   with the client and planner above.
//!
//! The operator's code (signing, quickstart, scaffolding) is not here: it
//! lives in the `cli` crate, which a store never installs.

pub mod agent;
pub mod config;
pub mod conformance;
pub mod daemon;
pub mod diagnose;
pub mod edge_client;
pub mod outbox;
pub mod planner;
pub mod relay;
pub mod schedule;
pub mod status_client;

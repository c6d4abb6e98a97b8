//! The rendered desired state of one store, and the signed release that
//! carries it to the store.
//!
//! A [`StoreState`] is what `fleet render` prints and what a reconciler
//! converges the edge backend to. Its lists are sorted by id and its maps by
//! key, so the same sources always give the same bytes.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{
    Access, ApiVersion, Device, Menu, Routing, Settings, Station, StoreReleaseKind,
};

/// The complete desired configuration of a store, one section per domain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreState {
    pub settings: Settings,
    pub menu: Menu,
    pub access: Access,
    pub kitchen: KitchenState,
}

/// Stations and routing from the tenant, devices from the store.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KitchenState {
    pub stations: Vec<Station>,
    pub devices: Vec<Device>,
    pub routing: Routing,
}

/// `release.yaml`: a store's rendered state, numbered and time-boxed, over
/// whose exact bytes `release.yaml.minisig` is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Release {
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    pub kind: StoreReleaseKind,
    /// `<tenant>/<store>`.
    pub store: String,
    /// Per store, +1 on every new signature, never reused.
    pub revision: u64,
    /// The commit whose sources were rendered (informational).
    pub source_commit: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub state: StoreState,
}

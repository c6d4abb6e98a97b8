//! The rendered desired state of one store, and the signed release that
//! carries it to the store.
//!
//! A [`StoreState`] is what `fleet render` prints and what a reconciler
//! converges the edge backend to. Its collections are sorted by id and its
//! maps by key, so the same sources always give the same bytes; the ordered
//! lists inside an entity (variations, modifiers, an item's modifier groups)
//! keep their authored order (see [`crate::render`]).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{
    Access, Device, Menu, Routing, Secret, SettingValue, Settings, Station, StoreReleaseKind,
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

impl StoreState {
    /// Whether any secret value is encrypted (DESIGN.md §11): a part-two
    /// feature of a release.
    pub fn has_sealed(&self) -> bool {
        self.settings
            .values()
            .any(|v| matches!(v, SettingValue::Sealed(_)))
            || self
                .access
                .users
                .iter()
                .any(|u| matches!(u.pin_hash, Some(Secret::Sealed(_))))
    }
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
    pub api_version: ReleaseApiVersion,
    pub kind: StoreReleaseKind,
    /// `<tenant>/<store>`.
    pub store: String,
    /// Per store, +1 on every new signature, never reused.
    pub revision: u64,
    /// The commit whose sources were rendered (informational).
    pub source_commit: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The tenant key wrapped to this store's recipient (standard padded
    /// base64 of `tenants/<t>/stores/<s>/tenant-key.age`), when the tenant
    /// has values used at every store (DESIGN.md §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_key: Option<String>,
    /// The store's deny windows (its own, else the tenant's): the store
    /// holds this release while one is open, store-local (DESIGN.md §12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<crate::rollout::Windows>,
    /// Store-local time before which the store keeps this release without
    /// applying it (`fleet sign --effective-at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<chrono::NaiveDateTime>,
    /// Applied at once, windows ignored (`fleet sign --urgent`, rollbacks).
    #[serde(default, skip_serializing_if = "is_false")]
    pub urgent: bool,
    pub state: StoreState,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A release's `apiVersion` (DESIGN.md §9): `fleet/v1` while it uses no
/// part-two field, so part-one reconcilers keep accepting it; `fleet/v2`
/// once it does (encrypted values, a tenant key), which part-one
/// reconcilers refuse with "upgrade the reconciler".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ReleaseApiVersion {
    #[serde(rename = "fleet/v1")]
    V1,
    #[serde(rename = "fleet/v2")]
    V2,
}

/// Every release `apiVersion` this build reads.
pub const RELEASE_API_VERSIONS: &[&str] = &["fleet/v1", "fleet/v2"];

impl ReleaseApiVersion {
    /// The name a release says, `fleet/v1` or `fleet/v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseApiVersion::V1 => "fleet/v1",
            ReleaseApiVersion::V2 => "fleet/v2",
        }
    }

    /// The version a release with this content must say.
    pub fn needed(state: &StoreState, tenant_key: Option<&str>) -> ReleaseApiVersion {
        ReleaseApiVersion::needed_by(state, tenant_key, false)
    }

    /// The version a release must say, `scheduling` when it has windows,
    /// an effective time or the urgent flag (DESIGN.md §12).
    pub fn needed_by(
        state: &StoreState,
        tenant_key: Option<&str>,
        scheduling: bool,
    ) -> ReleaseApiVersion {
        if scheduling || tenant_key.is_some() || state.has_sealed() {
            ReleaseApiVersion::V2
        } else {
            ReleaseApiVersion::V1
        }
    }
}

impl Release {
    /// Whether it carries windows, an effective time or the urgent flag.
    pub fn has_scheduling(&self) -> bool {
        self.windows.is_some() || self.effective_at.is_some() || self.urgent
    }

    /// The version this release's content needs, when it says another:
    /// a part-two field under `fleet/v1` (or `fleet/v2` for nothing).
    pub fn version_mismatch(&self) -> Option<ReleaseApiVersion> {
        let needed = ReleaseApiVersion::needed_by(
            &self.state,
            self.tenant_key.as_deref(),
            self.has_scheduling(),
        );
        (needed != self.api_version).then_some(needed)
    }
}

/// The trusted comment of a release signature: `store=<tenant>/<store> revision=<n>`.
pub fn trusted_comment(store: &str, revision: u64) -> String {
    format!("store={store} revision={revision}")
}

/// Parse a trusted comment strictly: exactly `store=<tenant>/<store> revision=<n>`.
pub fn parse_trusted_comment(comment: &str) -> Option<(&str, u64)> {
    let (store_part, rev_part) = comment.split_once(' ')?;
    let store = store_part.strip_prefix("store=")?;
    let rev = rev_part.strip_prefix("revision=")?;
    if !crate::StoreId::is_valid(store) {
        return None;
    }
    if rev.is_empty()
        || !rev.bytes().all(|b| b.is_ascii_digit())
        || (rev.len() > 1 && rev.starts_with('0'))
    {
        return None;
    }
    Some((store, rev.parse().ok()?))
}

/// Just enough of a release to gate on its version before decoding the rest.
#[derive(Debug, Deserialize)]
pub struct ReleaseHeader {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_comment_round_trips_and_is_strict() {
        let c = trusted_comment("acme/soho", 18);
        assert_eq!(c, "store=acme/soho revision=18");
        assert_eq!(parse_trusted_comment(&c), Some(("acme/soho", 18)));
        for bad in [
            "",
            "store=acme/soho",
            "store=acme/soho revision=",
            "store=acme/soho revision=018",
            "store=acme/soho revision=1 extra=1",
            "revision=1 store=acme/soho",
            "store=acme revision=1",
            "store=Acme/soho revision=1",
            "store=acme/soho revision=-1",
            "timestamp:1700000000",
        ] {
            assert_eq!(parse_trusted_comment(bad), None, "{bad:?}");
        }
    }
}

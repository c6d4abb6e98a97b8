//! Rollouts as the fleet repo records them (`rollouts/<tenant>/<id>.yaml`,
//! DESIGN.md §12), joined with what the stores reported: `GET
//! /api/v1/rollouts` and the rollout page per tenant. The files are read
//! from the commit each fetch scans; they are decisions recorded in Git by
//! `fleet sign` and `fleet rollout`, shown here, never made here.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use schemas::load::{EntryKind, SourceTree};
use schemas::rollout::{
    AbortPolicy, Decision, ROLLOUTS_DIR, RolloutFile, RolloutState, Seen, Standing, Tally, standing,
};
use serde::{Deserialize, Serialize};

use super::{ApiResult, AppState, Operator, commit_url, row_state};
use crate::state::SyncState;

/// One file under `rollouts/`, as the last scan read it.
#[derive(Debug, Clone)]
pub enum RolloutEntry {
    Read(Box<RolloutFile>),
    /// A file that does not decode: shown with its error, never guessed at.
    Unreadable {
        path: String,
        error: String,
    },
}

/// The rollouts of the last scanned commit, shared with every handler.
pub type Rollouts = Arc<RwLock<Arc<Vec<RolloutEntry>>>>;

/// Largest rollout file read (10,000 stores with revisions fit easily).
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Every rollout file in `tree` (a fetched commit), tenant by tenant.
pub fn read(tree: &dyn SourceTree) -> Vec<RolloutEntry> {
    let mut out = Vec::new();
    let Ok(tenants) = tree.list(ROLLOUTS_DIR) else {
        return out;
    };
    for t in tenants.iter().filter(|e| e.kind == EntryKind::Dir) {
        let dir = format!("{ROLLOUTS_DIR}/{}", t.name);
        let Ok(files) = tree.list(&dir) else { continue };
        for f in files {
            if f.kind != EntryKind::File || !f.name.ends_with(".yaml") {
                continue;
            }
            let path = format!("{dir}/{}", f.name);
            if f.size > MAX_FILE_BYTES {
                out.push(RolloutEntry::Unreadable {
                    error: format!("over {MAX_FILE_BYTES} bytes"),
                    path,
                });
                continue;
            }
            let entry = match tree.read(&path).map(String::from_utf8) {
                Ok(Ok(text)) => match schemas::yaml::decode::<RolloutFile>(&path, &text) {
                    Ok(file) if file.tenant == t.name => RolloutEntry::Read(Box::new(file)),
                    Ok(file) => RolloutEntry::Unreadable {
                        error: format!("names tenant {} but lies under {dir}", file.tenant),
                        path,
                    },
                    Err(d) => RolloutEntry::Unreadable {
                        error: d.to_string(),
                        path,
                    },
                },
                Ok(Err(_)) => RolloutEntry::Unreadable {
                    error: "not UTF-8".into(),
                    path,
                },
                Err(e) => RolloutEntry::Unreadable {
                    error: e.to_string(),
                    path,
                },
            };
            out.push(entry);
        }
    }
    out
}

/// `GET /api/v1/rollouts`: every rollout the operator's tenants have,
/// newest first.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutsView {
    pub rollouts: Vec<RolloutView>,
    /// Files that did not read (path and why).
    pub unreadable: Vec<UnreadableRollout>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnreadableRollout {
    pub path: String,
    pub error: String,
}

/// One rollout with its waves' live standing.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    pub id: String,
    pub tenant: String,
    pub state: &'static str,
    pub source_commit: String,
    pub source_commit_url: Option<String>,
    pub started_at: DateTime<Utc>,
    pub current_wave: usize,
    /// The bake time, as written (`30m`).
    pub bake: Option<String>,
    pub abort: Option<AbortPolicy>,
    /// The gate in words: baking until …, waiting for …, aborted because ….
    pub gate: String,
    pub abort_reason: Option<String>,
    pub superseded_by: Option<String>,
    pub rolled_back: BTreeMap<String, u64>,
    pub waves: Vec<WaveView>,
    pub history: Vec<Decision>,
}

/// One wave.
#[derive(Debug, Clone, Serialize)]
pub struct WaveView {
    pub name: String,
    /// `passed`, `current`, `waiting` (not signed yet), `empty`.
    pub phase: &'static str,
    pub signed_at: Option<DateTime<Utc>>,
    pub complete_at: Option<DateTime<Utc>>,
    pub baking_until: Option<DateTime<Utc>>,
    pub tally: Tally,
    pub stores: Vec<WaveStore>,
}

/// One store of a wave.
#[derive(Debug, Clone, Serialize)]
pub struct WaveStore {
    /// `<tenant>/<store>`.
    pub store: String,
    /// Its state on the dashboard; `None` when the service has no row.
    pub state: Option<SyncState>,
    pub applied_revision: Option<u64>,
    /// The revision its wave signed; `None` before the wave is signed.
    pub target_revision: Option<u64>,
    /// Against the target, once signed.
    pub standing: Option<Standing>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RolloutsQuery {
    pub tenant: Option<String>,
}

/// The rollouts `op` may see (of `tenant` only, when given).
pub async fn rollouts_view(
    state: &AppState,
    op: &Operator,
    tenant: Option<&str>,
) -> ApiResult<RolloutsView> {
    let entries = state.rollouts.read().map(|g| g.clone()).unwrap_or_default();
    let now = state.clock.now();
    let wanted = |t: &str| op.sees(t) && tenant.is_none_or(|x| x == t);
    let mut rows = BTreeMap::new();
    for row in state.store.list_stores().await? {
        if wanted(&row.tenant) && op.sees_store(&row.store) {
            let s = row_state(state, &row, now);
            rows.insert(row.store.clone(), (row, s));
        }
    }
    let mut rollouts = Vec::new();
    let mut unreadable = Vec::new();
    for e in entries.iter() {
        match e {
            RolloutEntry::Read(file) if wanted(&file.tenant) => {
                rollouts.push(view(state, file, &rows, op, now));
            }
            RolloutEntry::Unreadable { path, error } => {
                let t = path.split('/').nth(1).unwrap_or("");
                if wanted(t) {
                    unreadable.push(UnreadableRollout {
                        path: path.clone(),
                        error: error.clone(),
                    });
                }
            }
            RolloutEntry::Read(_) => {}
        }
    }
    rollouts.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    Ok(RolloutsView {
        rollouts,
        unreadable,
    })
}

fn view(
    state: &AppState,
    file: &RolloutFile,
    rows: &BTreeMap<String, (crate::store::StoreRow, SyncState)>,
    op: &Operator,
    now: DateTime<Utc>,
) -> RolloutView {
    let bake = file
        .bake
        .and_then(|b| chrono::Duration::from_std(b.0).ok())
        .unwrap_or_default();
    let seen = |store: &str| {
        rows.get(store).map(|(row, s)| Seen {
            state: s.as_str(),
            applied_revision: row.applied_revision,
            reported_revision: row.reported_revision,
        })
    };
    let waves: Vec<WaveView> = file
        .waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut tally = Tally::default();
            let stores = w
                .stores
                .iter()
                .map(|s| format!("{}/{s}", file.tenant))
                .filter(|id| op.sees_store(id))
                .map(|id| {
                    let dir = id.rsplit('/').next().unwrap_or("");
                    let target = w.revisions.get(dir).copied();
                    let standing = target.map(|t| standing(seen(&id), t));
                    if let Some(s) = standing {
                        tally.add(s);
                    }
                    let row = rows.get(&id);
                    WaveStore {
                        state: row.map(|(_, s)| *s),
                        applied_revision: row.and_then(|(r, _)| r.applied_revision),
                        target_revision: target,
                        standing,
                        store: id,
                    }
                })
                .collect();
            let phase = if w.stores.is_empty() {
                "empty"
            } else if w.signed_at.is_none() {
                "waiting"
            } else if i == file.current_wave && file.state != RolloutState::Completed {
                "current"
            } else {
                "passed"
            };
            WaveView {
                name: w.name.clone(),
                phase,
                signed_at: w.signed_at,
                complete_at: w.complete_at,
                baking_until: w
                    .complete_at
                    .filter(|_| phase == "current" && bake > chrono::Duration::zero())
                    .map(|t| t + bake),
                tally,
                stores,
            }
        })
        .collect();
    let gate = gate(file, waves.get(file.current_wave), now);
    RolloutView {
        id: file.id.clone(),
        tenant: file.tenant.clone(),
        state: file.state.as_str(),
        source_commit_url: commit_url(state, &file.source_commit),
        source_commit: file.source_commit.clone(),
        started_at: file.started_at,
        current_wave: file.current_wave,
        bake: file
            .bake
            .map(|b| humantime::format_duration(b.0).to_string()),
        abort: file.abort,
        gate,
        abort_reason: file.abort_reason.clone(),
        superseded_by: file.superseded_by.clone(),
        rolled_back: file.rolled_back.clone(),
        waves,
        history: file.history.clone(),
    }
}

/// The gate of the current wave in words.
fn gate(file: &RolloutFile, wave: Option<&WaveView>, now: DateTime<Utc>) -> String {
    match file.state {
        RolloutState::Completed => "completed: every wave passed".to_owned(),
        RolloutState::Aborted => format!(
            "aborted because {}",
            file.abort_reason
                .as_deref()
                .unwrap_or("(no reason recorded)")
        ),
        RolloutState::Superseded => format!(
            "superseded by {}",
            file.superseded_by.as_deref().unwrap_or("a newer change")
        ),
        RolloutState::Paused => "paused: `fleet rollout resume` lets it advance".to_owned(),
        RolloutState::InProgress => match wave {
            None => "no wave".to_owned(),
            Some(w) if w.tally.complete() => match w.baking_until {
                Some(until) if until > now => format!(
                    "wave {} complete; baking until {}",
                    w.name,
                    until.format("%Y-%m-%d %H:%M UTC")
                ),
                _ => format!(
                    "wave {} passed its gate: the next advance signs the next wave",
                    w.name
                ),
            },
            Some(w) if w.tally.online() == 0 => format!(
                "wave {}: none of its {} store(s) reports yet; it cannot pass until one does",
                w.name, w.tally.stores
            ),
            Some(w) => format!(
                "wave {}: waiting for {} store(s) to reach their revision ({})",
                w.name,
                w.tally.online() - w.tally.at_target,
                w.tally
            ),
        },
    }
}

/// `GET /api/v1/rollouts[?tenant=T]`.
pub(super) async fn list_rollouts(
    op: Operator,
    State(state): State<AppState>,
    Query(q): Query<RolloutsQuery>,
) -> ApiResult<Json<RolloutsView>> {
    Ok(Json(rollouts_view(&state, &op, q.tenant.as_deref()).await?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_per_tenant_and_bad_ones_named() {
        let mut m = std::collections::BTreeMap::new();
        let good = "apiVersion: fleet/v1\nkind: Rollout\nid: r1\ntenant: acme\nstate: in_progress\nsource_commit: abc\nbase_commit: abc\nsources_digest: d\nstarted_at: 2026-12-04T10:00:00Z\ncurrent_wave: 0\nwaves:\n- {name: canary, stores: [soho], revisions: {soho: 2}, signed_at: 2026-12-04T10:00:00Z}\n";
        m.insert("rollouts/acme/r1.yaml".to_owned(), good.to_owned());
        m.insert(
            "rollouts/acme/r2.yaml".to_owned(),
            good.replace("tenant: acme", "tenant: other"),
        );
        m.insert(
            "rollouts/acme/r3.yaml".to_owned(),
            "kind: Nonsense\n".to_owned(),
        );
        m.insert("rollouts/acme/notes.txt".to_owned(), "hi".to_owned());
        let tree = schemas::load::MemoryTree(m);
        let entries = read(&tree);
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert!(matches!(&entries[0], RolloutEntry::Read(f) if f.id == "r1"));
        assert!(
            matches!(&entries[1], RolloutEntry::Unreadable { error, .. } if error.contains("names tenant other"))
        );
        assert!(
            matches!(&entries[2], RolloutEntry::Unreadable { path, .. } if path.ends_with("r3.yaml"))
        );
    }
}

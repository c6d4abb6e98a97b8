//! `GET /metrics`: stores per state, ingest and fetch counters, and the
//! request latencies of [`crate::http_metrics`], in the Prometheus text
//! format (0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{ApiResult, AppState, row_state};
use crate::state::SyncState;

pub(super) async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let t = state.clock.now();
    let mut counts: BTreeMap<&'static str, u64> =
        SyncState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for row in state.store.list_stores().await? {
        *counts
            .entry(row_state(&state, &row, t).as_str())
            .or_default() += 1;
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP fleet_status_stores Stores per state.\n# TYPE fleet_status_stores gauge"
    );
    for (s, n) in &counts {
        let _ = writeln!(out, "fleet_status_stores{{state=\"{s}\"}} {n}");
    }
    let m = &state.metrics;
    for (name, help, value) in [
        (
            "fleet_status_reports_ingested_total",
            "Reports accepted since start.",
            &m.reports_ingested,
        ),
        (
            "fleet_status_fetches_total",
            "Fleet repo fetches since start.",
            &m.fetches,
        ),
        (
            "fleet_status_fetch_errors_total",
            "Failed fleet repo fetches since start.",
            &m.fetch_errors,
        ),
        (
            "fleet_status_relay_answers_total",
            "Release relay answers with a body (200) since start.",
            &m.relay_answers,
        ),
        (
            "fleet_status_relay_not_modified_total",
            "Release relay answers 304 Not Modified since start.",
            &m.relay_not_modified,
        ),
    ] {
        counter(&mut out, name, help, value.load(Ordering::Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP fleet_status_long_polls Long-polls (GET /api/v1/desired) held now.\n# TYPE fleet_status_long_polls gauge\nfleet_status_long_polls {}",
        m.long_polls.load(Ordering::Relaxed)
    );
    let version = m.trust_root_version.load(Ordering::Relaxed);
    if version > 0 {
        // Alert on `fleet_status_trust_root_expires_at_seconds - time() < 30 * 86400`:
        // an expired root freezes the fleet.
        for (name, help, value) in [
            (
                "fleet_status_trust_root_version",
                "The trust root version the service walked to at its last fetch.",
                version as i64,
            ),
            (
                "fleet_status_trust_root_expires_at_seconds",
                "When that trust root version expires (unix seconds).",
                m.trust_root_expires_at.load(Ordering::Relaxed),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
    }
    if let Ok(counts) = state.alert_counts.read()
        && !counts.is_empty()
    {
        let name = "fleet_status_alerts";
        let _ = writeln!(
            out,
            "# HELP {name} Alert conditions holding now, by event (what --alert-webhook is told).\n# TYPE {name} gauge"
        );
        for (event, n) in counts.iter() {
            let _ = writeln!(out, "{name}{{event=\"{event}\"}} {n}");
        }
    }
    out.push_str(&m.requests.render());
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response())
}

/// One counter with its `HELP` and `TYPE` lines.
fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

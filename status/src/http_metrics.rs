//! Request latencies for `GET /metrics`: one Prometheus histogram per
//! method and route template (`/api/v1/stores/{tenant}/{store}`, never the
//! concrete path, so store names do not leak into metrics and the number
//! of series stays fixed), recorded by a middleware around the router.
//!
//! The rest of `/metrics` is a handful of counters and gauges written as
//! Prometheus text by the API; this keeps to the same format rather than
//! mixing in a second encoder.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;

/// Upper bounds of the buckets, in seconds. Long-polls land in the last.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Non-cumulative counts per bucket, plus one for +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

/// Latency histograms keyed by (method, route).
#[derive(Debug, Default)]
pub struct RequestLatencies {
    by_route: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl RequestLatencies {
    /// Record one request of `seconds`.
    pub fn observe(&self, method: &str, route: &str, seconds: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        let mut map = self
            .by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = map
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        h.counts[i] += 1;
        h.sum += seconds;
        h.count += 1;
    }

    /// The histograms as Prometheus text.
    pub fn render(&self) -> String {
        let map = self
            .by_route
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let name = "fleet_status_http_request_duration_seconds";
        let mut out = format!(
            "# HELP {name} HTTP request latency by method and route.\n# TYPE {name} histogram\n"
        );
        for ((method, route), h) in &map {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            let mut cumulative = 0;
            for (b, n) in BUCKETS.iter().zip(h.counts.iter()) {
                cumulative += n;
                out.push_str(&format!(
                    "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "{name}_bucket{{{labels},le=\"+Inf\"}} {}\n{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}\n",
                h.count, h.sum, h.count
            ));
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The layer that times every request that matched a route (unmatched
/// paths are one series, `unmatched`); it goes on the router with
/// `route_layer`, so that the matched route is known.
///
/// A tower layer rather than `axum::middleware::from_fn`: that one clones
/// the route's whole service (with the state) into a box for every request
/// and keeps the clone as long as the request lives, which a held long-poll
/// does for a minute, 10,000 times over (docs/BENCHMARKS.md,
/// distribution). This one calls the route it wraps and keeps only the
/// route's name (shared), the method and the start time.
#[derive(Debug, Clone)]
pub struct Track(pub std::sync::Arc<RequestLatencies>);

impl<S> tower_layer::Layer<S> for Track {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            latencies: self.0.clone(),
        }
    }
}

/// A route's service, timed ([`Track`]).
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    latencies: std::sync::Arc<RequestLatencies>,
}

impl<S> tower_service::Service<Request> for Tracked<S>
where
    S: tower_service::Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, S::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let latencies = self.latencies.clone();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            latencies.observe(method.as_str(), route, started.elapsed().as_secs_f64());
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_labelled_by_route() {
        let l = RequestLatencies::default();
        l.observe("POST", "/api/v1/reports", 0.002);
        l.observe("POST", "/api/v1/reports", 0.2);
        l.observe("GET", "/api/v1/desired", 75.0);
        let text = l.render();
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
                .to_owned()
        };
        let reports = "fleet_status_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/reports\"";
        assert!(line(&format!("{reports},le=\"0.001\"}}")).ends_with(" 0"));
        assert!(line(&format!("{reports},le=\"0.005\"}}")).ends_with(" 1"));
        assert!(line(&format!("{reports},le=\"0.25\"}}")).ends_with(" 2"));
        assert!(line(&format!("{reports},le=\"+Inf\"}}")).ends_with(" 2"));
        let desired = "fleet_status_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/desired\"";
        assert!(line(&format!("{desired},le=\"60\"}}")).ends_with(" 0"));
        assert!(line(&format!("{desired},le=\"+Inf\"}}")).ends_with(" 1"));
        assert!(text.contains(
            "fleet_status_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/desired\"} 1"
        ));
    }
}

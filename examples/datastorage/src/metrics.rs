//! Prometheus text exposition on `metricsPort` `/metrics`.
//!
//! A handful of counters kept in the process; no metrics crate, since the exposition format for
//! counters and gauges is a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

#[derive(Default)]
pub struct Metrics {
    /// (method, route, status code) -> count, for the API server.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    pub audit_events_written: AtomicU64,
    pub audit_events_read: AtomicU64,
    pub audit_write_errors: AtomicU64,
    /// 1 when the last readiness check passed.
    pub ready: AtomicU64,
}

impl Metrics {
    pub fn count_request(&self, method: &str, route: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP datastorage_http_requests_total API requests served, by method, route and status code.\n");
        out.push_str("# TYPE datastorage_http_requests_total counter\n");
        let map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((method, route, code), n) in map.iter() {
            let _ = writeln!(
                out,
                "datastorage_http_requests_total{{method=\"{method}\",route=\"{}\",code=\"{code}\"}} {n}",
                route.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
        drop(map);
        let scalar = |out: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        scalar(
            &mut out,
            "datastorage_audit_events_written_total",
            "counter",
            "Audit events stored in PostgreSQL.",
            self.audit_events_written.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "datastorage_audit_events_read_total",
            "counter",
            "Audit events returned by queries.",
            self.audit_events_read.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "datastorage_audit_write_errors_total",
            "counter",
            "Audit event writes that failed in PostgreSQL.",
            self.audit_write_errors.load(Ordering::Relaxed),
        );
        scalar(
            &mut out,
            "datastorage_ready",
            "gauge",
            "1 when PostgreSQL, the migrated tables and Redis were all reachable at the last check.",
            self.ready.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP datastorage_build_info The running build.\n# TYPE datastorage_build_info gauge\ndatastorage_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

/// The metrics server's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(state)
}

async fn serve_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Middleware on the API router: counts each request by its route pattern (not the raw path,
/// so query strings and ids do not create new series) and logs it at debug level.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    state.metrics.count_request(&method, &route, status);
    crate::log!(
        Debug,
        "request",
        method = method,
        path = path,
        status = status,
        ms = started.elapsed().as_millis()
    );
    response
}

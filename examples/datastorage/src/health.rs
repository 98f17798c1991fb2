//! `/healthz` and `/readyz` on `healthPort`, plain HTTP as the kubelet's httpGet probes expect.
//!
//! Liveness says only that the process serves requests: restarting the pod would not bring
//! PostgreSQL back. Readiness says the service can do its job: PostgreSQL answers, the migrated
//! tables exist and Redis answers `PING`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::watch;

use crate::backends::Readiness;
use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// 200 `{"status":"ready","checks":{...}}`, or 503 `{"status":"not ready","reason":...,"checks":{...}}`.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let readiness = check(&state).await;
    let checks = json!({
        "postgres": verdict(&readiness.postgres),
        "migrations": verdict(&readiness.migrations),
        "redis": verdict(&readiness.redis),
    });
    match readiness.reason() {
        None => (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": checks})),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": reason, "checks": checks})),
        ),
    }
}

fn verdict(r: &Result<(), String>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.clone(),
    }
}

/// Runs the checks and records the outcome in the readiness gauge.
pub async fn check(state: &AppState) -> Readiness {
    let readiness = state.backends.readiness().await;
    state
        .metrics
        .ready
        .store(u64::from(readiness.is_ready()), Ordering::Relaxed);
    readiness
}

/// Re-checks readiness in the background and logs each change (and the reason), so the pod's
/// log tells when and why it became ready or stopped being ready, whether or not a probe asked.
pub async fn watch_readiness(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut last: Option<Readiness> = None;
    loop {
        let readiness = check(&state).await;
        if last.as_ref() != Some(&readiness) {
            match readiness.reason() {
                None => crate::log!(
                    Info,
                    "ready: PostgreSQL, migrations and Redis OK",
                    postgres = state.backends.pg_target,
                    redis = state.backends.redis_target
                ),
                Some(reason) => crate::log!(Warn, "not ready", reason = reason),
            }
        }
        // Retry soon while not ready, so readiness follows the backends within a second or two.
        let pause = if readiness.is_ready() {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(1)
        };
        last = Some(readiness);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}

//! The audit API: events written to and read from PostgreSQL's `audit_events`.
//!
//! `POST /api/v1/audit/events` stores one event and answers 201 with it as stored;
//! `GET /api/v1/audit/events?correlation_id=...` lists events, oldest first, with pagination.
//! Errors are RFC 7807 problem documents (`application/problem+json`), as upstream's are.
//!
//! Rows are turned into JSON by PostgreSQL itself (`json_build_object`), so the crate needs no
//! uuid/chrono/json support in sqlx and the wire format is defined in one place: `EVENT_JSON`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::AppState;

/// One event as the API returns it; timestamps are RFC 3339 UTC with microseconds.
const EVENT_JSON: &str = r#"json_build_object(
    'event_id', event_id::text,
    'event_timestamp', to_char(event_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'correlation_id', correlation_id,
    'event_type', event_type,
    'event_category', event_category,
    'event_action', event_action,
    'event_outcome', event_outcome,
    'actor_type', actor_type,
    'actor_id', actor_id,
    'resource_type', resource_type,
    'resource_id', resource_id,
    'namespace', namespace,
    'event_data', event_data)::text"#;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 1000;
/// Upstream's column sizes for the identifying fields.
const MAX_FIELD_LEN: usize = 255;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/audit/events", get(list_events).post(create_event))
        .with_state(state)
}

/// The body of `POST /api/v1/audit/events`. Unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct NewEvent {
    correlation_id: Option<String>,
    event_type: Option<String>,
    event_data: Option<Value>,
    event_category: Option<String>,
    event_action: Option<String>,
    event_outcome: Option<String>,
    actor_type: Option<String>,
    actor_id: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    namespace: Option<String>,
    /// RFC 3339; the server's clock when absent.
    event_timestamp: Option<String>,
}

/// An RFC 7807 problem: `{"type","title","status","detail"}`.
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
        }
    }

    /// Maps a database error: bad values (SQLSTATE class 22) are the client's fault, a missing
    /// table or an unreachable server make the service unavailable, the rest is ours.
    fn from_db(e: sqlx::Error) -> ApiError {
        if let Some(db) = e.as_database_error() {
            let code = db.code().unwrap_or_default();
            if code.starts_with("22") {
                return ApiError::bad_request(db.message().to_string());
            }
            if code == "42P01" {
                return ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    detail: format!("migrations not applied: {}", db.message()),
                };
            }
            return ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                detail: format!("database error {code}: {}", db.message()),
            };
        }
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: format!("PostgreSQL unavailable: {e}"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let slug = match self.status {
            StatusCode::BAD_REQUEST => "validation-error",
            StatusCode::SERVICE_UNAVAILABLE => "service-unavailable",
            _ => "internal-error",
        };
        let body = json!({
            "type": format!("https://kubernaut.ai/problems/{slug}"),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// `POST /api/v1/audit/events` -> 201 with the stored event.
async fn create_event(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let event = validate(&body)?;
    let sql = format!(
        "INSERT INTO audit_events (correlation_id, event_type, event_data, event_category, \
         event_action, event_outcome, actor_type, actor_id, resource_type, resource_id, \
         namespace, event_timestamp) \
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10, $11, COALESCE($12::timestamptz, now())) \
         RETURNING {EVENT_JSON}"
    );
    let stored: Result<String, _> = sqlx::query_scalar(&sql)
        .bind(&event.correlation_id)
        .bind(&event.event_type)
        .bind(event.event_data.as_ref().map(Value::to_string))
        .bind(&event.event_category)
        .bind(&event.event_action)
        .bind(&event.event_outcome)
        .bind(&event.actor_type)
        .bind(&event.actor_id)
        .bind(&event.resource_type)
        .bind(&event.resource_id)
        .bind(&event.namespace)
        .bind(&event.event_timestamp)
        .fetch_one(&state.backends.pg)
        .await;
    let stored = stored.map_err(|e| {
        state
            .metrics
            .audit_write_errors
            .fetch_add(1, Ordering::Relaxed);
        let err = ApiError::from_db(e);
        crate::log!(Warn, "audit event not stored", reason = err.detail);
        err
    })?;
    state
        .metrics
        .audit_events_written
        .fetch_add(1, Ordering::Relaxed);
    let stored: Value = serde_json::from_str(&stored).map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        detail: format!("stored event is not JSON: {e}"),
    })?;
    crate::log!(
        Info,
        "audit event stored",
        event_id = stored["event_id"].as_str().unwrap_or_default(),
        correlation_id = event.correlation_id.as_deref().unwrap_or_default(),
        event_type = event.event_type.as_deref().unwrap_or_default()
    );
    // The Redis counter is a side note; it must not delay or fail the write.
    let backends = state.backends.clone();
    tokio::spawn(async move {
        if let Err(e) = backends.count_write_in_redis().await {
            crate::log!(Debug, "redis write counter not updated", reason = e);
        }
    });
    Ok((StatusCode::CREATED, axum::Json(stored)).into_response())
}

/// Parses and checks the body; every problem is a 400 that says what is wrong.
fn validate(body: &[u8]) -> Result<NewEvent, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("empty body: expected a JSON object"));
    }
    let event: NewEvent = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("body is not a valid audit event: {e}")))?;
    for (name, value) in [
        ("correlation_id", &event.correlation_id),
        ("event_type", &event.event_type),
    ] {
        match value.as_deref().map(str::trim) {
            None | Some("") => return Err(ApiError::bad_request(format!("{name} is required"))),
            Some(v) if v.len() > MAX_FIELD_LEN => {
                return Err(ApiError::bad_request(format!(
                    "{name} is longer than {MAX_FIELD_LEN} characters"
                )))
            }
            Some(_) => {}
        }
    }
    if let Some(ts) = &event.event_timestamp {
        if !is_rfc3339(ts) {
            return Err(ApiError::bad_request(format!(
                "event_timestamp {ts:?} is not an RFC 3339 timestamp (e.g. 2026-01-02T15:04:05Z)"
            )));
        }
    }
    match &event.event_data {
        Some(Value::Object(_)) => {}
        None => return Err(ApiError::bad_request("event_data is required")),
        Some(_) => return Err(ApiError::bad_request("event_data must be a JSON object")),
    }
    Ok(event)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)`. Only the shape is checked here; PostgreSQL
/// rejects impossible dates (400 too), and would otherwise accept words like `yesterday`.
fn is_rfc3339(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &ts[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// `GET /api/v1/audit/events?correlation_id=&event_type=&limit=&offset=` -> 200
/// `{"data":[event...],"pagination":{"limit","offset","total","has_more"}}`.
async fn list_events(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let int_param = |name: &str, default: i64, max: i64| -> Result<i64, ApiError> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{name} must be an integer from 0 to {max}"))
                }),
        }
    };
    let limit = int_param("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = int_param("offset", 0, i64::from(i32::MAX))?;
    let filter = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let correlation_id = filter("correlation_id");
    let event_type = filter("event_type");

    const WHERE: &str =
        "WHERE ($1::text IS NULL OR correlation_id = $1) AND ($2::text IS NULL OR event_type = $2)";
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM audit_events {WHERE}"))
        .bind(&correlation_id)
        .bind(&event_type)
        .fetch_one(&state.backends.pg)
        .await
        .map_err(ApiError::from_db)?;
    let rows: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT {EVENT_JSON} FROM audit_events {WHERE} \
         ORDER BY event_timestamp, event_id LIMIT $3 OFFSET $4"
    ))
    .bind(&correlation_id)
    .bind(&event_type)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.backends.pg)
    .await
    .map_err(ApiError::from_db)?;
    let data = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            detail: format!("stored event is not JSON: {e}"),
        })?;
    state
        .metrics
        .audit_events_read
        .fetch_add(data.len() as u64, Ordering::Relaxed);
    let mut pagination = Map::new();
    pagination.insert("limit".into(), limit.into());
    pagination.insert("offset".into(), offset.into());
    pagination.insert("total".into(), total.into());
    pagination.insert(
        "has_more".into(),
        (offset + (data.len() as i64) < total).into(),
    );
    Ok(axum::Json(json!({"data": data, "pagination": pagination})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(body: &str) -> String {
        match validate(body.as_bytes()) {
            Ok(_) => "ok".into(),
            Err(e) => e.detail,
        }
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            detail(r#"{"correlation_id":"c","event_type":"t","event_data":{}}"#),
            "ok"
        );
        assert_eq!(detail(""), "empty body: expected a JSON object");
        assert!(detail("{").contains("not a valid audit event"));
        assert_eq!(
            detail(r#"{"event_type":"t","event_data":{}}"#),
            "correlation_id is required"
        );
        assert_eq!(
            detail(r#"{"correlation_id":" ","event_type":"t","event_data":{}}"#),
            "correlation_id is required"
        );
        assert_eq!(
            detail(r#"{"correlation_id":"c","event_data":{}}"#),
            "event_type is required"
        );
        assert_eq!(
            detail(r#"{"correlation_id":"c","event_type":"t"}"#),
            "event_data is required"
        );
        assert_eq!(
            detail(r#"{"correlation_id":"c","event_type":"t","event_data":[1]}"#),
            "event_data must be a JSON object"
        );
        for ts in ["2026-01-02T15:04:05Z", "2026-01-02T15:04:05.123456+02:00"] {
            assert!(is_rfc3339(ts), "{ts}");
        }
        for ts in [
            "yesterday",
            "2026-01-02 15:04:05",
            "2026-01-02T15:04:05",
            "2026-01-02T15:04:05.Z",
        ] {
            assert!(!is_rfc3339(ts), "{ts}");
        }
        assert!(
            detail(r#"{"correlation_id":5,"event_type":"t","event_data":{}}"#)
                .contains("invalid type")
        );
    }
}

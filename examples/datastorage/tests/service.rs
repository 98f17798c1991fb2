//! The example service against the testbed's real PostgreSQL and Redis: readiness follows the
//! migrations, the audit API round-trips over verified HTTPS, metrics count the writes, a bad
//! config crashes with the file named, no certificate means plain HTTP, unreachable backends
//! mean "not ready" rather than a hang.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

const SERVICES: &[&str] = &["E2E_DATABASE_URL", "E2E_REDIS_URL"];

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_migrations_and_audit_events_round_trip_over_https() {
    let Some(tb) = e2e_testbed::require(SERVICES) else {
        return;
    };
    let db = TestDb::create(tb.get("E2E_DATABASE_URL")).await;
    let setup = Setup::new(&db, tb.get("E2E_REDIS_URL"));
    // EC PRIVATE KEY, as upstream's certificate helpers write it.
    let certs = TestCerts::write(&setup.cert_dir(), KeyForm::Sec1);
    let service = Service::start(&setup.write());
    assert!(service.api.starts_with("https://"), "{}", service.api);
    let api = service.api.replace("127.0.0.1", "localhost");
    let events = format!("{api}/api/v1/audit/events");
    let ca = Some(certs.ca_pem.as_str());

    // Before the migrations: alive, not ready, and the reason names the missing table.
    assert_eq!(
        request("GET", &format!("{}/healthz", service.health), None, None)
            .unwrap()
            .status,
        200
    );
    let not_ready = wait_for_status(
        &format!("{}/readyz", service.health),
        503,
        Duration::from_secs(10),
    );
    assert!(
        not_ready.body.contains("audit_events"),
        "{}",
        not_ready.body
    );
    let write = request(
        "POST",
        &events,
        Some(r#"{"correlation_id":"c","event_type":"t","event_data":{}}"#),
        ca,
    )
    .unwrap();
    assert_eq!(write.status, 503, "{}", write.body);

    let applied = db.migrate_up().await;
    assert_eq!(applied.len(), 3, "{applied:?}");
    let ready = wait_for_status(
        &format!("{}/readyz", service.health),
        200,
        Duration::from_secs(10),
    );
    assert_eq!(ready.json()["status"], "ready");

    // Write an event over HTTPS, the server's certificate verified against the test CA.
    let event = json!({
        "correlation_id": "rr-2026-001",
        "event_type": "aianalysis.analysis.completed",
        "event_category": "analysis",
        "event_action": "completed",
        "event_outcome": "success",
        "actor_type": "service",
        "actor_id": "aianalysis-controller",
        "resource_type": "AIAnalysis",
        "resource_id": "analysis-1",
        "namespace": "kubernaut-system",
        "event_data": {"confidence": 0.92, "workflow": "restart-pod"},
        "some_future_field": true,
    });
    let created = request("POST", &events, Some(&event.to_string()), ca).unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let stored = created.json();
    let id = stored["event_id"].as_str().expect("event_id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert!(
        stored["event_timestamp"].as_str().unwrap().ends_with('Z'),
        "{stored}"
    );
    for key in [
        "correlation_id",
        "event_type",
        "namespace",
        "event_data",
        "actor_id",
    ] {
        assert_eq!(stored[key], event[key], "{key}");
    }
    // A second event of another correlation id must not show up in the first one's list.
    let other = request(
        "POST",
        &events,
        Some(r#"{"correlation_id":"rr-other","event_type":"x","event_data":{"n":1}}"#),
        ca,
    )
    .unwrap();
    assert_eq!(other.status, 201, "{}", other.body);

    let listed = request(
        "GET",
        &format!("{events}?correlation_id=rr-2026-001"),
        None,
        ca,
    )
    .unwrap();
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed = listed.json();
    assert_eq!(listed["data"], json!([stored]));
    assert_eq!(
        listed["pagination"],
        json!({"limit": 50, "offset": 0, "total": 1, "has_more": false})
    );

    // Stored in PostgreSQL, not in the process.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url())
        .await
        .unwrap();
    let in_db: String = sqlx::query_scalar(
        "SELECT event_data->>'workflow' FROM audit_events WHERE event_id::text = $1",
    )
    .bind(id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(in_db, "restart-pod");

    // Bad input: 400 with a problem document that says what is wrong.
    for (body, says) in [
        (
            r#"{"event_type":"t","event_data":{}}"#,
            "correlation_id is required",
        ),
        (
            r#"{"correlation_id":"c","event_type":"t","event_data":"x"}"#,
            "event_data must be a JSON object",
        ),
        ("not json", "not a valid audit event"),
        (
            r#"{"correlation_id":"c","event_type":"t","event_data":{},"event_timestamp":"yesterday"}"#,
            "RFC 3339",
        ),
        (
            r#"{"correlation_id":"c","event_type":"t","event_data":{},"event_timestamp":"2026-13-01T00:00:00Z"}"#,
            "out of range",
        ),
    ] {
        let r = request("POST", &events, Some(body), ca).unwrap();
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let problem = r.json();
        assert_eq!(problem["status"], 400);
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{body}: {problem}"
        );
    }
    assert_eq!(
        request("GET", &format!("{events}?limit=-1"), None, ca)
            .unwrap()
            .status,
        400
    );

    // Verification is real: without the CA, or with another CA, the handshake fails.
    let err = request("GET", &events, None, None).unwrap_err();
    assert!(
        err.contains("UnknownIssuer") || err.contains("certificate"),
        "{err}"
    );
    let stranger = TestCerts::write(&setup.dir.path().join("other"), KeyForm::Pkcs8);
    assert!(request("GET", &events, None, Some(&stranger.ca_pem)).is_err());

    // The metrics page counts the writes and shows readiness.
    let page = request("GET", &format!("{}/metrics", service.metrics), None, None).unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(
        metric(&page.body, "datastorage_audit_events_written_total"),
        Some(2.0),
        "{}",
        page.body
    );
    assert_eq!(
        metric(&page.body, "datastorage_ready"),
        Some(1.0),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"datastorage_http_requests_total{method="POST",route="/api/v1/audit/events",code="201"} 2"#),
        "{}",
        page.body
    );

    let log = service.log_text();
    assert!(log.contains("API serves HTTPS"), "{log}");
    assert!(log.contains(r#""namespace":"dsx-test""#), "{log}");
    let status = service.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_without_a_certificate_and_pkcs8_keys_work_too() {
    let Some(tb) = e2e_testbed::require(SERVICES) else {
        return;
    };
    let db = TestDb::create(tb.get("E2E_DATABASE_URL")).await;
    db.migrate_up().await;
    let setup = Setup::new(&db, tb.get("E2E_REDIS_URL"));

    let service = Service::start(&setup.write());
    assert!(service.api.starts_with("http://"), "{}", service.api);
    assert!(
        service.log_text().contains("API serves plain HTTP"),
        "{}",
        service.log_text()
    );
    wait_for_status(
        &format!("{}/readyz", service.health),
        200,
        Duration::from_secs(10),
    );
    let events = format!("{}/api/v1/audit/events", service.api);
    let r = request(
        "POST",
        &events,
        Some(r#"{"correlation_id":"plain","event_type":"t","event_data":{}}"#),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let r = request("GET", &format!("{events}?correlation_id=plain"), None, None).unwrap();
    assert_eq!(r.json()["pagination"]["total"], 1);
    drop(service);

    // The same setup with a PKCS#8 key: HTTPS.
    let certs = TestCerts::write(&setup.cert_dir(), KeyForm::Pkcs8);
    let service = Service::start(&setup.write());
    let api = service.api.replace("127.0.0.1", "localhost");
    let r = request(
        "GET",
        &format!("{api}/api/v1/audit/events?correlation_id=plain"),
        None,
        Some(&certs.ca_pem),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"][0]["correlation_id"], "plain");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_backends_mean_not_ready_quickly_not_a_hang() {
    let Some(tb) = e2e_testbed::require(SERVICES) else {
        return;
    };
    let db = TestDb::create(tb.get("E2E_DATABASE_URL")).await;
    let mut setup = Setup::new(&db, tb.get("E2E_REDIS_URL"));
    // Ports nothing listens on: taken from the OS, then closed.
    let closed = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    setup.db_port = closed();
    setup.redis_addr = format!("127.0.0.1:{}", closed());

    let service = Service::start(&setup.write());
    assert_eq!(
        request("GET", &format!("{}/healthz", service.health), None, None)
            .unwrap()
            .status,
        200
    );
    let started = Instant::now();
    let r = request("GET", &format!("{}/readyz", service.health), None, None).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "readyz took {:?}",
        started.elapsed()
    );
    assert_eq!(r.status, 503, "{}", r.body);
    let checks = &r.json()["checks"];
    assert_ne!(checks["postgres"], "ok", "{checks}");
    assert_ne!(checks["redis"], "ok", "{checks}");
    let r = request(
        "POST",
        &format!("{}/api/v1/audit/events", service.api),
        Some(r#"{"correlation_id":"c","event_type":"t","event_data":{}}"#),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["status"], 503);
    assert!(service.terminate(Duration::from_secs(10)).success());
}

#[test]
fn a_config_that_cannot_be_used_exits_non_zero_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &std::path::Path| {
        let out = Command::new(BIN)
            .env("CONFIG_PATH", config)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };

    let missing = dir.path().join("absent.yaml");
    let (code, text) = run(&missing);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&missing.display().to_string()) && text.contains("cannot read"),
        "{text}"
    );

    let bad = dir.path().join("config.yaml");
    std::fs::write(&bad, "server:\n  port: [8080\n").unwrap();
    let (code, text) = run(&bad);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&bad.display().to_string()) && text.contains("cannot parse"),
        "{text}"
    );
    // The pod's log (stdout) has the reason too, as one JSON line.
    assert!(
        text.lines().any(|l| l.contains(r#""level":"error""#)),
        "{text}"
    );

    let secrets = dir.path().join("db-secrets.yaml");
    std::fs::write(
        &bad,
        format!("database:\n  secretsFile: {}\n", secrets.display()),
    )
    .unwrap();
    let (code, text) = run(&bad);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("db-secrets.yaml"), "{text}");

    // A certificate without its key is a broken TLS setup, not a reason to serve clear text.
    let certs = dir.path().join("tls");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(
        certs.join("tls.crt"),
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(
        &bad,
        format!("server:\n  tls:\n    certDir: {}\n", certs.display()),
    )
    .unwrap();
    let (code, text) = run(&bad);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("tls"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_migrations_apply_and_revert_cleanly() {
    let Some(tb) = e2e_testbed::require(&["E2E_DATABASE_URL"]) else {
        return;
    };
    let db = TestDb::create(tb.get("E2E_DATABASE_URL")).await;
    // The grants of 003 apply only when the role exists. Roles are server-wide: make sure it
    // does (upstream's credentials), and never drop it, since parallel tests may see it.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(tb.get("E2E_DATABASE_URL"))
        .await
        .unwrap();
    sqlx::raw_sql(
        "DO $$ BEGIN CREATE ROLE slm_user LOGIN PASSWORD 'test_password'; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    let applied = db.migrate_up().await;
    assert_eq!(
        applied,
        [
            "001_audit_events.sql",
            "002_notification_audit.sql",
            "003_grant_slm_user.sql"
        ]
    );
    let tables = db.tables().await;
    for t in ["audit_events", "notification_audit"] {
        assert!(tables.iter().any(|x| x == t), "{t} missing: {tables:?}");
    }
    let granted = "SELECT has_table_privilege('slm_user', 'public.audit_events', 'INSERT') \
                   AND has_table_privilege('slm_user', 'public.notification_audit', 'SELECT') \
                   AND has_sequence_privilege('slm_user', 'public.notification_audit_id_seq', 'USAGE')";
    assert!(db.ask(granted).await, "003 granted slm_user the tables");
    let reverted = db.migrate_down(migrate::DownTarget::Steps(1)).await;
    assert_eq!(reverted, ["003_grant_slm_user.sql"]);
    assert!(
        !db.ask("SELECT has_table_privilege('slm_user', 'public.audit_events', 'INSERT')")
            .await,
        "003's Down revoked the grants"
    );
    let reverted = db.migrate_down_all().await;
    assert_eq!(reverted.len(), 2, "{reverted:?}");
    assert_eq!(db.tables().await, ["_sqlx_migrations"]);
    // And again: down left nothing that stops a fresh up.
    assert_eq!(db.migrate_up().await.len(), 3);
}

//! Integration tests against the testbed's real PostgreSQL; each test has its own database.

mod common;

use common::*;
use std::collections::BTreeMap;

const ENVSUB: [(&str, &str); 2] = [("E2E_MIGRATE_ENV", "e2e"), ("E2E_MIGRATE_OWNER", "ci-bot")];

fn corpus_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

/// Applies the corpus the way a person would with psql: each file's Up section (ENVSUB values
/// put in by hand), `psql -1 -f` per file, without -1 for the NO TRANSACTION one.
fn apply_with_psql(url: &str) {
    let tmp = tempfile::tempdir().unwrap();
    for f in corpus_files() {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut up = up_section(&text);
        up = up
            .replace("${E2E_MIGRATE_ENV:-dev}", "e2e")
            .replace("${E2E_MIGRATE_OWNER:-nobody}", "ci-bot")
            .replace("${E2E_MIGRATE_RETENTION-2555}", "2555");
        let no_tx = text.contains("-- +goose NO TRANSACTION");
        let path = tmp.path().join(f.file_name().unwrap());
        std::fs::write(&path, up).unwrap();
        let out = psql_file(url, &path, !no_tx);
        assert!(
            out.status.success(),
            "psql failed on {}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn applied_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("Applied "))
        .map(str::to_string)
        .collect()
}

/// Every object left in the public schema (besides the ledger), extensions and extra schemas.
fn leftover_objects(db: &Db) -> String {
    db.scalar(
        "SELECT coalesce(string_agg(what, ', ' ORDER BY what), '') FROM ( \
           SELECT 'relation ' || c.relname AS what FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
            WHERE n.nspname = 'public' AND c.relname NOT IN ('_sqlx_migrations', '_sqlx_migrations_pkey') \
           UNION ALL SELECT 'function ' || p.proname FROM pg_proc p \
             JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' \
           UNION ALL SELECT 'extension ' || extname FROM pg_extension WHERE extname <> 'plpgsql' \
           UNION ALL SELECT 'schema ' || nspname FROM pg_namespace \
            WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%' \
         ) o",
    )
}

#[test]
fn corpus_up_equals_psql_schema_and_down_to_zero_leaves_nothing() {
    let Some(admin) = admin_url() else { return };
    let ours = Db::create(&admin, "mig_corpus");
    let theirs = Db::create(&admin, "mig_psql");

    let mut c = migrate_cmd(&corpus(), &ours.url);
    c.envs(ENVSUB).arg("up");
    let r = run(c);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let lines = applied_lines(&r.stdout);
    assert_eq!(lines.len(), corpus_files().len(), "{}", r.stdout);
    for (line, f) in lines.iter().zip(corpus_files()) {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            line.starts_with(&format!("Applied {name} (")) && line.ends_with(" ms)"),
            "{line}"
        );
    }
    // README.md and notes/ are ignored.
    assert!(!r.stdout.contains("scratch"));
    assert_eq!(ours.scalar("SELECT count(*) FROM _sqlx_migrations"), "15");
    // ENVSUB values went in.
    assert_eq!(
        ours.scalar(
            "SELECT environment || '/' || value FROM app_settings WHERE key = 'deployed_by'"
        ),
        "e2e/ci-bot"
    );
    // Partitions built by the DO block and listed explicitly.
    assert_eq!(
        ours.scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass"),
        "34"
    );

    apply_with_psql(&theirs.url);
    let a = schema_dump(&ours.url);
    let b = schema_dump(&theirs.url);
    assert!(a.contains("CREATE TABLE public.audit_events_2028_12"));
    if a != b {
        let diff: Vec<_> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .take(10)
            .collect();
        panic!("schemas differ (migrate vs psql), first differences: {diff:#?}");
    }

    // A second run is a no-op.
    let r = migrate(&corpus(), &ours.url, &["up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");

    // status shows everything applied, with times.
    let r = migrate(&corpus(), &ours.url, &["status", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["tool"], "migrate");
    let rows = doc["results"].as_array().unwrap();
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|r| r["status"] == "applied"
        && r["applied_at"].is_string()
        && r["seconds"].is_number()));

    let r = migrate(&corpus(), &ours.url, &["down", "--to", "0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("Reverted "))
            .count(),
        15
    );
    assert_eq!(leftover_objects(&ours), "");
    assert_eq!(ours.scalar("SELECT count(*) FROM _sqlx_migrations"), "0");
}

#[test]
fn eight_concurrent_processes_apply_each_migration_exactly_once() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_concurrent");
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut c = migrate_cmd(&corpus(), &db.url);
            c.args(["up", "--lock-timeout", "120s"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().expect("spawn migrate")
        })
        .collect();
    let mut applied: BTreeMap<String, usize> = BTreeMap::new();
    let mut waited = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a run failed: {stderr}");
        if stderr.contains("waiting for the migration lock held by pid") {
            waited += 1;
        }
        for l in applied_lines(&String::from_utf8_lossy(&out.stdout)) {
            let name = l.split_whitespace().nth(1).unwrap().to_string();
            *applied.entry(name).or_default() += 1;
        }
    }
    assert_eq!(applied.len(), 15, "{applied:?}");
    assert!(applied.values().all(|&n| n == 1), "{applied:?}");
    assert_eq!(
        db.scalar("SELECT count(*) || '/' || count(DISTINCT version) FROM _sqlx_migrations"),
        "15/15"
    );
    eprintln!("{waited} of 8 runs reported waiting for the lock");
}

const BASE: &str = "-- +goose Up\nCREATE TABLE base (id int PRIMARY KEY, qty int NOT NULL);\nINSERT INTO base VALUES (1, -5);\n-- +goose Down\nDROP TABLE base;\n";

/// Its 3rd statement fails without an error position (a CHECK that an existing row violates),
/// so migrate must replay the statements to find it.
const THIRD_FAILS: &str = "-- +goose Up\n\
CREATE TABLE orders (id int PRIMARY KEY, base_id int REFERENCES base (id));\n\
CREATE INDEX orders_base ON orders (base_id);\n\
-- the next one fails: base has a row with qty = -5\n\
ALTER TABLE base\n\
    ADD CONSTRAINT base_qty_positive CHECK (qty > 0);\n\
CREATE TABLE never (id int);\n\
-- +goose Down\n\
DROP TABLE orders;\n";

#[test]
fn failure_in_third_statement_leaves_nothing_and_rerun_after_fix_applies() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_fail");
    let dir = dir_with(&[("001_base.sql", BASE), ("002_orders.sql", THIRD_FAILS)]);
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("Applied 001_base.sql"), "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "002_orders.sql:5: migration failed in the statement at line 5: `ALTER TABLE base`"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("ERROR 23514"), "{}", r.stderr);
    assert!(r.stderr.contains("Rolled back"), "{}", r.stderr);
    // No partial DDL, not in the ledger.
    assert_eq!(db.scalar("SELECT to_regclass('orders') IS NULL"), "t");
    assert_eq!(db.scalar("SELECT to_regclass('orders_base') IS NULL"), "t");
    assert_eq!(
        db.scalar("SELECT string_agg(version::text, ',') FROM _sqlx_migrations"),
        "1"
    );

    // Fix the file and run again.
    std::fs::write(
        dir.path().join("002_orders.sql"),
        THIRD_FAILS.replace("CHECK (qty > 0)", "CHECK (qty <> 0)"),
    )
    .unwrap();
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("Applied 002_orders.sql ("));
    assert_eq!(db.scalar("SELECT to_regclass('never') IS NOT NULL"), "t");
}

#[test]
fn error_position_and_do_block_context_map_to_file_lines() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_errpos");
    // A missing relation: PostgreSQL gives a position inside the multi-statement text.
    let dir = dir_with(&[(
        "001_x.sql",
        "-- +goose Up\nCREATE TABLE a (id int);\nINSERT INTO a\n  SELECT id FROM\n    nope;\n-- +goose Down\nDROP TABLE a;\n",
    )]);
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("001_x.sql:3: migration failed in the statement at line 3: `INSERT INTO a` (error at line 5)"),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains("ERROR 42P01: relation \"nope\" does not exist"));

    // A RAISE inside a DO block, with DETAIL and HINT.
    let dir = dir_with(&[(
        "001_y.sql",
        "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose StatementBegin\nDO $$\nBEGIN\n  PERFORM 1;\n  RAISE EXCEPTION 'boom' USING DETAIL = 'some detail', HINT = 'some hint';\nEND;\n$$;\n-- +goose StatementEnd\n",
    )]);
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("001_y.sql:4: migration failed in the statement at line 4: `DO $$`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("ERROR P0001: boom"), "{}", r.stderr);
    assert!(r.stderr.contains("DETAIL: some detail"));
    assert!(r.stderr.contains("HINT: some hint"));
    assert!(r.stderr.contains("(file line 7)"), "{}", r.stderr);
    assert_eq!(db.scalar("SELECT to_regclass('b') IS NULL"), "t");

    // --json carries the same facts.
    let r = migrate(dir.path(), &db.url, &["up", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(doc["failure"]["sqlstate"], "P0001");
    assert_eq!(doc["failure"]["line"], 4);
    assert_eq!(doc["failure"]["hint"], "some hint");
    assert!(doc["error"].as_str().unwrap().contains("ERROR P0001: boom"));
    let failed = doc["results"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(failed["status"], "failed", "{doc}");
    assert!(failed["seconds"].is_number());
    assert!(!r.stdout.contains("password"));
}

#[test]
fn no_transaction_failure_says_what_stays_and_is_not_recorded() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_notx");
    let notx = "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE IF NOT EXISTS t (id int);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\nINSERT INTO missing VALUES (1);\n-- +goose Down\nDROP TABLE t;\n";
    let dir = dir_with(&[("001_notx.sql", notx)]);
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("001_notx.sql:5:"), "{}", r.stderr);
    assert!(r.stderr.contains("NO TRANSACTION"), "{}", r.stderr);
    assert_eq!(db.scalar("SELECT to_regclass('t_id') IS NOT NULL"), "t");
    assert_eq!(db.scalar("SELECT count(*) FROM _sqlx_migrations"), "0");
    std::fs::write(
        dir.path().join("001_notx.sql"),
        notx.replace("INSERT INTO missing", "INSERT INTO t"),
    )
    .unwrap();
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(db.scalar("SELECT count(*) FROM t"), "1");
}

#[test]
fn editing_up_of_an_applied_file_is_refused_editing_down_is_not() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_checksum");
    let dir = dir_with(&[("001_base.sql", BASE)]);
    assert_eq!(migrate(dir.path(), &db.url, &["up"]).code, 0);
    let path = dir.path().join("001_base.sql");

    std::fs::write(
        &path,
        BASE.replace("qty int NOT NULL", "qty bigint NOT NULL"),
    )
    .unwrap();
    std::fs::write(dir.path().join("002_next.sql"), "SELECT 1;\n").unwrap();
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("001_base.sql"), "{}", r.stderr);
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
    assert_eq!(r.stdout, "", "nothing may run");
    let r = migrate(dir.path(), &db.url, &["status"]);
    assert!(
        r.stdout.lines().next().unwrap().contains("modified"),
        "{}",
        r.stdout
    );
    let r = migrate(dir.path(), &db.url, &["up", "--ignore-checksum"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Applied 002_next.sql"));

    // Back to the applied Up; a different Down is fine.
    std::fs::write(
        &path,
        BASE.replace("DROP TABLE base;", "DROP TABLE IF EXISTS base CASCADE;"),
    )
    .unwrap();
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn database_migrated_by_goose_is_read_with_the_goose_ledger() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_goose");
    // What goose leaves behind after `goose up-to 5`: its table with the version-0 row, then one
    // row per migration, each written in the migration's transaction.
    psql_ok(
        &db.url,
        "CREATE TABLE goose_db_version (\n\t\tid integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,\n\t\tversion_id bigint NOT NULL,\n\t\tis_applied boolean NOT NULL,\n\t\ttstamp timestamp NOT NULL DEFAULT now()\n\t);\nINSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true);",
    );
    let tmp = tempfile::tempdir().unwrap();
    for f in corpus_files().iter().take(5) {
        let up = up_section(&std::fs::read_to_string(f).unwrap());
        let version: i64 = f.file_name().unwrap().to_str().unwrap()[..3]
            .parse()
            .unwrap();
        let path = tmp.path().join(f.file_name().unwrap());
        std::fs::write(
            &path,
            format!("{up}\nINSERT INTO goose_db_version (version_id, is_applied) VALUES ({version}, true);\n"),
        )
        .unwrap();
        let out = psql_file(&db.url, &path, true);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let r = migrate(
        &corpus(),
        &db.url,
        &["--ledger", "goose", "status", "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rows = doc["results"].as_array().unwrap();
    let states: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["version"].as_i64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(states.len(), 15);
    assert!(states[..5].iter().all(|s| s.1 == "applied"), "{states:?}");
    assert!(states[5..].iter().all(|s| s.1 == "pending"), "{states:?}");
    assert!(rows[0]["applied_at"].is_string());
    // Without --ledger goose the goose ledger is noticed, not read as "all pending".
    let r = migrate(&corpus(), &db.url, &["status"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("Pass --ledger goose"), "{}", r.stderr);
    let r = status_with_env_ledger(&db);
    assert!(
        r.stdout.lines().next().unwrap().contains("applied"),
        "{}",
        r.stdout
    );

    // Up through the goose ledger applies the rest and records them as goose would.
    let mut c = migrate_cmd(&corpus(), &db.url);
    c.envs(ENVSUB).args(["--ledger", "goose", "up"]);
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(applied_lines(&r.stdout).len(), 10);
    assert!(r.stdout.starts_with("Applied 006_partition_cleanup.sql"));
    assert_eq!(
        db.scalar("SELECT string_agg(version_id::text, ',' ORDER BY id) FROM goose_db_version WHERE is_applied"),
        "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15"
    );
    assert_eq!(
        db.scalar("SELECT to_regclass('_sqlx_migrations') IS NULL"),
        "t"
    );

    // Down deletes rows, as goose does.
    let r = migrate(
        &corpus(),
        &db.url,
        &["--ledger", "goose", "down", "--steps", "2"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        db.scalar("SELECT max(version_id) FROM goose_db_version"),
        "13"
    );
}

fn status_with_env_ledger(db: &Db) -> Run {
    let mut c = migrate_cmd(&corpus(), &db.url);
    c.env("MIGRATE_LEDGER", "goose").arg("status");
    run(c)
}

#[test]
fn out_of_order_is_refused_unless_allowed() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_order");
    let dir = dir_with(&[
        ("001_a.sql", "CREATE TABLE a (id int);\n"),
        ("003_c.sql", "CREATE TABLE c (id int);\n"),
    ]);
    assert_eq!(migrate(dir.path(), &db.url, &["up"]).code, 0);
    std::fs::write(dir.path().join("002_b.sql"), "CREATE TABLE b (id int);\n").unwrap();
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("002_b.sql") && r.stderr.contains("older than"),
        "{}",
        r.stderr
    );
    let r = migrate(dir.path(), &db.url, &["status"]);
    assert!(r.stdout.contains("pending (out of order)"), "{}", r.stdout);
    let mut c = migrate_cmd(dir.path(), &db.url);
    c.env("MIGRATE_ALLOW_OUT_OF_ORDER", "1").arg("up");
    let r = run(c);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), r.stdout.lines().next().unwrap().trim());
    assert!(r.stdout.starts_with("Applied 002_b.sql"));

    // A version in the ledger without a file: missing.
    std::fs::remove_file(dir.path().join("003_c.sql")).unwrap();
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("version 3 with no file"), "{}", r.stderr);
    let r = migrate(dir.path(), &db.url, &["status"]);
    assert!(r.stdout.contains("missing"), "{}", r.stdout);
}

#[test]
fn lock_wait_is_reported_with_the_holders_pid_and_times_out() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_lock");
    let key = migrate::LedgerKind::Sqlx.lock_id(&db.name);
    let mut holder = std::process::Command::new("psql")
        .args(["-X", "-q", "-d", &db.url, "-c"])
        .arg(format!("SELECT pg_advisory_lock({key}), pg_sleep(6)"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the lock is held.
    let pid = loop {
        let pid = db.scalar(&format!(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND (classid::bigint << 32 | objid::bigint) = {key}"
        ));
        if !pid.is_empty() {
            break pid;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let dir = dir_with(&[("001_a.sql", "CREATE TABLE a (id int);\n")]);
    let r = migrate(dir.path(), &db.url, &["up", "--lock-timeout", "1s"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(&format!("waiting for the migration lock held by pid {pid}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("timed out after"), "{}", r.stderr);
    assert_eq!(db.scalar("SELECT to_regclass('a') IS NULL"), "t");
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn dry_run_changes_nothing() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_dry");
    let r = migrate(&corpus(), &db.url, &["up", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<_> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 15);
    assert!(
        lines[8]
            .starts_with("Would apply 009_concurrent_indexes.sql (NO TRANSACTION, 4 statements)"),
        "{}",
        lines[8]
    );
    assert_eq!(
        db.scalar("SELECT to_regclass('_sqlx_migrations') IS NULL"),
        "t"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"),
        "0"
    );
}

#[test]
fn library_api_applies_with_a_pool_and_reports_durations() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_lib");
    let set = migrate::MigrationSet::load_with_env(corpus(), &|k| {
        ENVSUB
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    assert_eq!(set.migrations.len(), 15);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&db.url)
            .await
            .unwrap();
        let m = migrate::Migrator::new(set, migrate::Options::default());
        let applied = m.up_pool(&pool, Some(8)).await.unwrap();
        assert_eq!(applied.len(), 8);
        assert_eq!(applied[0].name, "001_v1_schema.sql");
        assert!(applied[0].duration > std::time::Duration::ZERO);
        let mut conn = pool.acquire().await.unwrap();
        let rest = m.up(&mut conn, None).await.unwrap();
        assert_eq!(rest.first().map(|a| a.version), Some(9));
        let status = m.status(&mut conn).await.unwrap();
        assert!(status.iter().all(|s| s.state == migrate::State::Applied));
    });
    assert_eq!(
        db.scalar("SELECT value FROM app_settings WHERE key = 'deployed_by'"),
        "ci-bot"
    );
}

#[test]
fn verify_checks_tables_and_applied_migrations() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_verify");
    let dir = dir_with(&[
        ("001_a.sql", "CREATE TABLE audit_events (id int);\n"),
        ("002_b.sql", "CREATE TABLE notification_audit (id int);\n"),
    ]);
    let r = migrate(dir.path(), &db.url, &["up", "--to", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = migrate(dir.path(), &db.url, &["verify", "--table", "audit_events"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("002_b.sql is pending"), "{}", r.stderr);
    let r = migrate(
        dir.path(),
        &db.url,
        &[
            "verify",
            "--tables-only",
            "--table",
            "audit_events,notification_audit",
        ],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("table `notification_audit` does not exist"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("ok table audit_events"));
    assert_eq!(migrate(dir.path(), &db.url, &["up"]).code, 0);
    let r = migrate(
        dir.path(),
        &db.url,
        &[
            "verify",
            "--table",
            "audit_events",
            "--table",
            "public.notification_audit",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(doc["ok"], true);
}

//! Faults against the testbed's real PostgreSQL (and real Redis): leaked session settings, files
//! that cannot be read as migrations, a database goose migrated, interrupts, a terminated
//! backend, a connection cut after COMMIT, servers that are not PostgreSQL, `--json` on every
//! failure. Each test checks the exit code, the message, and that nothing is lost or left behind.
//! The two faults that cannot be produced for real (a connection cut exactly after COMMIT, a
//! server answering HTTP) use small fakes and say so in their names.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ledger_versions(db: &Db) -> String {
    db.scalar("SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM public._sqlx_migrations")
}

fn exists(db: &Db, relation: &str) -> bool {
    db.scalar(&format!("SELECT to_regclass('{relation}') IS NOT NULL")) == "t"
}

/// Advisory locks held in `db` by anyone.
fn advisory_locks(db: &Db) -> String {
    db.scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND d.datname = current_database()",
    )
}

/// Waits (bounded) until a session of `db` runs a query containing `needle`; its pid.
fn wait_for_query(db: &Db, needle: &str) -> String {
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND state = 'active' AND query LIKE '%{needle}%' AND pid <> pg_backend_pid() LIMIT 1"
    );
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let pid = db.scalar(&sql);
        if !pid.is_empty() {
            return pid;
        }
        assert!(Instant::now() < until, "no session ever ran `{needle}`");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until no `migrate` session is connected to `db` any more.
fn wait_for_no_sessions(db: &Db) {
    let until = Instant::now() + Duration::from_secs(30);
    while db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'migrate'",
    ) != "0"
    {
        assert!(Instant::now() < until, "a migrate session stayed connected");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("migrate starts")
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().expect("migrate ends");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn kill(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{signal} failed");
}

fn json_doc(r: &Run) -> serde_json::Value {
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON document: {}", r.stdout);
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("valid JSON");
    assert_eq!(v["tool"], "migrate");
    for item in v["results"].as_array().expect("results array") {
        assert!(item["status"].is_string(), "{item}");
        assert!(item["seconds"].is_number(), "{item}");
    }
    v
}

#[test]
fn session_settings_of_one_migration_reach_neither_the_next_nor_the_ledger() {
    let Some(admin) = admin_url() else { return };
    // A real `pg_dump -s`: it empties search_path for the session (set_config(..., false)).
    let src = Db::create(&admin, "mig_dumpsrc");
    psql_ok(
        &src.url,
        "CREATE TABLE dumped (id int PRIMARY KEY, note text); \
         CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42';",
    );
    let out = Command::new("pg_dump")
        .args(["-s", "--no-owner", "--no-privileges", "-d", &src.url])
        .output()
        .expect("pg_dump runs");
    assert!(out.status.success());
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    // Newer pg_dump versions add `\restrict` lines, psql meta-commands: refused before anything
    // runs, naming the line.
    if raw.contains("\\restrict") {
        let db = Db::create(&admin, "mig_restrict");
        let dir = dir_with(&[("001_schema.sql", &raw)]);
        let r = migrate(dir.path(), &db.url, &["up"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("`\\restrict` is a psql meta-command, not SQL"),
            "{}",
            r.stderr
        );
        assert!(!exists(&db, "_sqlx_migrations") && !exists(&db, "dumped"));
    }
    let dump: String = raw
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(dump.contains("set_config('search_path', '', false)"));

    let db = Db::create(&admin, "mig_session");
    let dir = dir_with(&[
        ("001_schema.sql", &dump),
        // Unqualified: lands in public only if search_path was reset after 001.
        ("002_timeout.sql", "CREATE TABLE plain (x int);\nSET statement_timeout = '200ms';\nSET ROLE pg_read_all_data;\n"),
        ("003_slow.sql", "SELECT pg_sleep(0.6);\nCREATE TABLE after_timeout (x int);\n"),
        ("004_temp.sql", "-- +goose Up\nCREATE TEMP TABLE scratch (x int);\nSELECT set_config('search_path', 'pg_catalog', false);\n"),
        ("005_again.sql", "-- +goose Up\nCREATE TEMP TABLE scratch (x int);\nCREATE TABLE last (x int);\n"),
    ]);
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("Applied "))
            .count(),
        5,
        "{}",
        r.stdout
    );
    assert_eq!(ledger_versions(&db), "1,2,3,4,5");
    for t in [
        "public.dumped",
        "public.plain",
        "public.after_timeout",
        "public.last",
    ] {
        assert!(exists(&db, t), "{t} missing");
    }
    assert_eq!(db.scalar("SELECT public.answer()"), "42");
    // Nothing went into pg_catalog while search_path pointed there.
    assert!(!exists(&db, "pg_catalog.last"));
    // A second run finds the ledger and applies nothing.
    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""), "{}", r.stderr);
}

#[test]
fn ledger_in_a_schema_of_the_connection_search_path_is_used_qualified() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_schema");
    psql_ok(&db.url, "CREATE SCHEMA app");
    let url = format!("{}?options=-csearch_path%3Dapp", db.url);
    let dir = dir_with(&[
        (
            "001_a.sql",
            "SELECT set_config('search_path', '', false);\nCREATE TABLE app.a (x int);\n",
        ),
        ("002_b.sql", "CREATE TABLE b (x int);\n"),
    ]);
    let r = migrate(dir.path(), &url, &["up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        db.scalar(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM app._sqlx_migrations"
        ),
        "1,2"
    );
    // The URL's search_path came back after 001 emptied it.
    assert!(exists(&db, "app.b"));
    assert!(!exists(&db, "public._sqlx_migrations"));
}

#[test]
fn goose_migrated_database_without_the_goose_ledger_is_refused_and_nothing_created() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_goosehint");
    let dir = dir_with(&[
        (
            "001_a.sql",
            "-- +goose Up\nCREATE TABLE a (x int);\n-- +goose Down\nDROP TABLE a;\n",
        ),
        (
            "002_b.sql",
            "-- +goose Up\nCREATE TABLE b (x int);\n-- +goose Down\nDROP TABLE b;\n",
        ),
    ]);
    let r = migrate(
        dir.path(),
        &db.url,
        &["--ledger", "goose", "up", "--to", "1"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    for args in [&["up"][..], &["status"], &["up", "--dry-run"], &["down"]] {
        let r = migrate(dir.path(), &db.url, args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("this database was migrated with goose")
                && r.stderr
                    .contains("Pass --ledger goose (MIGRATE_LEDGER=goose)"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            !exists(&db, "_sqlx_migrations"),
            "{args:?} created the sqlx ledger"
        );
        assert!(!exists(&db, "b"), "{args:?} applied 002");
    }
    let r = migrate(dir.path(), &db.url, &["--ledger", "goose", "up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Applied 002_b.sql"), "{}", r.stdout);
    assert!(!exists(&db, "_sqlx_migrations"));
}

#[test]
fn files_that_look_like_migrations_but_cannot_be_read_are_errors_naming_them() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_names");
    let dir = dir_with(&[
        ("001_ok.sql", "CREATE TABLE ok (x int);\n"),
        ("003_shout.SQL", "CREATE TABLE shout (x int);\n"),
        ("04-init.sql", "CREATE TABLE init (x int);\n"),
        ("000_zero.sql", "SELECT 1;\n"),
        ("README.md", "notes"),
        ("seed.sql", "INSERT INTO nothing VALUES (1);\n"),
    ]);
    let latin1 = std::ffi::OsStr::from_bytes(b"002_caf\xe9.sql");
    std::fs::write(dir.path().join(latin1), "CREATE TABLE cafe (x int);\n").unwrap();
    std::os::unix::fs::symlink("/nonexistent/005.sql", dir.path().join("005_gone.sql")).unwrap();
    std::fs::create_dir(dir.path().join("006_folder.sql")).unwrap();

    let r = migrate(dir.path(), &db.url, &["up"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("5 problems in the migration files (nothing was run)"),
        "{e}"
    );
    assert!(
        e.contains("002_caf\\xe9.sql: the file name is not valid UTF-8"),
        "{e}"
    );
    assert!(
        e.contains("003_shout.SQL: ends in `.SQL`: migration files end in lowercase `.sql`"),
        "{e}"
    );
    assert!(
        e.contains("04-init.sql: looks like a migration but no `_` after the version"),
        "{e}"
    );
    assert!(
        e.contains("000_zero.sql: looks like a migration but version 0 is reserved"),
        "{e}"
    );
    assert!(
        e.contains("005_gone.sql: is a symbolic link to a missing file"),
        "{e}"
    );
    for ignored in ["README", "seed.sql", "006_folder"] {
        assert!(!e.contains(ignored), "{ignored}: {e}");
    }
    // Nothing ran, not even the valid neighbour, and no ledger was created.
    assert!(!exists(&db, "ok"));
    assert!(!exists(&db, "_sqlx_migrations"));

    // --json: one document with the error.
    let r = migrate(dir.path(), &db.url, &["up", "--json"]);
    assert_eq!(r.code, 1);
    let v = json_doc(&r);
    assert_eq!(v["results"].as_array().unwrap().len(), 0);
    assert!(
        v["error"].as_str().unwrap().contains("003_shout.SQL"),
        "{v}"
    );
}

#[test]
fn mysql_urls_are_refused_as_an_unsupported_scheme() {
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let r = migrate(
        dir.path(),
        "mysql://root:hunter2@127.0.0.1:5432/app",
        &["up"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("unsupported database URL scheme `mysql://`")
            && r.stderr.contains("PostgreSQL only"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("hunter2"));
    assert!(!r.stderr.contains("password authentication"));
}

#[test]
fn redis_is_named_not_a_postgresql_server() {
    let Some(tb) = e2e_testbed::require(&["E2E_REDIS_URL"]) else {
        return;
    };
    let redis = url::Url::parse(tb.get("E2E_REDIS_URL")).unwrap();
    let (host, port) = (redis.host_str().unwrap(), redis.port().unwrap_or(6379));
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let url = format!("postgres://u:secret@{host}:{port}/db");
    for args in [&["status"][..], &["up", "--json"]] {
        let mut c = migrate_cmd(dir.path(), &url);
        c.args(["--connect-timeout", "1s"]).args(args);
        let r = run(c);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{host}:{port} accepts TCP connections"))
                && r.stderr.contains("not a PostgreSQL server"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("expected to read"), "{}", r.stderr);
        if args.contains(&"--json") {
            let v = json_doc(&r);
            assert!(v["error"]
                .as_str()
                .unwrap()
                .contains("not a PostgreSQL server"));
            assert_eq!(v["database"], format!("postgres://u:***@{host}:{port}/db"));
        }
    }
}

#[test]
fn fake_http_server_is_named_not_a_postgresql_server() {
    // Answers anything with an HTTP error at once, as most HTTP servers do.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let r = migrate(
        dir.path(),
        &format!("postgres://u:p@127.0.0.1:{port}/db"),
        &["up"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "127.0.0.1:{port} is not a PostgreSQL server (it answered `HTTP/1.1 400 Bad Request`)"
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("expected to read"), "{}", r.stderr);
}

#[test]
fn connect_failure_with_json_prints_one_document() {
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    for cmd in ["up", "down", "status", "verify"] {
        let r = migrate(
            dir.path(),
            "postgres://u:secret@127.0.0.1:1/db",
            &[cmd, "--json"],
        );
        assert_eq!(r.code, 1, "{cmd}: {}", r.stderr);
        let v = json_doc(&r);
        assert_eq!(v["command"], cmd);
        assert!(
            v["error"].as_str().unwrap().contains("connection refused"),
            "{v}"
        );
        assert!(!r.stdout.contains("secret"));
    }
}

const SLOW: &str = "SELECT pg_sleep(120);\nCREATE TABLE never (x int);\n";

fn interrupted_run(signal: &str, expected_code: i32) {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_sig");
    let dir = dir_with(&[
        ("001_a.sql", "CREATE TABLE a (x int);\n"),
        ("002_slow.sql", SLOW),
        ("003_c.sql", "CREATE TABLE c (x int);\n"),
    ]);
    let mut c = migrate_cmd(dir.path(), &db.url);
    c.args(["up", "--json"]);
    let child = spawn(c);
    wait_for_query(&db, "pg_sleep(120)");
    kill(&child, signal);
    let r = finish(child);
    assert_eq!(r.code, expected_code, "{}", r.stderr);
    let e = &r.stderr;
    assert!(e.contains(&format!("SIG{signal}: stopping")), "{e}");
    assert!(
        e.contains("interrupted: 002_slow.sql's running statement was cancelled and it was rolled back: nothing of it was applied and it is not in the ledger"),
        "{e}"
    );
    assert!(
        e.contains("1 migration applied before it stays applied: 001_a.sql"),
        "{e}"
    );
    assert!(e.contains("the migration lock is released"), "{e}");
    // The statement no longer runs on the server, the lock is free, the ledger is exact.
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()"
        ),
        "0"
    );
    assert_eq!(advisory_locks(&db), "0");
    assert_eq!(ledger_versions(&db), "1");
    assert!(exists(&db, "a") && !exists(&db, "never") && !exists(&db, "c"));
    let v = json_doc(&r);
    let statuses: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "cancelled"]);
    // The next run does not wait for anything.
    std::fs::write(
        dir.path().join("002_slow.sql"),
        "CREATE TABLE never (x int);\n",
    )
    .unwrap();
    let r = migrate(dir.path(), &db.url, &["--lock-timeout", "1s", "up"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ledger_versions(&db), "1,2,3");
}

#[test]
fn ctrl_c_cancels_the_running_statement_rolls_back_releases_the_lock_and_exits_130() {
    interrupted_run("INT", 130);
}

#[test]
fn sigterm_does_the_same_and_exits_143() {
    interrupted_run("TERM", 143);
}

#[test]
fn interrupt_in_a_no_transaction_migration_says_what_stays() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_signotx");
    let dir = dir_with(&[(
        "001_concurrently.sql",
        "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE early (x int);\nSELECT pg_sleep(120);\nCREATE TABLE late (x int);\n",
    )]);
    let child = spawn({
        let mut c = migrate_cmd(dir.path(), &db.url);
        c.arg("up");
        c
    });
    wait_for_query(&db, "pg_sleep(120)");
    kill(&child, "INT");
    let r = finish(child);
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(
        r.stderr.contains("the statement at line 4 of 001_concurrently.sql was cancelled; it runs outside a transaction (NO TRANSACTION), so its earlier statements stay, and it is not recorded"),
        "{}",
        r.stderr
    );
    assert!(exists(&db, "early") && !exists(&db, "late"));
    assert_eq!(ledger_versions(&db), "");
    assert_eq!(advisory_locks(&db), "0");
}

#[test]
fn ctrl_c_while_waiting_for_the_lock_changes_nothing() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_sigwait");
    // Another session holds goose's lock (a constant id) for the whole test.
    let mut holder = Command::new("psql")
        .args(["-X", "-q", "-d", &db.url, "-c"])
        .arg("SELECT pg_advisory_lock(4097083626), pg_sleep(120)")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_query(&db, "pg_advisory_lock(4097083626)");
    let dir = dir_with(&[("001_a.sql", "CREATE TABLE a (x int);\n")]);
    let child = spawn({
        let mut c = migrate_cmd(dir.path(), &db.url);
        c.args(["--ledger", "goose", "up"]);
        c
    });
    let until = Instant::now() + Duration::from_secs(30);
    while db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'migrate'",
    ) == "0"
    {
        assert!(Instant::now() < until, "migrate never connected");
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&child, "INT");
    let r = finish(child);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(
        r.stderr.contains("interrupted: stopped while waiting for the migration lock, before anything ran; nothing was applied before it"),
        "{}",
        r.stderr
    );
    assert!(!exists(&db, "goose_db_version") && !exists(&db, "a"));
}

#[test]
fn sigkill_mid_statement_the_server_stops_it_and_drops_the_lock() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_kill9");
    let dir = dir_with(&[
        ("001_a.sql", "CREATE TABLE a (x int);\n"),
        ("002_slow.sql", SLOW),
    ]);
    let child = spawn({
        let mut c = migrate_cmd(dir.path(), &db.url);
        c.arg("up");
        c
    });
    wait_for_query(&db, "pg_sleep(120)");
    kill(&child, "KILL");
    let r = finish(child);
    assert_eq!(r.code, -1, "killed by a signal: {}", r.stderr);
    // Well before the 120 s statement would end, the server notices the client is gone.
    wait_for_no_sessions(&db);
    assert_eq!(advisory_locks(&db), "0");
    assert_eq!(ledger_versions(&db), "1");
    assert!(!exists(&db, "never"));
    let r = migrate(dir.path(), &db.url, &["--lock-timeout", "1s", "status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn terminated_backend_is_not_blamed_on_the_file() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_term");
    let dir = dir_with(&[
        ("001_a.sql", "CREATE TABLE a (x int);\n"),
        ("002_slow.sql", SLOW),
    ]);
    let child = spawn({
        let mut c = migrate_cmd(dir.path(), &db.url);
        c.arg("up");
        c
    });
    let pid = wait_for_query(&db, "pg_sleep(120)");
    psql_ok(&admin, &format!("SELECT pg_terminate_backend({pid})"));
    let r = finish(child);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("002_slow.sql: connection to the database lost while it was running"),
        "{e}"
    );
    assert!(
        e.contains("ERROR 57P01: terminating connection due to administrator command"),
        "{e}"
    );
    assert!(e.contains("This is not a problem with the file"), "{e}");
    assert!(e.contains("Rolled back by the server"), "{e}");
    assert!(!e.contains("Fix the file"), "{e}");
    wait_for_no_sessions(&db);
    assert_eq!(ledger_versions(&db), "1");
    assert!(!exists(&db, "never"));
    assert_eq!(advisory_locks(&db), "0");
}

/// A TCP proxy to PostgreSQL that relays everything until the client sends the simple query
/// `COMMIT`: it passes that message on to the server and then cuts the client off, so the
/// server commits but the client never hears the answer. (A real network cannot be made to
/// fail at exactly that byte.)
fn fake_proxy_cutting_after_commit(upstream: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in l.incoming().flatten() {
            let server = TcpStream::connect(&upstream).unwrap();
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            // Server -> client: plain relay.
            std::thread::spawn(move || {
                let (mut from, mut to) = (s2, c2);
                let _ = std::io::copy(&mut from, &mut to);
            });
            std::thread::spawn(move || relay_until_commit(client, server));
        }
    });
    port
}

fn relay_until_commit(mut client: TcpStream, mut server: TcpStream) {
    let mut read_exact = |n: usize| -> Option<Vec<u8>> {
        let mut b = vec![0u8; n];
        client.read_exact(&mut b).ok().map(|_| b)
    };
    // Untyped start-up messages (SSLRequest, StartupMessage) until the protocol version.
    loop {
        let Some(len) = read_exact(4) else { return };
        let n = u32::from_be_bytes(len[..4].try_into().unwrap()) as usize;
        let Some(body) = read_exact(n - 4) else {
            return;
        };
        let _ = server.write_all(&len);
        let _ = server.write_all(&body);
        if body[..4] == [0, 3, 0, 0] {
            break;
        }
    }
    loop {
        let Some(head) = read_exact(5) else { return };
        let n = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let Some(body) = read_exact(n - 4) else {
            return;
        };
        let _ = server.write_all(&head);
        let _ = server.write_all(&body);
        if head[0] == b'Q' && body.eq_ignore_ascii_case(b"COMMIT\0") {
            let _ = client.shutdown(std::net::Shutdown::Both);
            // The server has the whole COMMIT before it sees the connection end.
            std::thread::sleep(Duration::from_millis(500));
            let _ = server.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

#[test]
fn fake_proxy_cut_after_commit_says_outcome_unknown_and_status_tells() {
    let Some(admin) = admin_url() else { return };
    let db = Db::create(&admin, "mig_cut");
    let u = url::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap_or(5432));
    let port = fake_proxy_cutting_after_commit(upstream);
    let mut via = u.clone();
    via.set_port(Some(port)).unwrap();
    via.set_host(Some("127.0.0.1")).unwrap();
    let dir = dir_with(&[
        ("001_a.sql", "CREATE TABLE a (x int);\n"),
        ("002_b.sql", "CREATE TABLE b (x int);\n"),
    ]);
    let r = migrate(dir.path(), via.as_str(), &["up", "--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("001_a.sql: the connection was lost after COMMIT was sent")
            && e.contains("so the outcome is unknown")
            && e.contains("Run `migrate status`"),
        "{e}"
    );
    assert!(!e.contains("expected to read"), "{e}");
    assert!(!e.contains("Fix the file"), "{e}");
    let v = json_doc(&r);
    assert_eq!(v["results"][0]["name"], "001_a.sql");
    assert_eq!(v["results"][0]["status"], "unknown");
    // It did commit, with its ledger row; 002 never started; nothing holds the lock.
    wait_for_no_sessions(&db);
    assert_eq!(ledger_versions(&db), "1");
    assert!(exists(&db, "a") && !exists(&db, "b"));
    assert_eq!(advisory_locks(&db), "0");
    let r = migrate(dir.path(), &db.url, &["status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("001_a.sql") && l.contains("applied")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("002_b.sql") && l.contains("pending")),
        "{}",
        r.stdout
    );
}

//! The binary's exit codes and messages for the usual mistakes: each is one clear line, the
//! password never shows, and malformed files are reported before any connection is made.

mod common;

use common::*;
use std::time::{Duration, Instant};

const SECRET: &str = "s3cr3t-pw";

fn url_to(port: u16) -> String {
    format!("postgres://app:{SECRET}@127.0.0.1:{port}/appdb")
}

fn one_line(r: &Run) -> &str {
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got: {}",
        r.stderr
    );
    lines[0]
}

#[test]
fn help_shows_examples_env_vars_and_exit_codes() {
    let r = run({
        let mut c = std::process::Command::new(bin());
        c.arg("--help");
        c
    });
    assert_eq!(r.code, 0);
    for needle in [
        "Examples:",
        "migrate up",
        "migrate down --steps 3",
        "[env: MIGRATE_DIR=",
        "[env: E2E_DATABASE_URL",
        "[env: MIGRATE_LEDGER=",
        "[env: MIGRATE_LOCK_TIMEOUT=",
        "[env: MIGRATE_ALLOW_OUT_OF_ORDER=",
        "[env: MIGRATE_IGNORE_CHECKSUM=",
        "Exit codes:",
    ] {
        assert!(
            r.stdout.contains(needle),
            "--help lacks {needle:?}:\n{}",
            r.stdout
        );
    }
    let r = run({
        let mut c = std::process::Command::new(bin());
        c.args(["down", "--help"]);
        c
    });
    assert!(r.stdout.contains("[env: MIGRATE_STEPS="));
}

#[test]
fn no_database_url_is_a_usage_error() {
    let mut c = std::process::Command::new(bin());
    c.env_remove("DATABASE_URL")
        .env_remove("E2E_DATABASE_URL")
        .args(["--dir"])
        .arg(corpus())
        .arg("status");
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(one_line(&r).contains("DATABASE_URL"));
}

#[test]
fn missing_and_empty_directories_are_usage_errors() {
    let r = migrate(
        std::path::Path::new("/nonexistent/migrations"),
        &url_to(1),
        &["up"],
    );
    assert_eq!(r.code, 2);
    assert!(
        one_line(&r).contains("`/nonexistent/migrations` does not exist"),
        "{}",
        r.stderr
    );

    let empty = dir_with(&[("README.md", "# nothing\n"), ("seed.sql", "SELECT 1;\n")]);
    let r = migrate(empty.path(), &url_to(1), &["up"]);
    assert_eq!(r.code, 2);
    assert!(one_line(&r).contains("holds no migrations"), "{}", r.stderr);
}

#[test]
fn invalid_url_is_a_usage_error_without_the_password() {
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let r = migrate(
        dir.path(),
        &format!("postgres://app:{SECRET}@127.0.0.1:5432/db?sslmode=sometimes"),
        &["up"],
    );
    assert_eq!(r.code, 2);
    let line = one_line(&r);
    assert!(line.contains("invalid database URL"), "{line}");
    assert!(!r.stderr.contains(SECRET) && !r.stdout.contains(SECRET));
}

#[test]
fn unreachable_database_fails_fast_in_one_line_with_the_password_masked() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let t = Instant::now();
    let r = migrate(dir.path(), &url_to(port), &["up"]);
    assert_eq!(r.code, 1);
    let line = one_line(&r);
    assert!(line.contains("connection refused"), "{line}");
    assert!(
        line.contains(&format!("postgres://app:***@127.0.0.1:{port}/appdb")),
        "{line}"
    );
    assert!(!r.stderr.contains(SECRET));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts TCP connections and never says a word.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(2) {
            held.push(s);
            std::thread::sleep(Duration::from_secs(3));
        }
    });
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let mut c = migrate_cmd(dir.path(), &url_to(port));
    c.env("MIGRATE_CONNECT_TIMEOUT", "500ms").arg("status");
    let t = Instant::now();
    let r = run(c);
    assert_eq!(r.code, 1);
    let line = one_line(&r);
    assert!(line.contains("no answer within 500ms"), "{line}");
    assert!(
        line.contains(&format!(
            "127.0.0.1:{port} accepts TCP connections but does not answer the PostgreSQL handshake, so it is not a PostgreSQL server"
        )),
        "{line}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn wrong_password_is_one_line_and_masked() {
    let Some(admin) = admin_url() else { return };
    let mut u = url::Url::parse(&admin).unwrap();
    u.set_password(Some(SECRET)).unwrap();
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let r = migrate(dir.path(), u.as_str(), &["status"]);
    assert_eq!(r.code, 1);
    let line = one_line(&r);
    assert!(line.contains("password authentication failed"), "{line}");
    assert!(line.contains(":***@"), "{line}");
    assert!(!r.stderr.contains(SECRET));

    u.set_password(url::Url::parse(&admin).unwrap().password())
        .unwrap();
    u.set_path("/no_such_database_for_migrate");
    let r = migrate(dir.path(), u.as_str(), &["status"]);
    assert_eq!(r.code, 1);
    assert!(
        one_line(&r).contains("database `no_such_database_for_migrate` does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn every_format_error_is_reported_before_connecting() {
    let dir = dir_with(&[
        (
            "001_ok.sql",
            "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n",
        ),
        (
            "002_down_first.sql",
            "-- +goose Down\nSELECT 1;\n-- +goose Up\nSELECT 2;\n",
        ),
        (
            "003_unknown.sql",
            "-- +goose Up\n-- +goose Sideways\nSELECT 1;\n",
        ),
        (
            "004_no_end.sql",
            "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
        ),
        ("005_string.sql", "-- +goose Up\nSELECT 1;\nSELECT 'oops;\n"),
        ("2_dup.sql", "SELECT 1;\n"),
        ("01-typo.sql", "SELECT 1;\n"),
    ]);
    std::fs::create_dir(dir.path().join("v0-archived")).unwrap();
    std::fs::write(dir.path().join("v0-archived/001_old.sql"), "garbage").unwrap();
    // Port 1: were it contacted, the error would be "connection refused" instead.
    let r = migrate(dir.path(), &url_to(1), &["up"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let e = &r.stderr;
    assert!(
        e.contains("problems in the migration files (nothing was run)"),
        "{e}"
    );
    assert!(
        e.contains("002_down_first.sql:1: `-- +goose Down` before `-- +goose Up`"),
        "{e}"
    );
    assert!(
        e.contains("003_unknown.sql:2: unknown goose annotation `Sideways`"),
        "{e}"
    );
    assert!(
        e.contains("004_no_end.sql:2: `-- +goose StatementBegin` has no matching"),
        "{e}"
    );
    assert!(
        e.contains("005_string.sql:3: string starting here is never closed"),
        "{e}"
    );
    assert!(
        e.contains("version 2 is used by two files: `002_down_first.sql` and `2_dup.sql`"),
        "{e}"
    );
    assert!(
        e.contains("01-typo.sql: looks like a migration but no `_` after the version"),
        "{e}"
    );
    assert!(!e.contains("connection refused"));
    assert!(!e.contains("001_old"));
}

#[test]
fn flags_read_their_environment_variables() {
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let mut c = std::process::Command::new(bin());
    c.env("MIGRATE_DIR", dir.path())
        .env_remove("E2E_DATABASE_URL")
        .env("DATABASE_URL", url_to(1))
        .env("MIGRATE_LEDGER", "goose")
        .env("MIGRATE_JSON", "1")
        .arg("status");
    let r = run(c);
    // Reached the connection step with our dir and URL.
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
    let mut c = std::process::Command::new(bin());
    c.env("MIGRATE_LEDGER", "mongo").arg("status");
    assert_eq!(run(c).code, 2);
}

#[test]
fn boolean_variables_take_every_spelling_and_durations_one_syntax() {
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    for (word, timeout) in [("1", "1h30m"), ("yes", "5"), ("ON", "7d"), ("no", "90s")] {
        let mut c = migrate_cmd(dir.path(), &url_to(1));
        c.env("MIGRATE_JSON", word)
            .env("MIGRATE_QUIET", word)
            .env("MIGRATE_VERBOSE", word)
            .env("MIGRATE_IGNORE_MISSING", word)
            .env("MIGRATE_LOCK_TIMEOUT", timeout)
            .env("MIGRATE_CONNECT_TIMEOUT", "1")
            .arg("status");
        let r = run(c);
        // Exit 1 (nothing listens on port 1), not 2 (a value refused).
        assert_eq!(r.code, 1, "{word} {timeout}: {}", r.stderr);
    }
}

#[test]
fn old_names_still_work_with_a_warning() {
    let dir = dir_with(&[("001_a.sql", "SELECT 1;\n")]);
    let mut c = std::process::Command::new(bin());
    c.env_remove("MIGRATE_DIR")
        .env_remove("E2E_DATABASE_URL")
        .env("MIGRATIONS_DIR", dir.path())
        .env("DATABASE_URL", url_to(1))
        .args(["--connect-timeout", "1", "verify", "-t", "x"]);
    let r = run(c);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "migrate: warning: environment variable MIGRATIONS_DIR is deprecated; use MIGRATE_DIR"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("migrate: warning: -t is deprecated; use --table"),
        "{}",
        r.stderr
    );
    // DATABASE_URL is honoured, not deprecated.
    assert!(
        !r.stderr.contains("DATABASE_URL is deprecated"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);
}

#[test]
fn clap_errors_carry_the_tool_name_and_exit_2() {
    let mut c = std::process::Command::new(bin());
    c.args(["--lock-timeout", "soon", "status"]);
    let r = run(c);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with("migrate: error: invalid value 'soon'"),
        "{}",
        r.stderr
    );
}

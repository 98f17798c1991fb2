//! Helpers for the integration tests: a throwaway database per test, the real binary, psql.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The testbed's superuser URL, or None (a loud skip, or a failure when E2E_REQUIRE=1).
pub fn admin_url() -> Option<String> {
    let tb = e2e_testbed::require(&["E2E_DATABASE_URL"])?;
    Some(tb.get("E2E_DATABASE_URL").to_string())
}

/// A database created for one test and dropped when it goes out of scope.
pub struct Db {
    pub admin: String,
    pub name: String,
    pub url: String,
}

impl Db {
    pub fn create(admin: &str, prefix: &str) -> Db {
        let name = e2e_testbed::unique_name(prefix).replace('-', "_");
        psql_ok(admin, &format!("CREATE DATABASE \"{name}\""));
        let url = with_database(admin, &name);
        Db {
            admin: admin.to_string(),
            name,
            url,
        }
    }

    /// One value (first column of the first row) of `sql`, as psql prints it.
    pub fn scalar(&self, sql: &str) -> String {
        psql_ok(&self.url, sql).trim().to_string()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// `url` with its database replaced.
pub fn with_database(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("E2E_DATABASE_URL parses");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

pub fn psql(url: &str, sql: &str) -> Output {
    Command::new("psql")
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs")
}

pub fn psql_ok(url: &str, sql: &str) -> String {
    let out = psql(url, sql);
    assert!(
        out.status.success(),
        "psql failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a file with psql (`-1` = in one transaction).
pub fn psql_file(url: &str, file: &Path, single_tx: bool) -> Output {
    let mut c = Command::new("psql");
    c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]);
    if single_tx {
        c.arg("-1");
    }
    c.arg("-f").arg(file).output().expect("psql runs")
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_migrate"))
}

/// The real binary, with a clean environment for our variables.
pub fn migrate_cmd(dir: &Path, url: &str) -> Command {
    let mut c = Command::new(bin());
    for k in [
        "DATABASE_URL",
        "E2E_DATABASE_URL",
        "MIGRATIONS_DIR",
        "MIGRATE_DIR",
        "MIGRATE_LEDGER",
        "MIGRATE_JSON",
        "MIGRATE_LOCK_TIMEOUT",
        "MIGRATE_ALLOW_OUT_OF_ORDER",
        "MIGRATE_IGNORE_CHECKSUM",
        "MIGRATE_IGNORE_MISSING",
        "MIGRATE_DRY_RUN",
    ] {
        c.env_remove(k);
    }
    c.arg("--dir").arg(dir).arg("--database-url").arg(url);
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(mut c: Command) -> Run {
    let out = c.output().expect("migrate runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn migrate(dir: &Path, url: &str, args: &[&str]) -> Run {
    let mut c = migrate_cmd(dir, url);
    c.args(args);
    run(c)
}

pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// A temporary migration directory with the given files.
pub fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).expect("write migration");
    }
    d
}

/// `pg_dump --schema-only` of `url` without the ledger tables and without lines that differ
/// between two databases for reasons unrelated to the schema.
pub fn schema_dump(url: &str) -> String {
    let out = Command::new("pg_dump")
        .args([
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=_sqlx_migrations",
            "--exclude-table=goose_db_version",
            "-d",
            url,
        ])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .filter(|l| !l.starts_with("-- Dumped"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Up section of a goose file, cut by a plain text rule (independent of migrate's parser):
/// everything before the line `-- +goose Down`.
pub fn up_section(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim().eq_ignore_ascii_case("-- +goose down") {
            break;
        }
        out.push_str(line);
    }
    out
}

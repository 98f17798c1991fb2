//! The commands: load and validate the directory, connect, run, print.

use crate::cli::{Cli, Command, Global};
use crate::error::Error;
use crate::migrator::{self, Applied, DownTarget, Event, Migrator, Observer, Options, State};
use crate::source::MigrationSet;
use e2e_core::report::{Reporter, Verbosity};
use e2e_core::CliError;
use serde_json::json;
use sqlx::PgConnection;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs one command; results on stdout, people-facing lines on stderr.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let g = &cli.global;
    let rep = Reporter::new("migrate", Verbosity::from_flags(g.quiet, g.verbose));
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "migrate", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man { out_dir } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            return e2e_core::clidoc::write_man_pages(cmd, out_dir, &mut std::io::stdout());
        }
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(run_async(&cli, &rep)).map_err(|e| {
        if let Some(json) = e.1 {
            print_json(&json);
        }
        CliError {
            code: e.0.exit_code(),
            message: e.0.to_string(),
        }
    })
}

/// An error, plus the JSON document to print when --json is on.
type Failed = (Error, Option<serde_json::Value>);

fn options(g: &Global) -> Options {
    Options {
        ledger: g.ledger.into(),
        lock_timeout: g.lock_timeout,
        allow_out_of_order: g.allow_out_of_order,
        ignore_checksum: g.ignore_checksum,
        ignore_missing: g.ignore_missing,
    }
}

fn load(g: &Global, rep: &Reporter) -> Result<MigrationSet, Error> {
    let set = MigrationSet::load(&g.dir)?;
    for w in &set.warnings {
        rep.warn(w);
    }
    rep.detail(format!(
        "{} migrations in {} (versions {}..={})",
        set.migrations.len(),
        g.dir.display(),
        set.migrations.first().map_or(0, |m| m.version),
        set.migrations.last().map_or(0, |m| m.version)
    ));
    Ok(set)
}

async fn connect(g: &Global, rep: &Reporter) -> Result<PgConnection, Error> {
    let Some(url) = g.database_url.as_deref().filter(|u| !u.is_empty()) else {
        return Err(Error::Config(
            "no database: pass --database-url postgres://USER:PASSWORD@HOST:PORT/DATABASE or set DATABASE_URL".into(),
        ));
    };
    rep.detail(format!("connecting to {}", crate::url::mask(url)));
    migrator::connect(url, g.connect_timeout).await
}

/// Prints events: applied migrations on stdout as they happen, the rest on stderr.
struct Printer {
    rep: Reporter,
    json: bool,
    /// Everything applied or reverted so far (for the JSON document of a failed run).
    done: Arc<Mutex<Vec<Applied>>>,
}

impl Observer for Printer {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::LockWait {
                pid,
                application,
                timeout,
            } => {
                let app = if application.is_empty() {
                    String::new()
                } else {
                    format!(" ({application})")
                };
                self.rep.info(format!(
                    "waiting for the migration lock held by pid {pid}{app} (giving up after {})",
                    fmt_duration(timeout)
                ));
            }
            Event::LockAcquired { waited } => self.rep.detail(format!(
                "got the migration lock after {} ms",
                waited.as_millis()
            )),
            Event::Applying(m) => self.rep.detail(format!(
                "applying {}{}",
                m.name,
                if m.no_tx { " (NO TRANSACTION)" } else { "" }
            )),
            Event::Reverting(m) => self.rep.detail(format!("reverting {}", m.name)),
            Event::Applied(a) => self.line("Applied", a),
            Event::Reverted(a) => self.line("Reverted", a),
            Event::Warning(w) => self.rep.warn(w),
        }
    }
}

impl Printer {
    fn line(&self, verb: &str, a: &Applied) {
        if let Ok(mut d) = self.done.lock() {
            d.push(a.clone());
        }
        if self.json {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{verb} {} ({} ms)", a.name, a.duration.as_millis());
        let _ = out.flush();
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.as_secs() >= 1 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn print_json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
}

fn print(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
}

async fn run_async(cli: &Cli, rep: &Reporter) -> Result<(), Failed> {
    let g = &cli.global;
    let plain = |e: Error| (e, None);
    match &cli.command {
        Command::Up { to, dry_run } => {
            let set = load(g, rep).map_err(plain)?;
            let total = set.migrations.len();
            let mut conn = connect(g, rep).await.map_err(plain)?;
            let (m, done) = migrator(set, g, rep);
            if *dry_run {
                let plan = m.plan_up(&mut conn, *to).await.map_err(plain)?;
                return dry(g, rep, "apply", &plan);
            }
            let url = crate::url::mask(g.database_url.as_deref().unwrap_or(""));
            match m.up(&mut conn, *to).await {
                Ok(applied) => {
                    if g.json {
                        print_json(&json!({"database": url, "applied": applied}));
                    }
                    if applied.is_empty() {
                        rep.info(format!("nothing to apply: the database is up to date ({total} migrations in {})", g.dir.display()));
                    } else {
                        let ms: u128 = applied.iter().map(|a| a.duration.as_millis()).sum();
                        rep.info(format!("applied {} migration(s) in {ms} ms", applied.len()));
                    }
                    Ok(())
                }
                Err(e) => {
                    let doc = g.json.then(|| error_json(&url, "applied", &e, &done));
                    Err((e, doc))
                }
            }
        }
        Command::Down { to, steps, dry_run } => {
            let target = match (to, steps) {
                (Some(n), _) => DownTarget::To(*n),
                (None, Some(k)) => DownTarget::Steps(*k),
                (None, None) => DownTarget::Steps(1),
            };
            let set = load(g, rep).map_err(plain)?;
            let mut conn = connect(g, rep).await.map_err(plain)?;
            let (m, done) = migrator(set, g, rep);
            if *dry_run {
                let plan = m.plan_down(&mut conn, target).await.map_err(plain)?;
                return dry(g, rep, "revert", &plan);
            }
            let url = crate::url::mask(g.database_url.as_deref().unwrap_or(""));
            match m.down(&mut conn, target).await {
                Ok(reverted) => {
                    if g.json {
                        print_json(&json!({"database": url, "reverted": reverted}));
                    }
                    if reverted.is_empty() {
                        rep.info("nothing to revert");
                    }
                    Ok(())
                }
                Err(e) => {
                    let doc = g.json.then(|| error_json(&url, "reverted", &e, &done));
                    Err((e, doc))
                }
            }
        }
        Command::Status => {
            let set = load(g, rep).map_err(plain)?;
            let mut conn = connect(g, rep).await.map_err(plain)?;
            let (m, _) = migrator(set, g, rep);
            let rows = m.status(&mut conn).await.map_err(plain)?;
            if g.json {
                print_json(&serde_json::to_value(&rows).unwrap_or_default());
                return Ok(());
            }
            let width = rows
                .iter()
                .map(|r| r.name.as_deref().map_or(8, str::len))
                .max()
                .unwrap_or(0);
            let lines: Vec<String> = rows
                .iter()
                .map(|r| {
                    let name = r
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{:03} ({})", r.version, r.description));
                    let state = match (r.state, r.out_of_order) {
                        (State::Pending, true) => "pending (out of order)".to_string(),
                        (s, _) => serde_json::to_value(s)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    };
                    let when = match (&r.applied_at, r.execution_ms) {
                        (Some(at), Some(ms)) => format!("  {at}  ({ms:.0} ms)"),
                        (Some(at), None) => format!("  {at}"),
                        _ => String::new(),
                    };
                    format!("{name:<width$}  {state:<8}{when}")
                        .trim_end()
                        .to_string()
                })
                .collect();
            print(&lines);
            let count = |s: State| rows.iter().filter(|r| r.state == s).count();
            rep.info(format!(
                "{} applied, {} pending, {} modified, {} missing",
                count(State::Applied),
                count(State::Pending),
                count(State::Modified),
                count(State::Missing)
            ));
            Ok(())
        }
        Command::Verify {
            tables,
            tables_only,
        } => verify(g, rep, tables, *tables_only).await.map_err(plain),
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
    }
}

fn migrator(set: MigrationSet, g: &Global, rep: &Reporter) -> (Migrator, Arc<Mutex<Vec<Applied>>>) {
    let done = Arc::new(Mutex::new(Vec::new()));
    let m = Migrator::new(set, options(g)).with_observer(Box::new(Printer {
        rep: rep.clone(),
        json: g.json,
        done: done.clone(),
    }));
    (m, done)
}

fn error_json(url: &str, key: &str, e: &Error, done: &Mutex<Vec<Applied>>) -> serde_json::Value {
    let applied: Vec<Applied> = done.lock().map(|d| d.clone()).unwrap_or_default();
    let err = match e {
        Error::Statement(s) => serde_json::to_value(s).unwrap_or_default(),
        other => json!({ "message": other.to_string() }),
    };
    json!({"database": url, key: applied, "error": err})
}

fn dry(g: &Global, rep: &Reporter, verb: &str, plan: &[migrator::Planned]) -> Result<(), Failed> {
    if g.json {
        print_json(&json!({ "dry_run": true, "would": verb, "migrations": plan }));
    } else {
        let lines: Vec<String> = plan
            .iter()
            .map(|p| {
                format!(
                    "Would {verb} {} ({}, {} statement{})",
                    p.name,
                    if p.no_transaction {
                        "NO TRANSACTION"
                    } else {
                        "one transaction"
                    },
                    p.statements,
                    if p.statements == 1 { "" } else { "s" }
                )
            })
            .collect();
        print(&lines);
    }
    if plan.is_empty() {
        rep.info(format!("dry run: nothing to {verb}"));
    } else {
        rep.info(format!(
            "dry run: {} migration(s) would {verb}; nothing was changed",
            plan.len()
        ));
    }
    Ok(())
}

async fn verify(
    g: &Global,
    rep: &Reporter,
    tables: &[String],
    tables_only: bool,
) -> Result<(), Error> {
    let set = if tables_only {
        None
    } else {
        Some(load(g, rep)?)
    };
    if tables_only && tables.is_empty() {
        return Err(Error::Config(
            "verify --tables-only needs at least one --table".into(),
        ));
    }
    let mut conn = connect(g, rep).await?;
    let mut problems = Vec::new();
    let mut results = Vec::new();
    for t in tables {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(t)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| Error::db(format!("checking table {t}"), &e))?;
        results.push(json!({"table": t, "exists": exists}));
        if !exists {
            problems.push(format!("table `{t}` does not exist"));
        }
    }
    let mut states = Vec::new();
    if let Some(set) = set {
        let (m, _) = migrator(set, g, rep);
        for r in m.status(&mut conn).await? {
            if r.state != State::Applied {
                let name = r
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("version {}", r.version));
                problems.push(format!(
                    "{name} is {}",
                    serde_json::to_value(r.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ));
            }
            states.push(r);
        }
    }
    if g.json {
        print_json(
            &json!({"ok": problems.is_empty(), "tables": results, "migrations": states, "problems": problems}),
        );
    } else {
        let mut lines: Vec<String> = tables
            .iter()
            .zip(&results)
            .filter(|(_, r)| r["exists"] == true)
            .map(|(t, _)| format!("ok table {t}"))
            .collect();
        if !tables_only && problems.is_empty() {
            lines.push(format!("ok {} migrations applied", states.len()));
        }
        print(&lines);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "verify failed: {}; run `migrate up` (or check --dir / --database-url)",
            problems.join("; ")
        )))
    }
}

//! The commands: load and validate the directory, connect, run, print.
//!
//! `--json` prints exactly one document on every outcome, failures included:
//! `{"tool": "migrate", "command": ..., "database": ..., "results": [{..., "status", "seconds"}],
//! "error": "..."}` (`error` only on failure, with `failure` holding a failed statement's fields).
//!
//! Ctrl-C and SIGTERM during `up`/`down` stop the run without leaving anything behind: no further
//! migration starts, the statement running on the server is cancelled from a second connection
//! (`pg_cancel_backend`), the migration's transaction is rolled back, the lock released, and the
//! message says what was rolled back and what stays. Exit 130 (SIGINT) or 143 (SIGTERM).

use crate::cli::{Cli, Command, Global};
use crate::error::Error;
use crate::migrator::{self, Applied, DownTarget, Event, Interrupt, Migrator, Observer, Options};
use crate::migrator::{State, StatusRow};
use crate::source::MigrationSet;
use e2e_core::report::{Reporter, Verbosity};
use e2e_core::CliError;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
/// How long a cancelled statement gets to stop before its session is terminated.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

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
    let mut doc = Doc::new(&cli);
    let outcome = rt.block_on(run_async(&cli, &rep, &mut doc));
    match outcome {
        Ok(()) => {
            if g.json {
                print_json(&doc.finish(None));
            }
            Ok(())
        }
        Err((e, signal)) => {
            if g.json {
                print_json(&doc.finish(Some(&e)));
            }
            let code = match (&e, signal) {
                (Error::Interrupted(_), Some(SIGTERM)) => 128 + SIGTERM as u8,
                _ => e.exit_code(),
            };
            Err(CliError {
                code,
                message: e.to_string(),
            })
        }
    }
}

/// The JSON document, filled in as the command goes.
struct Doc {
    command: &'static str,
    database: Option<String>,
    results: Vec<Value>,
    extra: serde_json::Map<String, Value>,
}

impl Doc {
    fn new(cli: &Cli) -> Doc {
        let command = match &cli.command {
            Command::Up { .. } => "up",
            Command::Down { .. } => "down",
            Command::Status => "status",
            Command::Verify { .. } => "verify",
            Command::Completions { .. } => "completions",
            Command::Man { .. } => "man",
        };
        Doc {
            command,
            database: cli
                .global
                .database_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(crate::url::mask),
            results: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    fn finish(&self, e: Option<&Error>) -> Value {
        let mut doc = json!({
            "tool": "migrate",
            "command": self.command,
            "database": self.database,
            "results": self.results,
        });
        let obj = doc.as_object_mut().expect("an object");
        obj.extend(self.extra.clone());
        if let Some(e) = e {
            obj.insert("error".into(), Value::String(e.to_string()));
            if let Error::Statement(s) = e {
                obj.insert(
                    "failure".into(),
                    serde_json::to_value(s).unwrap_or_default(),
                );
            }
        }
        doc
    }
}

/// An error, and the signal that caused it (if one did).
type Failed = (Error, Option<i32>);

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

fn database_url(g: &Global) -> Result<&str, Error> {
    g.database_url.as_deref().filter(|u| !u.is_empty()).ok_or_else(|| {
        Error::Config(
            "no database: pass --database-url postgres://USER:PASSWORD@HOST:PORT/DATABASE or set DATABASE_URL".into(),
        )
    })
}

/// Ctrl-C and SIGTERM, caught (None when they cannot be: they then end the process as usual).
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Option<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Some(Signals {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }
}

async fn next_signal(s: &mut Option<Signals>) -> i32 {
    match s {
        Some(s) => tokio::select! {
            _ = s.int.recv() => SIGINT,
            _ = s.term.recv() => SIGTERM,
        },
        None => std::future::pending().await,
    }
}

fn signal_name(n: i32) -> &'static str {
    if n == SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    }
}

/// Runs a read-only step; a signal abandons it (nothing to undo).
async fn read_only<T>(
    sig: &mut Option<Signals>,
    what: &str,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Failed> {
    tokio::select! {
        r = fut => r.map_err(|e| (e, None)),
        n = next_signal(sig) => Err((
            Error::Interrupted(format!("interrupted ({}) while {what}; nothing was changed", signal_name(n))),
            Some(n),
        )),
    }
}

/// Asks the server to stop what session `pid` is running (or to end the session), from a
/// second connection: sqlx has no cancel request, and the statement must not run on holding
/// the lock after we are gone.
async fn stop_backend(url: String, pid: i32, terminate: bool) -> Result<bool, String> {
    let mut c = migrator::connect(&url, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let sql = if terminate {
        "SELECT pg_catalog.pg_terminate_backend($1)"
    } else {
        "SELECT pg_catalog.pg_cancel_backend($1)"
    };
    let r = sqlx::query_scalar::<_, bool>(sql)
        .bind(pid)
        .fetch_one(&mut c)
        .await
        .map_err(|e| crate::error::describe_sqlx(&e));
    let _ = c.close().await;
    r
}

/// Runs `up` or `down`; a signal triggers `interrupt`, cancels the running statement from a
/// second connection and lets the run wind down (rollback, unlock). A second signal, or a
/// statement that ignores the cancel for [`CANCEL_GRACE`], terminates the session instead.
async fn guarded<T>(
    sig: &mut Option<Signals>,
    rep: &Reporter,
    interrupt: &Interrupt,
    url: &str,
    pid: i32,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Failed> {
    tokio::pin!(fut);
    let mut got: Option<i32> = None;
    let mut terminated = false;
    let grace = tokio::time::sleep(Duration::from_secs(86_400));
    tokio::pin!(grace);
    let stop = |terminate: bool| {
        let rep = rep.clone();
        let url = url.to_string();
        tokio::spawn(async move {
            if let Err(e) = stop_backend(url, pid, terminate).await {
                rep.warn(format!(
                    "could not {} the migration's session (pid {pid}) from a second connection: {e}",
                    if terminate { "terminate" } else { "cancel the statement of" }
                ));
            }
        });
    };
    loop {
        tokio::select! {
            r = &mut fut => return r.map_err(|e| (e, got)),
            n = next_signal(sig) => {
                if got.is_none() {
                    got = Some(n);
                    interrupt.trigger();
                    rep.always(format!(
                        "{}: stopping: cancelling the running statement and rolling back (again to end the session at once)",
                        signal_name(n)
                    ));
                    stop(false);
                    grace.as_mut().reset(tokio::time::Instant::now() + CANCEL_GRACE);
                } else if !terminated {
                    terminated = true;
                    rep.always(format!("{}: ending the database session", signal_name(n)));
                    stop(true);
                }
            }
            () = &mut grace, if got.is_some() => {
                if terminated {
                    // The server ends a terminated session promptly; if it has not, do not hang.
                    return Err((Error::Interrupted(format!(
                        "interrupted: the server has not stopped session {pid} in time; it may still run the migration and hold the lock. \
                         Check with SELECT pid, state, query FROM pg_stat_activity WHERE pid = {pid}; end it with SELECT pg_terminate_backend({pid})"
                    )), got));
                }
                terminated = true;
                rep.always(format!(
                    "the statement did not stop within {}s of the cancel; ending the database session",
                    CANCEL_GRACE.as_secs()
                ));
                stop(true);
                grace.as_mut().reset(tokio::time::Instant::now() + CANCEL_GRACE);
            }
        }
    }
}

/// Prints events: applied migrations on stdout as they happen, the rest on stderr; keeps the
/// JSON results.
struct Printer {
    rep: Reporter,
    json: bool,
    /// Results so far, and the migration running now (for a failed run's JSON).
    state: Arc<Mutex<Progress>>,
}

#[derive(Default)]
struct Progress {
    results: Vec<Value>,
    running: Option<(i64, String, bool, Instant)>,
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
            Event::Applying(m) | Event::Reverting(m) => {
                let verb = if matches!(e, Event::Applying(_)) {
                    "applying"
                } else {
                    "reverting"
                };
                self.rep.detail(format!(
                    "{verb} {}{}",
                    m.name,
                    if m.no_tx { " (NO TRANSACTION)" } else { "" }
                ));
                if let Ok(mut p) = self.state.lock() {
                    p.running = Some((m.version, m.name.clone(), m.no_tx, Instant::now()));
                }
            }
            Event::Applied(a) => self.line("Applied", "applied", a),
            Event::Reverted(a) => self.line("Reverted", "reverted", a),
            Event::Warning(w) => self.rep.warn(w),
        }
    }
}

impl Printer {
    fn line(&self, verb: &str, status: &str, a: &Applied) {
        if let Ok(mut p) = self.state.lock() {
            p.running = None;
            p.results.push(applied_json(a, status));
        }
        if self.json {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{verb} {} ({} ms)", a.name, a.duration.as_millis());
        let _ = out.flush();
    }
}

fn applied_json(a: &Applied, status: &str) -> Value {
    json!({
        "version": a.version,
        "name": a.name,
        "status": status,
        "seconds": secs(a.duration),
        "no_transaction": a.no_transaction,
    })
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e6
}

/// The results of a run that failed: what was done, and the migration that was running.
fn failed_results(state: &Mutex<Progress>, e: &Error) -> Vec<Value> {
    let Ok(p) = state.lock() else {
        return Vec::new();
    };
    let mut out = p.results.clone();
    if let Some((version, name, no_tx, started)) = &p.running {
        let status = match e {
            Error::Interrupted(_) => "cancelled",
            Error::Unknown(_) => "unknown",
            _ => "failed",
        };
        out.push(json!({
            "version": version,
            "name": name,
            "status": status,
            "seconds": secs(started.elapsed()),
            "no_transaction": no_tx,
        }));
    }
    out
}

fn fmt_duration(d: Duration) -> String {
    if d.as_secs() >= 1 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

fn print_json(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
}

fn print(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
}

fn state_name(s: State) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn status_json(r: &StatusRow) -> Value {
    json!({
        "version": r.version,
        "name": r.name,
        "description": r.description,
        "status": state_name(r.state),
        // The recorded execution time; 0 for a migration that has not run.
        "seconds": r.execution_ms.map_or(0.0, |ms| ms / 1e3),
        "applied_at": r.applied_at,
        "out_of_order": r.out_of_order,
        "no_transaction": r.no_transaction,
    })
}

async fn run_async(cli: &Cli, rep: &Reporter, doc: &mut Doc) -> Result<(), Failed> {
    let g = &cli.global;
    let plain = |e: Error| (e, None);
    let mut sig = Signals::new();
    let set = match &cli.command {
        Command::Verify { tables_only, .. } if *tables_only => None,
        _ => Some(load(g, rep).map_err(plain)?),
    };
    if let Command::Verify {
        tables,
        tables_only: true,
    } = &cli.command
    {
        if tables.is_empty() {
            return Err(plain(Error::Config(
                "verify --tables-only needs at least one --table".into(),
            )));
        }
    }
    let url = database_url(g).map_err(plain)?;
    rep.detail(format!("connecting to {}", crate::url::mask(url)));
    let mut conn = read_only(
        &mut sig,
        "connecting",
        migrator::connect(url, g.connect_timeout),
    )
    .await?;
    let result = command(cli, rep, doc, set, &mut conn, &mut sig, url).await;
    if result.as_ref().err().and_then(|e| e.1).is_none() {
        // Ends the session cleanly; after an interrupt the process exit does it.
        let _ = conn.close().await;
    }
    result
}

async fn command(
    cli: &Cli,
    rep: &Reporter,
    doc: &mut Doc,
    set: Option<MigrationSet>,
    conn: &mut PgConnection,
    sig: &mut Option<Signals>,
    url: &str,
) -> Result<(), Failed> {
    let g = &cli.global;
    let plain = |e: Error| (e, None);
    match &cli.command {
        Command::Up { to, dry_run } => {
            let set = set.expect("loaded");
            let total = set.migrations.len();
            let (m, state, interrupt) = migrator(set, g, rep);
            if *dry_run {
                let plan = read_only(sig, "planning", m.plan_up(conn, *to)).await?;
                return dry(doc, g, rep, "apply", &plan);
            }
            let pid = backend_pid(conn).await.map_err(plain)?;
            match guarded(sig, rep, &interrupt, url, pid, m.up(conn, *to)).await {
                Ok(applied) => {
                    doc.results = state.lock().map(|p| p.results.clone()).unwrap_or_default();
                    if applied.is_empty() {
                        rep.info(format!(
                            "nothing to apply: the database is up to date ({total} migrations in {})",
                            g.dir.display()
                        ));
                    } else {
                        let ms: u128 = applied.iter().map(|a| a.duration.as_millis()).sum();
                        rep.info(format!("applied {} migration(s) in {ms} ms", applied.len()));
                    }
                    Ok(())
                }
                Err(f) => {
                    doc.results = failed_results(&state, &f.0);
                    Err(f)
                }
            }
        }
        Command::Down { to, steps, dry_run } => {
            let target = match (to, steps) {
                (Some(n), _) => DownTarget::To(*n),
                (None, Some(k)) => DownTarget::Steps(*k),
                (None, None) => DownTarget::Steps(1),
            };
            let (m, state, interrupt) = migrator(set.expect("loaded"), g, rep);
            if *dry_run {
                let plan = read_only(sig, "planning", m.plan_down(conn, target)).await?;
                return dry(doc, g, rep, "revert", &plan);
            }
            let pid = backend_pid(conn).await.map_err(plain)?;
            match guarded(sig, rep, &interrupt, url, pid, m.down(conn, target)).await {
                Ok(reverted) => {
                    doc.results = state.lock().map(|p| p.results.clone()).unwrap_or_default();
                    if reverted.is_empty() {
                        rep.info("nothing to revert");
                    }
                    Ok(())
                }
                Err(f) => {
                    doc.results = failed_results(&state, &f.0);
                    Err(f)
                }
            }
        }
        Command::Status => {
            let (m, _, _) = migrator(set.expect("loaded"), g, rep);
            let rows = read_only(sig, "reading the ledger", m.status(conn)).await?;
            doc.results = rows.iter().map(status_json).collect();
            if g.json {
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
                        (s, _) => state_name(s),
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
        Command::Verify { tables, .. } => {
            read_only(sig, "verifying", verify(doc, g, rep, set, conn, tables)).await
        }
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
    }
}

async fn backend_pid(conn: &mut PgConnection) -> Result<i32, Error> {
    sqlx::query_scalar("SELECT pg_catalog.pg_backend_pid()")
        .fetch_one(conn)
        .await
        .map_err(|e| Error::db("reading the session's process id", &e))
}

fn migrator(
    set: MigrationSet,
    g: &Global,
    rep: &Reporter,
) -> (Migrator, Arc<Mutex<Progress>>, Interrupt) {
    let state = Arc::new(Mutex::new(Progress::default()));
    let interrupt = Interrupt::new();
    let m = Migrator::new(set, options(g))
        .with_observer(Box::new(Printer {
            rep: rep.clone(),
            json: g.json,
            state: state.clone(),
        }))
        .with_interrupt(interrupt.clone());
    (m, state, interrupt)
}

fn dry(
    doc: &mut Doc,
    g: &Global,
    rep: &Reporter,
    verb: &str,
    plan: &[migrator::Planned],
) -> Result<(), Failed> {
    doc.extra.insert("dry_run".into(), Value::Bool(true));
    doc.results = plan
        .iter()
        .map(|p| {
            json!({
                "version": p.version,
                "name": p.name,
                "status": format!("would-{verb}"),
                "seconds": 0.0,
                "no_transaction": p.no_transaction,
                "statements": p.statements,
            })
        })
        .collect();
    if !g.json {
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
    doc: &mut Doc,
    g: &Global,
    rep: &Reporter,
    set: Option<MigrationSet>,
    conn: &mut PgConnection,
    tables: &[String],
) -> Result<(), Error> {
    let mut problems = Vec::new();
    let mut lines = Vec::new();
    for t in tables {
        let start = Instant::now();
        let exists: bool = sqlx::query_scalar("SELECT pg_catalog.to_regclass($1) IS NOT NULL")
            .bind(t)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::db(format!("checking table {t}"), &e))?;
        doc.results.push(json!({
            "check": "table",
            "table": t,
            "status": if exists { "ok" } else { "missing" },
            "seconds": secs(start.elapsed()),
        }));
        if exists {
            lines.push(format!("ok table {t}"));
        } else {
            problems.push(format!("table `{t}` does not exist"));
        }
    }
    if let Some(set) = set {
        let (m, _, _) = migrator(set, g, rep);
        let rows = m.status(conn).await?;
        for r in &rows {
            if r.state != State::Applied {
                let name = r
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("version {}", r.version));
                problems.push(format!("{name} is {}", state_name(r.state)));
            }
            let mut item = status_json(r);
            item["check"] = json!("migration");
            doc.results.push(item);
        }
        if problems.is_empty() {
            lines.push(format!("ok {} migrations applied", rows.len()));
        }
    }
    doc.extra
        .insert("ok".into(), Value::Bool(problems.is_empty()));
    doc.extra.insert("problems".into(), json!(problems));
    if !g.json {
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

//! The commands once connected: `up`, `down`, `status` and `verify`, each as its steps.

use crate::cli::Global;
use crate::error::Error;
use crate::events::Interrupt;
use crate::migrator::Migrator;
use crate::output::{
    failed_results, secs, state_name, status_json, streaming, write_lines, Doc, Printer, Progress,
};
use crate::plan::{DownTarget, Options, Planned, State, StatusRow};
use crate::signals::{guarded, read_only, Failed, Signals};
use crate::source::MigrationSet;
use e2e_core::report::Reporter;
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedReceiver;

/// What watches a run: the printer's results for the JSON document, the interrupt a signal
/// triggers, and the printer's lines.
struct Watch {
    state: Arc<Mutex<Progress>>,
    interrupt: Interrupt,
    lines: UnboundedReceiver<String>,
}

/// A migrator wired to print as it goes and to stop on a signal.
fn wired(set: MigrationSet, g: &Global, rep: &Reporter) -> (Migrator, Watch) {
    let state = Arc::new(Mutex::new(Progress::default()));
    let interrupt = Interrupt::new();
    let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
    let m = Migrator::new(set, options(g))
        .with_observer(Box::new(Printer {
            rep: rep.clone(),
            json: g.json,
            state: state.clone(),
            lines: tx,
        }))
        .with_interrupt(interrupt.clone());
    let watch = Watch {
        state,
        interrupt,
        lines,
    };
    (m, watch)
}

pub(crate) fn options(g: &Global) -> Options {
    Options {
        ledger: g.ledger.into(),
        lock_timeout: g.lock_timeout,
        allow_out_of_order: g.allow_out_of_order,
        ignore_checksum: g.ignore_checksum,
        ignore_missing: g.ignore_missing,
    }
}

/// What `up`/`down` share: the run guarded against signals (`pid` is its session, for the
/// cancel), its lines streamed to the output, and the results kept for the JSON document.
async fn apply<T>(
    s: &mut Session<'_>,
    watch: &mut Watch,
    pid: i32,
    run: impl Future<Output = Result<T, Error>>,
) -> Result<T, Failed> {
    let fut = streaming(s.out, &mut watch.lines, run);
    let r = guarded(s.sig, s.rep, &watch.interrupt, s.url, pid, fut).await;
    s.doc.results = match &r {
        Ok(_) => watch
            .state
            .lock()
            .map(|p| p.results.clone())
            .unwrap_or_default(),
        Err(f) => failed_results(&watch.state, &f.0),
    };
    r
}

/// A connected command: where it prints, what it reports, and how it is stopped.
pub(crate) struct Session<'a> {
    pub(crate) g: &'a Global,
    pub(crate) rep: &'a Reporter,
    pub(crate) doc: &'a mut Doc,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) sig: &'a mut Option<Signals>,
    pub(crate) url: &'a str,
}

/// `up`: apply what is pending (up to `to`), or list it with `--dry-run`.
pub(crate) async fn up(
    s: &mut Session<'_>,
    conn: &mut PgConnection,
    set: MigrationSet,
    to: Option<i64>,
    dry_run: bool,
) -> Result<(), Failed> {
    let total = set.migrations.len();
    let (m, mut watch) = wired(set, s.g, s.rep);
    if dry_run {
        let plan = read_only(s.sig, "planning", m.plan_up(conn, to)).await?;
        return dry(s.out, s.doc, s.g, s.rep, "apply", &plan);
    }
    let pid = backend_pid(conn).await.map_err(|e| (e, None))?;
    let applied = apply(s, &mut watch, pid, m.up(conn, to)).await?;
    if applied.is_empty() {
        s.rep.info(format!(
            "nothing to apply: the database is up to date ({total} migrations in {})",
            s.g.dir.display()
        ));
    } else {
        let ms: u128 = applied.iter().map(|a| a.duration.as_millis()).sum();
        s.rep
            .info(format!("applied {} migration(s) in {ms} ms", applied.len()));
    }
    Ok(())
}

/// `down`: revert `target`, or list it with `--dry-run`.
pub(crate) async fn down(
    s: &mut Session<'_>,
    conn: &mut PgConnection,
    set: MigrationSet,
    target: DownTarget,
    dry_run: bool,
) -> Result<(), Failed> {
    let (m, mut watch) = wired(set, s.g, s.rep);
    if dry_run {
        let plan = read_only(s.sig, "planning", m.plan_down(conn, target)).await?;
        return dry(s.out, s.doc, s.g, s.rep, "revert", &plan);
    }
    let pid = backend_pid(conn).await.map_err(|e| (e, None))?;
    let reverted = apply(s, &mut watch, pid, m.down(conn, target)).await?;
    if reverted.is_empty() {
        s.rep.info("nothing to revert");
    }
    Ok(())
}

/// `status`: one line per migration, then the counts on stderr.
pub(crate) async fn status(
    s: &mut Session<'_>,
    conn: &mut PgConnection,
    set: MigrationSet,
) -> Result<(), Failed> {
    let m = Migrator::new(set, options(s.g));
    let rows = read_only(s.sig, "reading the ledger", m.status(conn)).await?;
    s.doc.results = rows.iter().map(status_json).collect();
    if s.g.json {
        return Ok(());
    }
    write_lines(s.out, &status_lines(&rows));
    let count = |st: State| rows.iter().filter(|r| r.state == st).count();
    s.rep.info(format!(
        "{} applied, {} pending, {} modified, {} missing",
        count(State::Applied),
        count(State::Pending),
        count(State::Modified),
        count(State::Missing)
    ));
    Ok(())
}

fn status_lines(rows: &[StatusRow]) -> Vec<String> {
    let width = rows
        .iter()
        .map(|r| r.name.as_deref().map_or(8, str::len))
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|r| {
            let name = r
                .name
                .clone()
                .unwrap_or_else(|| format!("{:03} ({})", r.version, r.description));
            let state = match (r.state, r.out_of_order) {
                (State::Pending, true) => "pending (out of order)".to_string(),
                (st, _) => state_name(st),
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
        .collect()
}

async fn backend_pid(conn: &mut PgConnection) -> Result<i32, Error> {
    sqlx::query_scalar("SELECT pg_catalog.pg_backend_pid()")
        .fetch_one(conn)
        .await
        .map_err(|e| Error::db("reading the session's process id", &e))
}

fn dry(
    out: &mut dyn Write,
    doc: &mut Doc,
    g: &Global,
    rep: &Reporter,
    verb: &str,
    plan: &[Planned],
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
        write_lines(out, &lines);
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

pub(crate) async fn verify(
    out: &mut dyn Write,
    doc: &mut Doc,
    g: &Global,
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
        let m = Migrator::new(set, options(g));
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
        write_lines(out, &lines);
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

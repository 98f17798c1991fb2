//! What a command prints: result lines on its output, progress on stderr, and the one
//! `--json` document (`{"tool": "migrate", "command", "database", "results": [...], "error"}`).

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::events::{Applied, Event, Observer};
use crate::plan::{State, StatusRow};
use e2e_core::report::Reporter;
use serde_json::{json, Value};
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// The JSON document, filled in as the command goes.
pub(crate) struct Doc {
    command: &'static str,
    database: Option<String>,
    pub(crate) results: Vec<Value>,
    pub(crate) extra: serde_json::Map<String, Value>,
}

impl Doc {
    pub(crate) fn new(cli: &Cli) -> Doc {
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

    pub(crate) fn finish(&self, e: Option<&Error>) -> Value {
        let mut extra = self.extra.clone();
        extra.insert("command".into(), json!(self.command));
        extra.insert("database".into(), json!(self.database));
        if let Some(e) = e {
            extra.insert("error".into(), Value::String(e.to_string()));
            if let Error::Statement(s) = e {
                extra.insert(
                    "failure".into(),
                    serde_json::to_value(s).unwrap_or_default(),
                );
            }
        }
        e2e_core::json::document("migrate", self.results.clone(), Value::Object(extra))
    }
}

/// Prints events: applied migrations on the command's output as they happen (through
/// `lines`, see [`streaming`]), the rest on stderr; keeps the JSON results.
pub(crate) struct Printer {
    pub(crate) rep: Reporter,
    pub(crate) json: bool,
    /// Results so far, and the migration running now (for a failed run's JSON).
    pub(crate) state: Arc<Mutex<Progress>>,
    pub(crate) lines: UnboundedSender<String>,
}

#[derive(Default)]
pub(crate) struct Progress {
    pub(crate) results: Vec<Value>,
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
        let _ = self
            .lines
            .send(format!("{verb} {} ({} ms)", a.name, a.duration.as_millis()));
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

pub(crate) fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e6
}

/// The results of a run that failed: what was done, and the migration that was running.
pub(crate) fn failed_results(state: &Mutex<Progress>, e: &Error) -> Vec<Value> {
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

/// The `--json` document, on one line.
pub(crate) fn write_json(out: &mut dyn Write, v: &Value) {
    let _ = writeln!(out, "{v}");
}

/// Result lines; a closed stdout is not an error worth failing a migration for.
pub(crate) fn write_lines(out: &mut dyn Write, lines: &[String]) {
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = out.flush();
}

/// Runs `fut`, writing the lines the [`Printer`] sends to `out` as they arrive: the printer
/// lives inside the migrator, which must be `Send`, so it cannot hold the writer itself.
pub(crate) async fn streaming<T>(
    out: &mut dyn Write,
    lines: &mut UnboundedReceiver<String>,
    fut: impl Future<Output = T>,
) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            Some(line) = lines.recv() => write_lines(out, &[line]),
            r = &mut fut => {
                while let Ok(line) = lines.try_recv() {
                    write_lines(out, &[line]);
                }
                return r;
            }
        }
    }
}

pub(crate) fn state_name(s: State) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn status_json(r: &StatusRow) -> Value {
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

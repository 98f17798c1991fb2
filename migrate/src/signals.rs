//! Ctrl-C and SIGTERM during a command: a read-only step is abandoned; `up`/`down` are wound
//! down (the running statement cancelled from a second connection, rolled back, unlocked).

use crate::error::Error;
use crate::events::Interrupt;
use e2e_core::report::Reporter;
use sqlx::Connection;
use std::future::Future;
use std::time::Duration;

pub(crate) const SIGINT: i32 = 2;
pub(crate) const SIGTERM: i32 = 15;
/// How long a cancelled statement gets to stop before its session is terminated.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// An error, and the signal that caused it (if one did).
pub(crate) type Failed = (Error, Option<i32>);

/// Ctrl-C and SIGTERM, caught (None when they cannot be: they then end the process as usual).
pub(crate) struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn new() -> Option<Signals> {
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
pub(crate) async fn read_only<T>(
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
    let mut c = crate::connect::connect(&url, Duration::from_secs(5))
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
pub(crate) async fn guarded<T>(
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

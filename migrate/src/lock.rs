//! The session advisory lock held around a whole run.
//!
//! It is taken by polling `pg_try_advisory_lock` (as goose does), never by a blocking
//! `pg_advisory_lock`: a session blocked in that call keeps a snapshot open, and the lock holder's
//! `CREATE INDEX CONCURRENTLY` would wait for that snapshot forever (a deadlock). Between polls a
//! waiter holds nothing.

use crate::error::Error;
use crate::events::{Event, Interrupt, Observer};
use sqlx::PgConnection;
use std::time::{Duration, Instant};

/// Who holds an advisory lock: backend pid and application_name.
pub async fn holder(conn: &mut PgConnection, key: i64) -> Option<(i32, String)> {
    // A bigint advisory key is stored as classid = high 32 bits, objid = low 32 bits, objsubid 1.
    let hi = (key >> 32) & 0xffff_ffff;
    let lo = key & 0xffff_ffff;
    sqlx::query_as::<_, (i32, String)>(
        "SELECT l.pid, coalesce(a.application_name, '') FROM pg_locks l \
         LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
         AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         LIMIT 1",
    )
    .bind(hi)
    .bind(lo)
    .fetch_optional(conn)
    .await
    .ok()
    .flatten()
}

/// Takes the lock, waiting at most `timeout`; reports who holds it while waiting.
pub async fn acquire(
    conn: &mut PgConnection,
    key: i64,
    timeout: Duration,
    observer: &dyn Observer,
    interrupt: &Interrupt,
) -> Result<(), Error> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(10);
    let mut last_holder: Option<i32> = None;
    loop {
        if interrupt.is_set() {
            return Err(Error::Interrupted(
                "stopped while waiting for the migration lock, before anything ran".into(),
            ));
        }
        let got: bool = sqlx::query_scalar("SELECT pg_catalog.pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::db("taking the migration advisory lock", &e))?;
        if got {
            if last_holder.is_some() {
                observer.event(Event::LockAcquired {
                    waited: start.elapsed(),
                });
            }
            return Ok(());
        }
        let h = holder(conn, key).await;
        if let Some((pid, app)) = &h {
            if last_holder != Some(*pid) {
                last_holder = Some(*pid);
                observer.event(Event::LockWait {
                    pid: *pid,
                    application: app.clone(),
                    timeout,
                });
            }
        }
        if start.elapsed() >= timeout {
            let who = match h {
                Some((pid, app)) if !app.is_empty() => format!("pid {pid} ({app})"),
                Some((pid, _)) => format!("pid {pid}"),
                None => "another session".to_string(),
            };
            return Err(Error::Lock(format!(
                "timed out after {:.1}s waiting for the migration lock (advisory lock {key}) held by {who}; \
                 another migration run is in progress or stuck. Wait for it, stop it \
                 (SELECT pg_terminate_backend(pid)), or raise --lock-timeout",
                start.elapsed().as_secs_f64()
            )));
        }
        let left = timeout.saturating_sub(start.elapsed());
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// Releases the lock (closing the connection would too).
pub async fn release(conn: &mut PgConnection, key: i64) -> Result<(), Error> {
    sqlx::query_scalar::<_, bool>("SELECT pg_catalog.pg_advisory_unlock($1)")
        .bind(key)
        .fetch_one(conn)
        .await
        .map(|_| ())
        .map_err(|e| Error::db("releasing the migration advisory lock", &e))
}

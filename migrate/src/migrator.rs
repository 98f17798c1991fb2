//! Applying and reverting migrations: one transaction per migration (the Up section sent as one
//! multi-statement simple query, the ledger row written in the same transaction), statement by
//! statement outside a transaction for NO TRANSACTION files, all under a session advisory lock.

use crate::error::{
    describe_lost, describe_sqlx, is_connection_lost, Cause, Direction, Error, StatementError,
};
use crate::ledger::{reset_session, Ledger, LedgerKind, Row};
use crate::lock;
use crate::source::{Migration, MigrationSet, Section};
use crate::split::Stmt;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgErrorPosition};
use sqlx::{Connection, PgConnection, PgPool};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Asks a run to stop at the next safe point (set it from a signal handler): no further
/// migration starts, a migration whose statements already ran is rolled back instead of
/// committed, and the lock wait ends. Cancelling a statement that is running on the server is
/// the caller's part (see `run`: `pg_cancel_backend` from a second connection).
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct Options {
    pub ledger: LedgerKind,
    /// How long to wait for another run's advisory lock.
    pub lock_timeout: Duration,
    /// Apply unapplied migrations older than the newest applied one (goose's -allow-missing).
    pub allow_out_of_order: bool,
    /// Apply even when applied files were edited (checksum mismatch).
    pub ignore_checksum: bool,
    /// Do not fail when the ledger has versions with no file.
    pub ignore_missing: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ledger: LedgerKind::Sqlx,
            lock_timeout: Duration::from_secs(120),
            allow_out_of_order: false,
            ignore_checksum: false,
            ignore_missing: false,
        }
    }
}

/// A migration that was applied or reverted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    pub version: i64,
    /// File name, e.g. `001_v1_schema.sql`.
    pub name: String,
    #[serde(rename = "duration_ms", serialize_with = "ser_ms")]
    pub duration: Duration,
    pub no_transaction: bool,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// What a run tells its caller while it goes (the CLI prints these).
#[derive(Debug)]
pub enum Event<'a> {
    LockWait {
        pid: i32,
        application: String,
        timeout: Duration,
    },
    LockAcquired {
        waited: Duration,
    },
    Applying(&'a Migration),
    Applied(&'a Applied),
    Reverting(&'a Migration),
    Reverted(&'a Applied),
    Warning(String),
}

pub trait Observer: Send + Sync {
    fn event(&self, e: Event<'_>);
}

/// Ignores every event.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: Event<'_>) {}
}

/// Which migrations `down` reverts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTarget {
    /// The newest K applied migrations.
    Steps(usize),
    /// Every applied migration with a version above N (0: all).
    To(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Applied,
    Pending,
    /// Applied, but the file's Up section changed since (checksum differs).
    Modified,
    /// In the ledger, but no file has this version.
    Missing,
    /// Recorded with success = false by another tool: partially applied.
    Dirty,
}

/// One line of `status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatusRow {
    pub version: i64,
    /// File name (None for a missing migration).
    pub name: Option<String>,
    pub description: String,
    pub state: State,
    pub applied_at: Option<String>,
    pub execution_ms: Option<f64>,
    /// A pending migration older than the newest applied one.
    pub out_of_order: bool,
    pub no_transaction: bool,
}

/// What `up` or `down` would do (dry run).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planned {
    pub version: i64,
    pub name: String,
    pub no_transaction: bool,
    pub statements: usize,
}

/// Connects with a timeout, turning failures into one clear line that never shows the password.
pub async fn connect(url: &str, timeout: Duration) -> Result<PgConnection, Error> {
    let shown = crate::url::mask(url);
    // sqlx reads any scheme as PostgreSQL: `mysql://` would end in a misleading login error.
    if let Ok(u) = url::Url::parse(url) {
        if !matches!(u.scheme(), "postgres" | "postgresql") {
            return Err(Error::Config(format!(
                "unsupported database URL scheme `{}://` in {shown}: migrate works with PostgreSQL only; use postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                u.scheme()
            )));
        }
    }
    let opts = PgConnectOptions::from_str(url)
        .map_err(|e| {
            Error::Config(format!(
                "invalid database URL {shown}: {}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                strip_url(&e.to_string(), url)
            ))
        })?
        .application_name("migrate");
    let opts = sqlx::ConnectOptions::disable_statement_logging(opts);
    match tokio::time::timeout(timeout, PgConnection::connect_with(&opts)).await {
        Err(_) => Err(Error::Connect(match probe(&opts) {
            Some(Probe::Silent(at)) => format!(
                "cannot connect to {shown}: no answer within {timeout:.0?}: {at} accepts TCP connections but does not answer the PostgreSQL handshake, so it is not a PostgreSQL server (or a stuck one); check the host and port (or raise --connect-timeout)"
            ),
            Some(Probe::Foreign(at, why)) => not_postgres(&shown, &at, &why),
            None => format!(
                "cannot connect to {shown}: no answer within {timeout:.0?}; check the host and port, and that PostgreSQL is running and reachable (or raise --connect-timeout)"
            ),
        })),
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e @ sqlx::Error::Database(_))) => {
            Err(Error::Connect(connect_error(&shown, &opts, &e)))
        }
        Ok(Err(e)) => Err(Error::Connect(match probe(&opts) {
            Some(Probe::Foreign(at, why)) => not_postgres(&shown, &at, &why),
            Some(Probe::Silent(at)) => not_postgres(
                &shown,
                &at,
                "it accepts TCP connections but never answered the PostgreSQL handshake",
            ),
            None => connect_error(&shown, &opts, &e),
        })),
    }
}

fn not_postgres(shown: &str, at: &str, why: &str) -> String {
    format!("cannot connect to {shown}: {at} is not a PostgreSQL server ({why}); check the host and port")
}

/// What a server that failed a connect says to the protocol's first question.
enum Probe {
    /// `host:port`, and what it did instead of answering as PostgreSQL does.
    Foreign(String, String),
    /// `host:port` took the TCP connection and said nothing.
    Silent(String),
}

/// After a connect that failed without a PostgreSQL error: asks the server the first question
/// of the protocol (an SSLRequest, which PostgreSQL answers at once with one byte, `S` or `N`).
/// None when it is PostgreSQL or cannot be asked (a Unix socket, no TCP connection).
fn probe(opts: &PgConnectOptions) -> Option<Probe> {
    use std::io::{Read, Write};
    let host = opts.get_host();
    if host.starts_with('/') {
        return None;
    }
    let port = opts.get_port();
    let wait = Duration::from_secs(1);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .next()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, wait).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).ok()?;
    let mut buf = [0u8; 80];
    let at = format!("{host}:{port}");
    let closed = "it closed the connection without answering the PostgreSQL handshake";
    match s.read(&mut buf) {
        Ok(1) if matches!(buf[0], b'S' | b'N') => None,
        Ok(n) if n > 0 && buf[0] == b'E' => None,
        Ok(0) => Some(Probe::Foreign(at, closed.into())),
        Ok(n) => Some(Probe::Foreign(
            at,
            format!("it answered `{}`", printable(&buf[..n])),
        )),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Some(Probe::Silent(at))
        }
        Err(_) => Some(Probe::Foreign(at, closed.into())),
    }
}

/// The first line of a foreign server's answer, printable.
fn printable(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let text: String = String::from_utf8_lossy(line)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .take(60)
        .collect();
    text.trim_end_matches('.').trim().to_string()
}

fn strip_url(msg: &str, url: &str) -> String {
    msg.replace(url, "<url>")
        .replace("error with configuration: ", "")
}

fn connect_error(shown: &str, opts: &PgConnectOptions, e: &sqlx::Error) -> String {
    let user = opts.get_username();
    let db = opts.get_database().unwrap_or(user);
    match e {
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("28P01") => format!(
                "cannot connect to {shown}: password authentication failed for user `{user}`; check the password in --database-url / DATABASE_URL"
            ),
            Some("28000") => format!(
                "cannot connect to {shown}: the server refused user `{user}` ({}); check the user name and pg_hba.conf",
                d.message()
            ),
            Some("3D000") => format!(
                "cannot connect to {shown}: database `{db}` does not exist; create it (createdb {db}) or fix the database name"
            ),
            _ => format!("cannot connect to {shown}: {}", describe_sqlx(e)),
        },
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
            "cannot connect to {shown}: connection refused; is PostgreSQL running and listening on {}:{}?",
            opts.get_host(),
            opts.get_port()
        ),
        sqlx::Error::Tls(t) => format!(
            "cannot connect to {shown}: TLS: {t}; this build has no TLS support, use sslmode=disable or sslmode=prefer"
        ),
        other => format!("cannot connect to {shown}: {}", describe_sqlx(other)),
    }
}

/// Applies, reverts and reports migrations of one set.
pub struct Migrator {
    pub set: MigrationSet,
    pub options: Options,
    observer: Box<dyn Observer>,
    interrupt: Interrupt,
}

impl Migrator {
    pub fn new(set: MigrationSet, options: Options) -> Self {
        Migrator {
            set,
            options,
            observer: Box::new(Silent),
            interrupt: Interrupt::new(),
        }
    }

    /// Stops the run when `interrupt` is triggered (see [`Interrupt`]).
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    pub fn with_observer(mut self, observer: Box<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// `up` on a connection taken from a pool (the whole run uses that one connection).
    pub async fn up_pool(&self, pool: &PgPool, to: Option<i64>) -> Result<Vec<Applied>, Error> {
        let mut conn = pool
            .acquire()
            .await
            .map_err(|e| Error::db("taking a connection from the pool", &e))?;
        self.up(&mut conn, to).await
    }

    /// Applies every pending migration (up to version `to`), each exactly once, under the lock.
    /// Returns what was applied, in order.
    ///
    /// The session is reset (`RESET ALL` and the like, see [`crate::ledger::RESET_SESSION`]) at
    /// the start and after each migration, so every migration starts from the session as it was
    /// after connecting; per-run settings belong in the URL (`options=-csearch_path%3Dapp`).
    pub async fn up(
        &self,
        conn: &mut PgConnection,
        to: Option<i64>,
    ) -> Result<Vec<Applied>, Error> {
        let key = self
            .lock(conn)
            .await
            .map_err(|e| explain(e, true, &[], "applied", "migrate up"))?;
        let mut applied = Vec::new();
        let result = self.up_locked(conn, to, &mut applied).await;
        let unlocked = lock::release(conn, key).await;
        finish(result, unlocked, &applied, "applied", "migrate up")?;
        Ok(applied)
    }

    async fn lock(&self, conn: &mut PgConnection) -> Result<i64, Error> {
        reset_session(conn).await?;
        let db: String = sqlx::query_scalar("SELECT pg_catalog.current_database()::text")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| Error::db("reading the database name", &e))?;
        let key = self.options.ledger.lock_id(&db);
        lock::acquire(
            conn,
            key,
            self.options.lock_timeout,
            self.observer.as_ref(),
            &self.interrupt,
        )
        .await?;
        Ok(key)
    }

    /// The ledger as the session finds it (after a session reset).
    async fn ledger(&self, conn: &mut PgConnection) -> Result<Ledger, Error> {
        reset_session(conn).await?;
        Ledger::locate(conn, self.options.ledger).await
    }

    async fn up_locked(
        &self,
        conn: &mut PgConnection,
        to: Option<i64>,
        applied: &mut Vec<Applied>,
    ) -> Result<(), Error> {
        let mut ledger = Ledger::locate(conn, self.options.ledger).await?;
        if self.interrupt.is_set() {
            return Err(Error::Interrupted("nothing was started".into()));
        }
        ledger.ensure(conn).await?;
        if ledger.kind == LedgerKind::Goose && !ledger.goose_zero_row(conn).await? {
            self.observer.event(Event::Warning(
                "goose_db_version has no version-0 row; goose itself would refuse this table"
                    .into(),
            ));
        }
        let rows = ledger.applied(conn).await?;
        let pending = self.pending(&rows, to)?;
        for m in pending {
            if self.interrupt.is_set() {
                return Err(Error::Interrupted(format!("stopped before {}", m.name)));
            }
            self.observer.event(Event::Applying(m));
            let duration = self.execute(conn, &ledger, m, &m.up, Direction::Up).await?;
            let a = Applied {
                version: m.version,
                name: m.name.clone(),
                duration,
                no_transaction: m.no_tx,
            };
            self.observer.event(Event::Applied(&a));
            applied.push(a);
        }
        Ok(())
    }

    /// The migrations `up` would apply given the ledger `rows`, after every refusal check.
    fn pending(&self, rows: &[Row], to: Option<i64>) -> Result<Vec<&Migration>, Error> {
        let o = &self.options;
        if let Some(r) = rows.iter().find(|r| !r.success) {
            return Err(Error::Refused(format!(
                "version {} is marked as failed (success = false) in {}: it was partially applied by another tool. Repair the schema by hand, delete that row, and run again",
                r.version,
                o.ledger.table()
            )));
        }
        let missing: Vec<String> = rows
            .iter()
            .filter(|r| self.set.get(r.version).is_none())
            .map(|r| r.version.to_string())
            .collect();
        if !missing.is_empty() && !o.ignore_missing {
            return Err(Error::Refused(format!(
                "the database has applied version{} {} with no file in {}; this checkout is older than the database, or files were renamed. Use the right --dir, or --ignore-missing (MIGRATE_IGNORE_MISSING=1) to go on",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                self.set.dir.display()
            )));
        }
        if !o.ignore_checksum {
            let modified: Vec<&str> = rows
                .iter()
                .filter_map(|r| {
                    let m = self.set.get(r.version)?;
                    let c = r.checksum.as_ref()?;
                    (c != &m.checksum).then_some(m.name.as_str())
                })
                .collect();
            if !modified.is_empty() {
                return Err(Error::Refused(format!(
                    "refusing to migrate: the Up section of applied migration{} {} changed since {} applied (checksum mismatch). Restore the file{} and put the change in a new migration, or pass --ignore-checksum (MIGRATE_IGNORE_CHECKSUM=1) if the edit is harmless",
                    if modified.len() == 1 { "" } else { "s" },
                    modified.join(", "),
                    if modified.len() == 1 { "it was" } else { "they were" },
                    if modified.len() == 1 { "" } else { "s" },
                )));
            }
        }
        let applied: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.version).collect();
        let max = applied.iter().next_back().copied().unwrap_or(0);
        let pending: Vec<&Migration> = self
            .set
            .migrations
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .filter(|m| to.is_none_or(|t| m.version <= t))
            .collect();
        let older: Vec<&str> = pending
            .iter()
            .filter(|m| m.version < max)
            .map(|m| m.name.as_str())
            .collect();
        if !older.is_empty() && !o.allow_out_of_order {
            return Err(Error::Refused(format!(
                "found {} unapplied migration{} older than the newest applied version {max}: {}. Renumber {} after {max}, or pass --allow-out-of-order (MIGRATE_ALLOW_OUT_OF_ORDER=1) to apply {} anyway",
                older.len(),
                if older.len() == 1 { "" } else { "s" },
                older.join(", "),
                if older.len() == 1 { "it" } else { "them" },
                if older.len() == 1 { "it" } else { "them" },
            )));
        }
        Ok(pending)
    }

    /// What `up` would apply, without taking the lock or changing anything.
    pub async fn plan_up(
        &self,
        conn: &mut PgConnection,
        to: Option<i64>,
    ) -> Result<Vec<Planned>, Error> {
        let rows = self.ledger(conn).await?.applied(conn).await?;
        Ok(self
            .pending(&rows, to)?
            .into_iter()
            .map(|m| planned(m, &m.up))
            .collect())
    }

    /// What `down` would revert, without taking the lock or changing anything.
    pub async fn plan_down(
        &self,
        conn: &mut PgConnection,
        target: DownTarget,
    ) -> Result<Vec<Planned>, Error> {
        let rows = self.ledger(conn).await?.applied(conn).await?;
        Ok(self
            .to_revert(&rows, target)?
            .into_iter()
            .map(|m| planned(m, m.down.as_ref().unwrap_or(&m.up)))
            .collect())
    }

    fn to_revert(&self, rows: &[Row], target: DownTarget) -> Result<Vec<&Migration>, Error> {
        let mut versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let chosen: Vec<i64> = match target {
            DownTarget::Steps(k) => versions.into_iter().take(k).collect(),
            DownTarget::To(n) => versions.into_iter().filter(|&v| v > n).collect(),
        };
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for v in chosen {
            match self.set.get(v) {
                None => problems.push(format!(
                    "version {v} is applied but has no file in {}",
                    self.set.dir.display()
                )),
                Some(m) if m.down.is_none() => {
                    problems.push(format!("{} has no Down section (`-- +goose Down`)", m.name))
                }
                Some(m) => out.push(m),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Refused(format!(
                "cannot revert, nothing was changed: {}",
                problems.join("; ")
            )));
        }
        Ok(out)
    }

    /// Reverts applied migrations newest first, running their Down sections.
    pub async fn down(
        &self,
        conn: &mut PgConnection,
        target: DownTarget,
    ) -> Result<Vec<Applied>, Error> {
        let key = self
            .lock(conn)
            .await
            .map_err(|e| explain(e, true, &[], "reverted", "migrate down"))?;
        let mut reverted = Vec::new();
        let result = self.down_locked(conn, target, &mut reverted).await;
        let unlocked = lock::release(conn, key).await;
        finish(result, unlocked, &reverted, "reverted", "migrate down")?;
        Ok(reverted)
    }

    async fn down_locked(
        &self,
        conn: &mut PgConnection,
        target: DownTarget,
        reverted: &mut Vec<Applied>,
    ) -> Result<(), Error> {
        let ledger = Ledger::locate(conn, self.options.ledger).await?;
        let rows = ledger.applied(conn).await?;
        for m in self.to_revert(&rows, target)? {
            let Some(down) = &m.down else { continue };
            if self.interrupt.is_set() {
                return Err(Error::Interrupted(format!("stopped before {}", m.name)));
            }
            self.observer.event(Event::Reverting(m));
            let duration = self
                .execute(conn, &ledger, m, down, Direction::Down)
                .await?;
            let a = Applied {
                version: m.version,
                name: m.name.clone(),
                duration,
                no_transaction: m.no_tx,
            };
            self.observer.event(Event::Reverted(&a));
            reverted.push(a);
        }
        Ok(())
    }

    /// Every file and every ledger row, by version.
    pub async fn status(&self, conn: &mut PgConnection) -> Result<Vec<StatusRow>, Error> {
        let rows = self.ledger(conn).await?.applied(conn).await?;
        let max = rows.iter().map(|r| r.version).max().unwrap_or(0);
        let mut out: Vec<StatusRow> = Vec::new();
        for m in &self.set.migrations {
            let row = rows.iter().find(|r| r.version == m.version);
            let state = match row {
                None => State::Pending,
                Some(r) if !r.success => State::Dirty,
                Some(r) if r.checksum.as_ref().is_some_and(|c| c != &m.checksum) => State::Modified,
                Some(_) => State::Applied,
            };
            out.push(StatusRow {
                version: m.version,
                name: Some(m.name.clone()),
                description: m.description.clone(),
                state,
                applied_at: row.map(|r| r.applied_at.clone()),
                execution_ms: row.and_then(exec_ms),
                out_of_order: row.is_none() && m.version < max,
                no_transaction: m.no_tx,
            });
        }
        for r in rows.iter().filter(|r| self.set.get(r.version).is_none()) {
            out.push(StatusRow {
                version: r.version,
                name: None,
                description: r.description.clone().unwrap_or_default(),
                state: State::Missing,
                applied_at: Some(r.applied_at.clone()),
                execution_ms: exec_ms(r),
                out_of_order: false,
                no_transaction: false,
            });
        }
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    /// Runs one section and records (Up) or removes (Down) the ledger row, atomically unless the
    /// migration is NO TRANSACTION. Returns the section's execution time.
    async fn execute(
        &self,
        conn: &mut PgConnection,
        ledger: &Ledger,
        m: &Migration,
        sec: &Section,
        dir: Direction,
    ) -> Result<Duration, Error> {
        let start = Instant::now();
        if m.no_tx {
            for (i, u) in sec.units.iter().enumerate() {
                if self.interrupt.is_set() {
                    return Err(Error::Interrupted(no_tx_stopped(m, u.line, i > 0, false)));
                }
                let text = sec.unit_text(u);
                if let Err(e) = sqlx::raw_sql(text).execute(&mut *conn).await {
                    if self.interrupt.is_set() {
                        return Err(Error::Interrupted(no_tx_stopped(m, u.line, i > 0, true)));
                    }
                    let stmt = Stmt {
                        start: u.start,
                        end: u.end,
                        line: u.line,
                        terminated: true,
                    };
                    return Err(statement_error(m, sec, dir, Some(&stmt), &e, i > 0));
                }
            }
            let elapsed = start.elapsed();
            let done = async {
                reset_session(conn).await?;
                match dir {
                    Direction::Up => ledger.record(conn, m, elapsed).await,
                    Direction::Down => ledger.remove(conn, m.version).await,
                }
            };
            done.await.map_err(|e| {
                Error::Db(format!(
                    "{}: every statement ran (NO TRANSACTION, they stay) but the ledger could not be updated: {e}. \
                     Check `migrate status`; record or remove version {} in {} by hand if needed",
                    m.name,
                    m.version,
                    ledger.qualified()
                ))
            })?;
            return Ok(elapsed);
        }
        let mut tx = conn
            .begin()
            .await
            .map_err(|e| Error::db(format!("starting the transaction for {}", m.name), &e))?;
        if !sec.units.is_empty() {
            if let Err(e) = sqlx::raw_sql(&sec.sql).execute(&mut *tx).await {
                let _ = tx.rollback().await;
                if self.interrupt.is_set() {
                    return Err(Error::Interrupted(rolled_back(m, true)));
                }
                return Err(match Cause::of(&e) {
                    // Replaying to find the statement needs the connection and would run a
                    // cancelled statement again; name the file only.
                    Cause::Statement => self.locate(conn, m, sec, dir, e).await,
                    _ => statement_error(m, sec, dir, None, &e, false),
                });
            }
        }
        let elapsed = start.elapsed();
        // The migration may have changed search_path, the role or timeouts for the session:
        // the ledger write runs with the session as it was before the migration.
        let done = async {
            reset_session(&mut tx).await?;
            match dir {
                Direction::Up => ledger.record(&mut tx, m, elapsed).await,
                Direction::Down => ledger.remove(&mut tx, m.version).await,
            }
        };
        if let Err(e) = done.await {
            let _ = tx.rollback().await;
            if self.interrupt.is_set() {
                return Err(Error::Interrupted(rolled_back(m, false)));
            }
            return Err(Error::Db(format!(
                "{e}\n  Rolled back: nothing of {} was applied and the ledger is unchanged.",
                m.name
            )));
        }
        if self.interrupt.is_set() {
            let _ = tx.rollback().await;
            return Err(Error::Interrupted(rolled_back(m, false)));
        }
        match tx.commit().await {
            Ok(()) => Ok(elapsed),
            Err(e) if !is_connection_lost(&e) => Err(Error::Db(format!(
                "{}: COMMIT failed, so the server rolled it back: nothing of it was applied and the ledger is unchanged: {}",
                m.name,
                describe_sqlx(&e)
            ))),
            Err(e) => Err(Error::Unknown(format!(
                "{}: the connection was lost after COMMIT was sent ({}), so the outcome is unknown: the migration and its ledger row \
                 were either both committed or both rolled back. Run `migrate status` to see which, then `migrate up` again",
                m.name,
                describe_lost(&e)
            ))),
        }
    }

    /// Finds the statement of a failed multi-statement section: by PostgreSQL's error position
    /// when it gave one, else by replaying the statements one by one in a transaction that is
    /// rolled back.
    async fn locate(
        &self,
        conn: &mut PgConnection,
        m: &Migration,
        sec: &Section,
        dir: Direction,
        err: sqlx::Error,
    ) -> Error {
        let stmts = sec.statements();
        let Some(pg) = pg_error(&err) else {
            return Error::db(format!("running {}", m.name), &err);
        };
        if let Some(PgErrorPosition::Original(pos)) = pg.position() {
            let off = char_to_byte(&sec.sql, pos.saturating_sub(1));
            if let Some(s) = stmts.iter().rev().find(|s| s.start <= off) {
                return statement_error_at(m, sec, dir, Some(s), &err, Some(off), false);
            }
        }
        // Replay to find which statement fails.
        let code = pg.code().to_string();
        if let Ok(mut tx) = conn.begin().await {
            for s in &stmts {
                if let Err(e2) = sqlx::raw_sql(s.text(&sec.sql)).execute(&mut *tx).await {
                    let _ = tx.rollback().await;
                    if pg_error(&e2).is_some_and(|p| p.code() == code) {
                        return statement_error(m, sec, dir, Some(s), &e2, false);
                    }
                    return statement_error(m, sec, dir, None, &err, false);
                }
            }
            let _ = tx.rollback().await;
        }
        statement_error(m, sec, dir, None, &err, false)
    }
}

fn planned(m: &Migration, sec: &Section) -> Planned {
    Planned {
        version: m.version,
        name: m.name.clone(),
        no_transaction: m.no_tx,
        statements: sec.statements().len(),
    }
}

fn exec_ms(r: &Row) -> Option<f64> {
    r.execution_ns
        .filter(|&n| n >= 0)
        .map(|n| (n as f64 / 1e3).round() / 1e3)
}

fn pg_error(e: &sqlx::Error) -> Option<&PgDatabaseError> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
}

fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

/// A statement error where PostgreSQL's position (if any) is relative to `stmt`'s text.
fn statement_error(
    m: &Migration,
    sec: &Section,
    dir: Direction,
    stmt: Option<&Stmt>,
    e: &sqlx::Error,
    partial: bool,
) -> Error {
    let off = match (stmt, pg_error(e).and_then(|p| p.position())) {
        (Some(s), Some(PgErrorPosition::Original(pos))) => {
            Some(s.start + char_to_byte(s.text(&sec.sql), pos.saturating_sub(1)))
        }
        _ => None,
    };
    statement_error_at(m, sec, dir, stmt, e, off, partial)
}

fn statement_error_at(
    m: &Migration,
    sec: &Section,
    dir: Direction,
    stmt: Option<&Stmt>,
    e: &sqlx::Error,
    error_off: Option<usize>,
    partial: bool,
) -> Error {
    let pg = pg_error(e);
    let mut context = pg.and_then(|p| p.r#where()).map(str::to_string);
    // Map "PL/pgSQL function inline_code_block line N" of a DO block to the file line.
    if let (Some(s), Some(c)) = (stmt, context.as_mut()) {
        if let Some(line) = do_block_line(sec, s, c) {
            c.push_str(&format!(" (file line {line})"));
        }
    }
    Error::Statement(Box::new(StatementError {
        file: m.name.clone(),
        path: m.path.clone(),
        version: m.version,
        direction: dir,
        line: stmt.map(|s| s.line),
        statement: stmt.map(|s| first_line(s.text(&sec.sql))),
        error_line: error_off.map(|o| sec.line_of(o)),
        sqlstate: pg.map(|p| p.code().to_string()),
        message: match pg {
            Some(p) => p.message().to_string(),
            None => describe_lost(e),
        },
        detail: pg.and_then(|p| p.detail()).map(str::to_string),
        hint: pg.and_then(|p| p.hint()).map(str::to_string),
        context,
        no_tx: m.no_tx,
        partial,
        cause: Cause::of(e),
    }))
}

fn do_block_line(sec: &Section, s: &Stmt, context: &str) -> Option<usize> {
    let rest = context.strip_prefix("PL/pgSQL function inline_code_block line ")?;
    let n: usize = rest.split_whitespace().next()?.parse().ok()?;
    let text = s.text(&sec.sql);
    if !text.trim_start().to_ascii_lowercase().starts_with("do") {
        return None;
    }
    let dollar = text.find('$')?;
    let tag_end = text[dollar + 1..].find('$')? + dollar + 2;
    Some(sec.line_of(s.start + tag_end) + n - 1)
}

fn first_line(text: &str) -> String {
    let l = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if l.chars().count() > 100 {
        format!("{}…", l.chars().take(100).collect::<String>())
    } else {
        l.to_string()
    }
}

/// The interrupt part of a message: what happened to the migration that was running.
fn rolled_back(m: &Migration, cancelled: bool) -> String {
    format!(
        "{}{} was rolled back: nothing of it was applied and it is not in the ledger",
        m.name,
        if cancelled {
            "'s running statement was cancelled and it"
        } else {
            ""
        }
    )
}

fn no_tx_stopped(m: &Migration, line: usize, partial: bool, cancelled: bool) -> String {
    let what = if cancelled {
        format!("the statement at line {line} of {} was cancelled", m.name)
    } else {
        format!("{} was stopped before its statement at line {line}", m.name)
    };
    if partial {
        format!(
            "{what}; it runs outside a transaction (NO TRANSACTION), so its earlier statements stay, and it is not recorded \
             (an interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index to drop)"
        )
    } else {
        format!("{what}; nothing of it had run and it is not recorded")
    }
}

/// The result of a locked run, with an interrupt turned into one message.
fn finish(
    result: Result<(), Error>,
    unlocked: Result<(), Error>,
    done: &[Applied],
    verb: &str,
    again: &str,
) -> Result<(), Error> {
    match result {
        Err(e) => Err(explain(e, unlocked.is_ok(), done, verb, again)),
        Ok(()) => unlocked,
    }
}

/// An interrupt as one message: what was rolled back, what stays, the lock. Other errors as is.
fn explain(e: Error, unlocked: bool, done: &[Applied], verb: &str, again: &str) -> Error {
    let Error::Interrupted(what) = e else {
        return e;
    };
    let before = if done.is_empty() {
        format!("nothing was {verb} before it")
    } else {
        let names: Vec<&str> = done.iter().map(|a| a.name.as_str()).collect();
        format!(
            "{} migration{} {verb} before it stay{} {verb}: {}",
            done.len(),
            if done.len() == 1 { "" } else { "s" },
            if done.len() == 1 { "s" } else { "" },
            names.join(", ")
        )
    };
    let lock = if unlocked {
        "the migration lock is released"
    } else {
        "the migration lock is released when this connection closes"
    };
    Error::Interrupted(format!(
        "interrupted: {what}; {before}; {lock}. Run `{again}` to go on"
    ))
}

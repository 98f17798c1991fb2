//! Applying and reverting migrations: one transaction per migration (the Up section sent as one
//! multi-statement simple query, the ledger row written in the same transaction), statement by
//! statement outside a transaction for NO TRANSACTION files, all under a session advisory lock.

use crate::error::{describe_lost, describe_sqlx, is_connection_lost, Cause, Direction, Error};
use crate::events::{Applied, Event, Interrupt, Observer, Silent};
use crate::ledger::{reset_session, Ledger, LedgerKind};
use crate::lock;
use crate::plan::{self, DownTarget, Options, Planned, StatusRow};
use crate::source::{Migration, MigrationSet, Section};
use crate::split::Stmt;
use crate::statement_error::{char_to_byte, pg_error, statement_error, statement_error_at};
use sqlx::postgres::PgErrorPosition;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::{Duration, Instant};

/// What a locked run does.
#[derive(Clone, Copy)]
enum Run {
    Up(Option<i64>),
    Down(DownTarget),
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
        self.locked(conn, Run::Up(to)).await
    }

    /// Takes the lock, runs `run`, releases the lock; an interrupt becomes one message saying
    /// what was done and what was rolled back.
    async fn locked(&self, conn: &mut PgConnection, run: Run) -> Result<Vec<Applied>, Error> {
        let (verb, again) = match run {
            Run::Up(_) => ("applied", "migrate up"),
            Run::Down(_) => ("reverted", "migrate down"),
        };
        let key = self
            .lock(conn)
            .await
            .map_err(|e| explain(e, true, &[], verb, again))?;
        let mut done = Vec::new();
        let result = match run {
            Run::Up(to) => self.up_locked(conn, to, &mut done).await,
            Run::Down(target) => self.down_locked(conn, target, &mut done).await,
        };
        let unlocked = lock::release(conn, key).await;
        finish(result, unlocked, &done, verb, again)?;
        Ok(done)
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
        let pending = plan::pending(&self.set, &self.options, &rows, to)?;
        for m in pending {
            applied.push(self.one(conn, &ledger, m, &m.up, Direction::Up).await?);
        }
        Ok(())
    }

    /// One migration in one direction, announced before and reported after.
    async fn one(
        &self,
        conn: &mut PgConnection,
        ledger: &Ledger,
        m: &Migration,
        sec: &Section,
        dir: Direction,
    ) -> Result<Applied, Error> {
        if self.interrupt.is_set() {
            return Err(Error::Interrupted(format!("stopped before {}", m.name)));
        }
        self.observer.event(match dir {
            Direction::Up => Event::Applying(m),
            Direction::Down => Event::Reverting(m),
        });
        // Recorded (Up) or removed (Down) in the ledger atomically unless NO TRANSACTION.
        let duration = if m.no_tx {
            self.execute_no_tx(conn, ledger, m, sec, dir).await?
        } else {
            self.execute_in_tx(conn, ledger, m, sec, dir).await?
        };
        let a = Applied {
            version: m.version,
            name: m.name.clone(),
            duration,
            no_transaction: m.no_tx,
        };
        self.observer.event(match dir {
            Direction::Up => Event::Applied(&a),
            Direction::Down => Event::Reverted(&a),
        });
        Ok(a)
    }

    /// What `up` would apply, without taking the lock or changing anything.
    pub async fn plan_up(
        &self,
        conn: &mut PgConnection,
        to: Option<i64>,
    ) -> Result<Vec<Planned>, Error> {
        let rows = self.ledger(conn).await?.applied(conn).await?;
        Ok(plan::pending(&self.set, &self.options, &rows, to)?
            .into_iter()
            .map(|m| plan::planned(m, &m.up))
            .collect())
    }

    /// What `down` would revert, without taking the lock or changing anything.
    pub async fn plan_down(
        &self,
        conn: &mut PgConnection,
        target: DownTarget,
    ) -> Result<Vec<Planned>, Error> {
        let rows = self.ledger(conn).await?.applied(conn).await?;
        Ok(plan::to_revert(&self.set, &rows, target)?
            .into_iter()
            .map(|m| plan::planned(m, m.down.as_ref().unwrap_or(&m.up)))
            .collect())
    }

    /// Reverts applied migrations newest first, running their Down sections.
    pub async fn down(
        &self,
        conn: &mut PgConnection,
        target: DownTarget,
    ) -> Result<Vec<Applied>, Error> {
        self.locked(conn, Run::Down(target)).await
    }

    async fn down_locked(
        &self,
        conn: &mut PgConnection,
        target: DownTarget,
        reverted: &mut Vec<Applied>,
    ) -> Result<(), Error> {
        let ledger = Ledger::locate(conn, self.options.ledger).await?;
        let rows = ledger.applied(conn).await?;
        for m in plan::to_revert(&self.set, &rows, target)? {
            let Some(down) = &m.down else { continue };
            reverted.push(self.one(conn, &ledger, m, down, Direction::Down).await?);
        }
        Ok(())
    }

    /// Every file and every ledger row, by version.
    pub async fn status(&self, conn: &mut PgConnection) -> Result<Vec<StatusRow>, Error> {
        let rows = self.ledger(conn).await?.applied(conn).await?;
        Ok(plan::status(&self.set, &rows))
    }

    /// NO TRANSACTION: unit by unit; what ran stays when a later unit fails.
    async fn execute_no_tx(
        &self,
        conn: &mut PgConnection,
        ledger: &Ledger,
        m: &Migration,
        sec: &Section,
        dir: Direction,
    ) -> Result<Duration, Error> {
        let start = Instant::now();
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
        update_ledger(conn, ledger, m, dir, elapsed)
            .await
            .map_err(|e| {
            Error::Db(format!(
                "{}: every statement ran (NO TRANSACTION, they stay) but the ledger could not be updated: {e}. \
                 Check `migrate status`; record or remove version {} in {} by hand if needed",
                m.name,
                m.version,
                ledger.qualified()
            ))
        })?;
        Ok(elapsed)
    }

    /// The section as one multi-statement query and the ledger write in one transaction.
    async fn execute_in_tx(
        &self,
        conn: &mut PgConnection,
        ledger: &Ledger,
        m: &Migration,
        sec: &Section,
        dir: Direction,
    ) -> Result<Duration, Error> {
        let start = Instant::now();
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
        if let Err(e) = update_ledger(&mut tx, ledger, m, dir, elapsed).await {
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

/// Records (Up) or removes (Down) the migration's ledger row, with the session as it was
/// before the migration: it may have changed search_path, the role or timeouts.
async fn update_ledger(
    conn: &mut PgConnection,
    ledger: &Ledger,
    m: &Migration,
    dir: Direction,
    elapsed: Duration,
) -> Result<(), Error> {
    reset_session(conn).await?;
    match dir {
        Direction::Up => ledger.record(conn, m, elapsed).await,
        Direction::Down => ledger.remove(conn, m.version).await,
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

//! Errors of a migration run, each a message for a person (what failed, why, what next) and an
//! exit code: 1 the operation failed, 2 usage/configuration.

use crate::source::LoadError;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// The directory or its files (exit 2 for a missing/empty directory, 1 for format errors).
    Load(LoadError),
    /// Unusable configuration, e.g. a database URL that does not parse (exit 2).
    Config(String),
    /// The database cannot be reached or refuses us (exit 1).
    Connect(String),
    /// The advisory lock was not obtained in time (exit 1).
    Lock(String),
    /// The ledger and the files disagree (modified, out of order, missing, dirty); nothing ran.
    Refused(String),
    /// A statement of a migration failed.
    Statement(Box<StatementError>),
    /// Any other database error (reading or writing the ledger, a lost connection).
    Db(String),
    /// The connection was lost after COMMIT was sent: applied or not, nobody knows (exit 1).
    Unknown(String),
    /// Stopped by an interrupt (Ctrl-C, SIGTERM): the message says what was rolled back and what
    /// stays applied (exit 130; the CLI uses 143 for SIGTERM).
    Interrupted(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Load(LoadError::Dir { .. } | LoadError::Empty { .. }) | Error::Config(_) => {
                e2e_core::exit::USAGE
            }
            Error::Interrupted(_) => e2e_core::exit::INTERRUPTED,
            _ => e2e_core::exit::FAILURE,
        }
    }

    pub(crate) fn db(context: impl fmt::Display, e: &sqlx::Error) -> Self {
        Error::Db(format!("{context}: {}", describe_lost(e)))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Load(e) => e.fmt(f),
            Error::Config(m)
            | Error::Connect(m)
            | Error::Lock(m)
            | Error::Refused(m)
            | Error::Db(m)
            | Error::Unknown(m)
            | Error::Interrupted(m) => f.write_str(m),
            Error::Statement(s) => s.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        Error::Load(e)
    }
}

/// A sqlx error in one line, with PostgreSQL's SQLSTATE when there is one.
pub fn describe_sqlx(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => match d.code() {
            Some(code) => format!("ERROR {code}: {}", d.message()),
            None => d.message().to_string(),
        },
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The connection is gone (lost, or the server ended the session: terminated backend, shutdown),
/// as opposed to an error of the SQL sent: the file is not to blame.
pub(crate) fn is_connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")),
        _ => false,
    }
}

/// A lost connection in words (sqlx says `expected to read 5 bytes, got 0 bytes at EOF`).
pub(crate) fn describe_lost(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the connection closed before the server's answer arrived".to_string()
        }
        other => describe_sqlx(other),
    }
}

/// PostgreSQL's query_canceled: a statement_timeout, or pg_cancel_backend from somewhere.
pub(crate) fn is_cancelled(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("57014"))
}

/// What a failed statement says about its cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// PostgreSQL rejected the SQL: the file needs fixing.
    Statement,
    /// The statement was cancelled (statement_timeout, pg_cancel_backend).
    Cancelled,
    /// The connection was lost or the server ended the session; not the file's fault.
    Connection,
}

impl Cause {
    pub fn of(e: &sqlx::Error) -> Cause {
        if is_connection_lost(e) {
            Cause::Connection
        } else if is_cancelled(e) {
            Cause::Cancelled
        } else {
            Cause::Statement
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// A failed statement, located in its file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatementError {
    /// File name, e.g. `004_orders.sql`.
    pub file: String,
    pub path: PathBuf,
    pub version: i64,
    pub direction: Direction,
    /// File line where the failed statement starts (None if it could not be located).
    pub line: Option<usize>,
    /// The failed statement's first line.
    pub statement: Option<String>,
    /// File line of PostgreSQL's error position, when it reported one.
    pub error_line: Option<usize>,
    pub sqlstate: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// PostgreSQL's CONTEXT (e.g. `PL/pgSQL function inline_code_block line 5 at RAISE`).
    pub context: Option<String>,
    /// The migration ran outside a transaction.
    pub no_tx: bool,
    /// Earlier statements of a NO TRANSACTION migration were executed (and stay).
    pub partial: bool,
    pub cause: Cause,
}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            Direction::Up => "",
            Direction::Down => " (Down section)",
        };
        let what = match self.cause {
            Cause::Statement => "migration failed",
            Cause::Cancelled => "migration cancelled",
            Cause::Connection => "connection to the database lost",
        };
        match (self.line, &self.statement) {
            (Some(line), Some(stmt)) => {
                write!(
                    f,
                    "{}:{line}: {what}{dir} in the statement at line {line}: `{stmt}`",
                    self.file
                )?;
                if let Some(el) = self.error_line.filter(|&el| el != line) {
                    write!(f, " (error at line {el})")?;
                }
            }
            _ if self.cause == Cause::Statement => write!(
                f,
                "{}: {what}{dir} (the failing statement could not be located)",
                self.file
            )?,
            _ => write!(f, "{}: {what}{dir} while it was running", self.file)?,
        }
        match &self.sqlstate {
            Some(code) => write!(f, "\n  ERROR {code}: {}", self.message)?,
            None => write!(f, "\n  ERROR: {}", self.message)?,
        }
        if let Some(d) = &self.detail {
            write!(f, "\n  DETAIL: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  HINT: {h}")?;
        }
        if let Some(c) = &self.context {
            write!(f, "\n  CONTEXT: {}", c.replace('\n', "\n           "))?;
        }
        let again = match self.direction {
            Direction::Up => "migrate up",
            Direction::Down => "migrate down",
        };
        let next = match self.cause {
            Cause::Statement => format!("Fix the file and run `{again}` again."),
            Cause::Cancelled => format!(
                "The file may be fine: a statement_timeout (of the role, the database or a SET in an earlier statement) or pg_cancel_backend stopped it. Raise the timeout or find who cancelled it, then run `{again}` again."
            ),
            Cause::Connection => format!(
                "This is not a problem with the file: the server ended the session or the network dropped it. Check the server, then run `{again}` again (`migrate status` shows where the database stands)."
            ),
        };
        if !self.no_tx {
            let how = if self.cause == Cause::Connection {
                "Rolled back by the server (it never commits an unfinished transaction)"
            } else {
                "Rolled back"
            };
            write!(
                f,
                "\n  {how}: nothing of {} was applied and the ledger is unchanged. {next}",
                self.file
            )
        } else if self.partial || self.cause == Cause::Connection {
            write!(
                f,
                "\n  {} runs outside a transaction (NO TRANSACTION): the statements before this one were executed and stay; the migration is not recorded. Make its statements idempotent (IF NOT EXISTS) or undo them. {next}",
                self.file
            )
        } else {
            write!(
                f,
                "\n  Nothing of {} was executed (its first statement failed) and the ledger is unchanged. {next}",
                self.file
            )
        }
    }
}

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
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Load(LoadError::Dir { .. } | LoadError::Empty { .. }) | Error::Config(_) => {
                e2e_core::exit::USAGE
            }
            _ => e2e_core::exit::FAILURE,
        }
    }

    pub(crate) fn db(context: impl fmt::Display, e: &sqlx::Error) -> Self {
        Error::Db(format!("{context}: {}", describe_sqlx(e)))
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
            | Error::Db(m) => f.write_str(m),
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
}

impl fmt::Display for StatementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = match self.direction {
            Direction::Up => "",
            Direction::Down => " (Down section)",
        };
        match (self.line, &self.statement) {
            (Some(line), Some(stmt)) => {
                write!(
                    f,
                    "{}:{line}: migration failed{dir} in the statement at line {line}: `{stmt}`",
                    self.file
                )?;
                if let Some(el) = self.error_line.filter(|&el| el != line) {
                    write!(f, " (error at line {el})")?;
                }
            }
            _ => write!(
                f,
                "{}: migration failed{dir} (the failing statement could not be located)",
                self.file
            )?,
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
        if !self.no_tx {
            write!(
                f,
                "\n  Rolled back: nothing of {} was applied and the ledger is unchanged. Fix the file and run `{again}` again.",
                self.file
            )
        } else if self.partial {
            write!(
                f,
                "\n  {} runs outside a transaction (NO TRANSACTION): the statements before this one were executed and stay; the migration is not recorded. Make its statements idempotent (IF NOT EXISTS) or undo them, then run `{again}` again.",
                self.file
            )
        } else {
            write!(
                f,
                "\n  Nothing of {} was executed (its first statement failed) and the ledger is unchanged. Fix the file and run `{again}` again.",
                self.file
            )
        }
    }
}

//! `migrate`: goose-format SQL migrations applied to PostgreSQL with sqlx — each exactly once,
//! under a session advisory lock, in its own transaction together with its ledger row.
//!
//! The library is what `ds-deploy` calls:
//!
//! ```no_run
//! # async fn f() -> Result<(), migrate::Error> {
//! use migrate::{MigrationSet, Migrator, Options};
//! let set = MigrationSet::load("migrations")?;            // every format error, before any SQL
//! let mut conn = migrate::connect("postgres://u:p@localhost/db", std::time::Duration::from_secs(5)).await?;
//! let applied = Migrator::new(set, Options::default()).up(&mut conn, None).await?;
//! for a in applied {
//!     println!("Applied {} ({} ms)", a.name, a.duration.as_millis());
//! }
//! # Ok(()) }
//! ```

// Public modules are what other crates and the binary name by path; the rest is reached
// through the re-exports below, so the compiler reports what nothing uses.
pub mod cli;
mod commands;
mod connect;
mod envsub;
pub mod error;
mod events;
mod ledger;
mod lock;
mod migrator;
mod output;
mod plan;
mod run;
mod signals;
mod source;
pub mod split;
mod statement_error;
pub mod url;

pub use connect::connect;
pub use error::{Error, StatementError};
pub use events::{Applied, Event, Interrupt, Observer};
pub use ledger::LedgerKind;
pub use migrator::Migrator;
pub use plan::{DownTarget, Options, Planned, State, StatusRow};
pub use run::run;
pub use source::{Format, FormatError, LoadError, Migration, MigrationSet, Section, Unit};

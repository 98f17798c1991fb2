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

pub mod cli;
pub mod envsub;
pub mod error;
pub mod ledger;
pub mod lock;
pub mod migrator;
pub mod run;
pub mod source;
pub mod split;
pub mod url;

pub use error::{Error, StatementError};
pub use ledger::{Ledger, LedgerKind};
pub use migrator::{
    connect, Applied, DownTarget, Event, Interrupt, Migrator, Observer, Options, Planned, State,
    StatusRow,
};
pub use run::run;
pub use source::{LoadError, Migration, MigrationSet};

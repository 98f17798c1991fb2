//! What a run tells its caller while it goes ([`Event`] to an [`Observer`]), and how the caller
//! asks it to stop ([`Interrupt`]). Shared by the lock wait and the migrator.

use crate::source::Migration;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

//! A migration directory (`../shared/spec/migrations.md`): [`discovery`] finds and reads the
//! files, [`goose`] cuts annotated files into sections, [`section`] is what a section is, and
//! [`parse`] ties one file's text to its checks.

mod discovery;
mod goose;
mod parse;
mod section;

pub use discovery::{FormatError, LoadError};
pub use section::{Section, Unit};
use std::path::{Path, PathBuf};

/// How a file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// With `-- +goose` annotations.
    Goose,
    /// No annotations: the whole file is the up migration (sqlx style).
    Plain,
}

/// A parsed migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    /// File name, e.g. `001_v1_schema.sql`.
    pub name: String,
    /// sqlx's description: the part after `VERSION_`, `_` replaced by spaces.
    pub description: String,
    pub path: PathBuf,
    pub format: Format,
    /// Runs outside a transaction (`-- +goose NO TRANSACTION`, or a plain file starting with
    /// `-- no-transaction`).
    pub no_tx: bool,
    pub up: Section,
    /// None when the file has no Down section (plain files, goose files without `Down`).
    pub down: Option<Section>,
    /// SHA-384 of the Up section as written (for a plain file: of the whole file, as sqlx
    /// computes it). ENVSUB values are not part of it, so running with other values does not
    /// make an applied file "modified"; editing the Up section does, editing Down does not.
    pub checksum: Vec<u8>,
}

/// The migrations of a directory, sorted by version.
#[derive(Debug, Clone)]
pub struct MigrationSet {
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
    /// Things worth telling a person that do not stop the run.
    pub warnings: Vec<String>,
}

impl MigrationSet {
    /// Loads `dir` with ENVSUB values from the process environment.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, LoadError> {
        Self::load_with_env(dir, &|k| std::env::var(k).ok())
    }

    /// Loads `dir`, taking ENVSUB values from `env`.
    pub fn load_with_env(
        dir: impl AsRef<Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, LoadError> {
        discovery::load(dir.as_ref().to_path_buf(), env)
    }

    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &self.migrations[i])
    }
}

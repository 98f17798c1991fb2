//! Command-line interface, following docs/conventions.md: every flag reads an environment
//! variable, booleans take 1/0/true/false/yes/no/on/off, durations are humantime (a bare
//! number is seconds), global flags go before or after the subcommand.

use crate::ledger::LedgerKind;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use e2e_core::cli::{ArgAlias, Compat, EnvAlias};
use e2e_core::values::{parse_bool, parse_count, parse_duration};
use std::path::PathBuf;
use std::time::Duration;

/// Old names still accepted (README "Changelog"); `DATABASE_URL` is honoured for good.
pub const COMPAT: Compat = Compat {
    env: &[
        EnvAlias {
            var: "MIGRATE_DIR",
            old: "MIGRATIONS_DIR",
            deprecated: true,
        },
        EnvAlias {
            var: "E2E_DATABASE_URL",
            old: "DATABASE_URL",
            deprecated: false,
        },
        EnvAlias {
            var: "MIGRATE_MAN_OUT_DIR",
            old: "MIGRATE_MAN_DIR",
            deprecated: true,
        },
    ],
    args: &[ArgAlias {
        old: "-t",
        new: "--table",
        takes_value: true,
        after: "verify",
    }],
};

const EXAMPLES: &str = "\
Examples:
  # Apply every pending migration of ./migrations (goose-format or plain .sql files):
  export DATABASE_URL=postgres://slm_user:secret@localhost:5432/action_history
  migrate up
    Applied 001_v1_schema.sql (842 ms)
    Applied 002_add_service_account_name.sql (3 ms)

  # Another directory, goose's ledger table (a database goose migrated before):
  migrate --dir db/migrations --ledger goose up

  # What would run, without running it; up to a version only:
  migrate up --dry-run --to 12

  # Where the database stands (applied / pending / modified / missing, with times):
  migrate status
  migrate status --json | jq '.results[] | select(.status != \"applied\")'

  # Revert the newest migration, the newest three, or everything above version 5:
  migrate down
  migrate down --steps 3
  migrate down --to 5

  # Check that tables exist and that every migration is applied:
  migrate verify --table audit_events --table notification_audit

Exit codes: 0 success; 1 the operation failed (a statement failed, the database is unreachable or
refuses the login, the lock timed out, the files and the ledger disagree, a migration file is
malformed, verify found a problem); 2 usage or configuration error (bad flags, no database URL,
an unparsable URL or an unsupported scheme, a missing or empty migration directory);
130 interrupted by Ctrl-C, 143 by SIGTERM (the running statement is cancelled and rolled back).";

/// Apply goose-format SQL migrations to PostgreSQL: each exactly once, under an advisory lock,
/// in its own transaction, recorded in a ledger with checksums.
///
/// Results go to stdout (one line per migration, or one JSON document with --json); progress and
/// errors to stderr. The database password is never printed.
#[derive(Debug, Parser)]
#[command(name = "migrate", version, after_long_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Directory holding the NNN_description.sql files (top level only).
    #[arg(long, global = true, env = "MIGRATE_DIR", default_value = "migrations")]
    pub dir: PathBuf,
    /// PostgreSQL URL: postgres://USER:PASSWORD@HOST:PORT/DATABASE (PG* variables fill gaps;
    /// DATABASE_URL is read when E2E_DATABASE_URL is unset).
    #[arg(long, global = true, env = "E2E_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Ledger table layout: sqlx's `_sqlx_migrations` or goose's `goose_db_version`.
    #[arg(long, global = true, env = "MIGRATE_LEDGER", value_enum, default_value_t = LedgerArg::Sqlx)]
    pub ledger: LedgerArg,
    /// How long to wait for another run's migration lock (e.g. 30s, 2m, 500ms).
    #[arg(long, global = true, env = "MIGRATE_LOCK_TIMEOUT", value_parser = parse_duration, default_value = "120s")]
    pub lock_timeout: Duration,
    /// How long to wait for the database to answer when connecting.
    #[arg(long, global = true, env = "MIGRATE_CONNECT_TIMEOUT", value_parser = parse_duration, default_value = "5s")]
    pub connect_timeout: Duration,
    /// Apply unapplied migrations older than the newest applied one (default: refuse).
    #[arg(long, global = true, env = "MIGRATE_ALLOW_OUT_OF_ORDER", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub allow_out_of_order: bool,
    /// Go on even though the Up section of applied migrations changed (checksum mismatch).
    #[arg(long, global = true, env = "MIGRATE_IGNORE_CHECKSUM", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub ignore_checksum: bool,
    /// Go on even though the ledger has versions without a file.
    #[arg(long, global = true, env = "MIGRATE_IGNORE_MISSING", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub ignore_missing: bool,
    /// Print one JSON document on stdout instead of lines.
    #[arg(long, global = true, env = "MIGRATE_JSON", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub json: bool,
    /// Only errors and warnings on stderr.
    #[arg(long, short = 'q', global = true, env = "MIGRATE_QUIET", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub quiet: bool,
    /// More detail on stderr.
    #[arg(long, short = 'v', global = true, env = "MIGRATE_VERBOSE", action = ArgAction::Count, value_parser = parse_count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LedgerArg {
    Sqlx,
    Goose,
}

impl From<LedgerArg> for LedgerKind {
    fn from(l: LedgerArg) -> Self {
        match l {
            LedgerArg::Sqlx => LedgerKind::Sqlx,
            LedgerArg::Goose => LedgerKind::Goose,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations in version order; prints `Applied FILE (N ms)` for each.
    #[command(after_long_help = EXAMPLES)]
    Up {
        /// Stop after this version.
        #[arg(long, env = "MIGRATE_TO", value_name = "VERSION")]
        to: Option<i64>,
        /// Print what would be applied; change nothing.
        #[arg(long, env = "MIGRATE_DRY_RUN", action = ArgAction::SetTrue, value_parser = parse_bool)]
        dry_run: bool,
    },
    /// Revert applied migrations newest first by running their Down sections (default: one).
    #[command(after_long_help = EXAMPLES)]
    Down {
        /// Revert every migration above this version (0: all).
        #[arg(
            long,
            env = "MIGRATE_DOWN_TO",
            value_name = "VERSION",
            conflicts_with = "steps"
        )]
        to: Option<i64>,
        /// Revert the newest K migrations.
        #[arg(long, env = "MIGRATE_STEPS", value_name = "K")]
        steps: Option<usize>,
        /// Print what would be reverted; change nothing.
        #[arg(long, env = "MIGRATE_DRY_RUN", action = ArgAction::SetTrue, value_parser = parse_bool)]
        dry_run: bool,
    },
    /// Show every migration: applied / pending / modified / missing, with times.
    Status,
    /// Check that tables exist and (unless --tables-only) that every migration is applied.
    Verify {
        /// A table that must exist (schema-qualified or on the search_path); repeatable.
        #[arg(long = "table", env = "MIGRATE_VERIFY_TABLES", value_delimiter = ',')]
        tables: Vec<String>,
        /// Only check the tables, not the migration directory.
        #[arg(long, env = "MIGRATE_TABLES_ONLY", action = ArgAction::SetTrue, value_parser = parse_bool)]
        tables_only: bool,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (roff) for migrate and its subcommands into a directory.
    Man {
        #[arg(long, default_value = "target/man", env = "MIGRATE_MAN_OUT_DIR")]
        out_dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_in_the_one_syntax() {
        for (text, secs) in [("1h30m", 5400), ("5", 5), ("7d", 604_800), ("1w", 604_800)] {
            let c = Cli::try_parse_from(["migrate", "--lock-timeout", text, "status"]).unwrap();
            assert_eq!(c.global.lock_timeout, Duration::from_secs(secs), "{text}");
        }
        let c = Cli::try_parse_from(["migrate", "status", "--connect-timeout", "500ms"]).unwrap();
        assert_eq!(c.global.connect_timeout, Duration::from_millis(500));
        assert!(Cli::try_parse_from(["migrate", "--lock-timeout", "soon", "status"]).is_err());
    }
}

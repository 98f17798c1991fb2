//! The commands: load and validate the directory, connect, run, print.
//!
//! `--json` prints exactly one document on every outcome, failures included:
//! `{"tool": "migrate", "command": ..., "database": ..., "results": [{..., "status", "seconds"}],
//! "error": "..."}` (`error` only on failure, with `failure` holding a failed statement's fields).
//!
//! Ctrl-C and SIGTERM during `up`/`down` stop the run without leaving anything behind: no further
//! migration starts, the statement running on the server is cancelled from a second connection
//! (`pg_cancel_backend`), the migration's transaction is rolled back, the lock released, and the
//! message says what was rolled back and what stays. Exit 130 (SIGINT) or 143 (SIGTERM).

use crate::cli::{Cli, Command, Global};
use crate::commands::{self, Session};
use crate::error::Error;
use crate::output::{write_json, Doc};
use crate::plan::DownTarget;
use crate::signals::{read_only, Failed, Signals, SIGTERM};
use crate::source::MigrationSet;
use e2e_core::report::{Reporter, Verbosity};
use e2e_core::CliError;
use sqlx::Connection;
use std::io::Write;

/// Runs one command; results on `out`, people-facing lines on stderr.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let g = &cli.global;
    let rep = Reporter::new("migrate", Verbosity::from_flags(g.quiet, g.verbose));
    match &cli.command {
        Command::Completions { shell } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            return e2e_core::cli::write_completions(*shell, cmd, "migrate", out);
        }
        Command::Man { out_dir } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            return e2e_core::clidoc::write_man_pages(cmd, out_dir, out);
        }
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    let mut doc = Doc::new(&cli);
    let outcome = rt.block_on(run_async(&cli, &rep, &mut doc, out));
    let failed = outcome.as_ref().err().map(|f| &f.0);
    if g.json {
        write_json(out, &doc.finish(failed));
    }
    outcome.map_err(|(e, signal)| CliError {
        code: match (&e, signal) {
            (Error::Interrupted(_), Some(SIGTERM)) => 128 + SIGTERM as u8,
            _ => e.exit_code(),
        },
        message: e.to_string(),
    })
}

/// The steps of a command that talks to the database: load the files, check the arguments,
/// connect, run the command, close.
async fn run_async(
    cli: &Cli,
    rep: &Reporter,
    doc: &mut Doc,
    out: &mut dyn Write,
) -> Result<(), Failed> {
    let g = &cli.global;
    let plain = |e: Error| (e, None);
    let mut sig = Signals::new();
    let set = match &cli.command {
        Command::Verify { tables_only, .. } if *tables_only => None,
        _ => Some(load(g, rep).map_err(plain)?),
    };
    check_arguments(&cli.command).map_err(plain)?;
    let url = database_url(g).map_err(plain)?;
    rep.detail(format!("connecting to {}", crate::url::mask(url)));
    let connect = crate::connect::connect(url, g.connect_timeout);
    let mut conn = read_only(&mut sig, "connecting", connect).await?;
    let mut session = Session {
        g,
        rep,
        doc,
        out,
        sig: &mut sig,
        url,
    };
    let result = dispatch(&mut session, &cli.command, set, &mut conn).await;
    if result.as_ref().err().and_then(|e| e.1).is_none() {
        // Ends the session cleanly; after an interrupt the process exit does it.
        let _ = conn.close().await;
    }
    result
}

/// What clap cannot check: `verify --tables-only` needs a table.
fn check_arguments(command: &Command) -> Result<(), Error> {
    match command {
        Command::Verify {
            tables,
            tables_only: true,
        } if tables.is_empty() => Err(Error::Config(
            "verify --tables-only needs at least one --table".into(),
        )),
        _ => Ok(()),
    }
}

async fn dispatch(
    s: &mut Session<'_>,
    command: &Command,
    set: Option<MigrationSet>,
    conn: &mut sqlx::PgConnection,
) -> Result<(), Failed> {
    match command {
        Command::Up { to, dry_run } => {
            commands::up(s, conn, set.expect("loaded"), *to, *dry_run).await
        }
        Command::Down { to, steps, dry_run } => {
            let target = match (to, steps) {
                (Some(n), _) => DownTarget::To(*n),
                (None, Some(k)) => DownTarget::Steps(*k),
                (None, None) => DownTarget::Steps(1),
            };
            commands::down(s, conn, set.expect("loaded"), target, *dry_run).await
        }
        Command::Status => commands::status(s, conn, set.expect("loaded")).await,
        Command::Verify { tables, .. } => {
            let verify = commands::verify(&mut *s.out, s.doc, s.g, set, conn, tables);
            read_only(s.sig, "verifying", verify).await
        }
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
    }
}

fn load(g: &Global, rep: &Reporter) -> Result<MigrationSet, Error> {
    let set = MigrationSet::load(&g.dir)?;
    for w in &set.warnings {
        rep.warn(w);
    }
    rep.detail(format!(
        "{} migrations in {} (versions {}..={})",
        set.migrations.len(),
        g.dir.display(),
        set.migrations.first().map_or(0, |m| m.version),
        set.migrations.last().map_or(0, |m| m.version)
    ));
    Ok(set)
}

fn database_url(g: &Global) -> Result<&str, Error> {
    g.database_url.as_deref().filter(|u| !u.is_empty()).ok_or_else(|| {
        Error::Config(
            "no database: pass --database-url postgres://USER:PASSWORD@HOST:PORT/DATABASE or set E2E_DATABASE_URL (or DATABASE_URL)".into(),
        )
    })
}

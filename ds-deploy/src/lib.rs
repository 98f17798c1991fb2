//! `ds-deploy`: the DataStorage bundle (PostgreSQL, Redis, migrations, DataStorage with its TLS,
//! signing certificate, CRDs and RBAC) on any cluster a kubeconfig names, Ready or diagnosed.
//!
//! The flow of `up` reads as its steps: resolve and check the values, load the migrations,
//! connect, apply and wait (`up::up`), and on failure diagnose (`diagnose::diagnose`).

pub mod apply;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod diagnose;
pub mod down;
pub mod migrations;
pub mod objects;
pub mod portforward;
pub mod progress;
pub mod render;
pub mod status;
pub mod up;
pub mod values;
pub mod wait;

use cli::{Cli, Command};
use e2e_core::report::{Reporter, Verbosity};
use e2e_core::CliError;
use std::io::Write;
use std::time::Duration;

const TOOL: &str = "ds-deploy";

fn out_err(e: std::io::Error) -> CliError {
    CliError::failure(format!("cannot write to stdout: {e}"))
}

/// Runs one command line; what it prints for people goes to stderr, results to `stdout`.
pub fn run(cli: Cli, stdout: &mut dyn Write) -> Result<(), CliError> {
    let reporter = Reporter::new(
        TOOL,
        Verbosity::from_flags(cli.global.quiet, cli.global.verbose),
    );
    match &cli.command {
        Command::Completions { shell } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            return e2e_core::cli::write_completions(*shell, cmd, TOOL, stdout);
        }
        Command::Man { out_dir } => {
            return e2e_core::clidoc::write_man_pages(
                <Cli as clap::CommandFactory>::command(),
                out_dir,
                stdout,
            )
        }
        Command::Render(args) => {
            let bundle = values::bundle(&cli.global, &args.bundle)?;
            let certs = if bundle.tls {
                Some(certs::generate(&bundle.namespace)?)
            } else {
                None
            };
            let objs = objects::build(&bundle, certs.as_ref());
            return stdout
                .write_all(render::render(&objs, args.show_secrets).as_bytes())
                .map_err(out_err);
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        tokio::select! {
            r = run_async(&cli, &reporter, stdout) => r,
            _ = tokio::signal::ctrl_c() => Err(CliError::interrupted(
                "interrupted: what was applied stays; run the same command again to converge",
            )),
        }
    })
}

async fn run_async(cli: &Cli, reporter: &Reporter, stdout: &mut dyn Write) -> Result<(), CliError> {
    let target = values::target(&cli.global)?;
    let json = cli.global.json;
    match &cli.command {
        Command::Up(args) => {
            // Every input is checked before the cluster is touched.
            let settings = values::up(&cli.global, args)?;
            let set = match &settings.migrations_dir {
                Some(dir) => Some(migrations::load(dir)?),
                None => None,
            };
            let client = cluster::connect(&target).await?;
            let progress = progress::Progress::new(reporter.clone());
            let result =
                tokio::time::timeout(settings.timeout, up::up(&client, &settings, set, &progress))
                    .await
                    .unwrap_or_else(|_| {
                        Err(CliError::failure(format!(
                            "the bundle was not Ready within {} (--timeout)",
                            humantime::format_duration(settings.timeout)
                        )))
                    });
            progress.clear();
            match result {
                Ok(report) => print_up(&report, json, reporter, stdout),
                Err(e) => {
                    if json {
                        let doc = e2e_core::json::document(
                            TOOL,
                            Vec::new(),
                            serde_json::json!({"status": "failed", "error": e.message}),
                        );
                        writeln!(stdout, "{doc}").map_err(out_err)?;
                    }
                    reporter.always(format!("error: {}", e.message));
                    let d = diagnose::diagnose(&client, &target.namespace, None).await;
                    if let Ok(d) = d {
                        reporter.always(d.text.trim_end());
                    }
                    Err(CliError::failure(
                        "the bundle is not Ready (diagnosis above); fix the cause and run `ds-deploy up` again",
                    ))
                }
            }
        }
        Command::Status => {
            let client = cluster::connect(&target).await?;
            let rows = status::status(&client, &target.namespace).await?;
            if json {
                // `seconds` is what the one JSON shape asks of every result; reading a
                // component takes no time worth reporting.
                let rows = rows
                    .iter()
                    .map(|r| {
                        let mut v = serde_json::to_value(r).unwrap_or_default();
                        v["seconds"] = 0.0.into();
                        v
                    })
                    .collect();
                let doc = e2e_core::json::document(
                    TOOL,
                    rows,
                    serde_json::json!({"namespace": target.namespace}),
                );
                writeln!(stdout, "{doc}").map_err(out_err)?;
            } else {
                writeln!(
                    stdout,
                    "{:<12} {:<6} {:<10} {:<8} IMAGE",
                    "COMPONENT", "READY", "STATUS", "AGE"
                )
                .map_err(out_err)?;
                for r in &rows {
                    writeln!(
                        stdout,
                        "{:<12} {:<6} {:<10} {:<8} {}",
                        r.name,
                        r.ready,
                        r.status,
                        status::age(r.age_seconds),
                        r.image
                    )
                    .map_err(out_err)?;
                }
            }
            if rows.iter().all(|r| r.status == "absent") {
                return Err(CliError::failure(format!(
                    "no bundle in namespace {}: deploy it with `ds-deploy up`",
                    target.namespace
                )));
            }
            Ok(())
        }
        Command::Down(args) => {
            let client = cluster::connect(&target).await?;
            let timeout = args.timeout.unwrap_or(Duration::from_secs(120));
            let report =
                down::down(&client, &target.namespace, args.delete_namespace, timeout).await?;
            if json {
                let doc = e2e_core::json::document(
                    TOOL,
                    report
                        .deleted
                        .iter()
                        .map(
                            |d| serde_json::json!({"name": d, "status": "deleted", "seconds": 0.0}),
                        )
                        .collect(),
                    serde_json::json!({
                        "namespace": target.namespace,
                        "status": "deleted",
                        "kept": report.kept,
                    }),
                );
                writeln!(stdout, "{doc}").map_err(out_err)?;
            } else {
                for d in &report.deleted {
                    writeln!(stdout, "deleted {d}").map_err(out_err)?;
                }
            }
            for k in &report.kept {
                reporter.info(format!("kept {k}"));
            }
            reporter.info(format!(
                "{} objects of the bundle in {} deleted",
                report.deleted.len(),
                target.namespace
            ));
            Ok(())
        }
        Command::Diagnose(args) => {
            let client = cluster::connect(&target).await?;
            let d = diagnose::diagnose(&client, &target.namespace, args.out.as_deref()).await?;
            stdout.write_all(d.text.as_bytes()).map_err(out_err)?;
            if let Some(dir) = &args.out {
                reporter.info(format!("written to {}", dir.display()));
            }
            if d.problems > 0 {
                return Err(CliError::failure(format!(
                    "{} pod{} not Ready in {}",
                    d.problems,
                    if d.problems == 1 { " is" } else { "s are" },
                    target.namespace
                )));
            }
            Ok(())
        }
        Command::Render(_) | Command::Completions { .. } | Command::Man { .. } => Ok(()),
    }
}

fn print_up(
    report: &up::Report,
    json: bool,
    reporter: &Reporter,
    stdout: &mut dyn Write,
) -> Result<(), CliError> {
    if json {
        let mut doc = serde_json::to_value(report).unwrap_or_default();
        doc["tool"] = TOOL.into();
        doc["status"] = "ready".into();
        writeln!(stdout, "{doc}").map_err(out_err)?;
    } else {
        for s in &report.results {
            writeln!(stdout, "{} {} {:.3}", s.name, s.status, s.seconds).map_err(out_err)?;
        }
    }
    let ports: Vec<String> = report
        .node_ports
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if report.changed {
        reporter.info(format!(
            "bundle Ready in {} after {:.1}s (NodePorts: {})",
            report.namespace,
            report.seconds,
            ports.join(" ")
        ));
    } else {
        reporter.info(format!(
            "nothing to do: every object unchanged, no migration pending, bundle Ready in {} ({:.1}s; NodePorts: {})",
            report.namespace,
            report.seconds,
            ports.join(" ")
        ));
    }
    Ok(())
}

//! `kind-load`: put local images into every node of a Kind cluster, concurrently, without
//! temporary files, skipping nodes that already hold them.
//!
//! The flow (see [`load::load`]): find the nodes by Kind's labels ([`nodes`]); read what each
//! node's containerd holds with `ctr` ([`containerd`]); per node decide skip / re-tag / import;
//! stream one export of the image from the engine ([`source`]), re-packed on the fly into
//! frames ([`repack`], [`tarfmt`]) - layers for `ctr content ingest`, the rest for one final
//! `ctr images import` - through bounded channels ([`fanout`]) into a small script on each
//! node's exec stdin ([`frames`], [`exec`]); verify with the listing the script ends with.

pub mod cli;
pub mod containerd;
pub mod exec;
pub mod fanout;
pub mod frames;
pub mod load;
pub mod names;
pub mod nodes;
pub mod repack;
pub mod source;
pub mod tarfmt;

use clap::CommandFactory;
use cli::{Cli, ClusterArgs, Command, LoadArgs};
use containerd::Platforms;
use e2e_core::report::{Reporter, Verbosity};
use e2e_core::CliError;
use e2e_engine::runtime;
use load::{Action, LoadOptions, LoadReport, NodeListing};
use std::io::Write;

/// Runs one command, writing results to `out` (stdout in the binary).
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Some(Command::Completions { shell }) => {
            e2e_core::cli::write_completions(shell, Cli::command(), "kind-load", out)
        }
        Some(Command::Man { out_dir }) => {
            e2e_core::clidoc::write_man_pages(Cli::command(), &out_dir, out)
        }
        Some(Command::Images(a)) => runtime()?.block_on(images(&a.cluster, out)),
        Some(Command::Load(a)) => runtime()?.block_on(load_cmd(a, out)),
        None => runtime()?.block_on(load_cmd(cli.load, out)),
    }
}

fn reporter(c: &ClusterArgs) -> Reporter {
    Reporter::new("kind-load", Verbosity::from_flags(c.quiet, c.verbose))
}

/// The load options a command line means (no engine needed).
pub fn options(a: &LoadArgs) -> Result<LoadOptions, CliError> {
    let platforms = match (&a.platform, a.all_platforms) {
        (Some(p), _) => {
            if source::platform_query(p).is_none() {
                return Err(CliError::usage(format!(
                    "--platform `{p}`: expected OS/ARCH[/VARIANT], e.g. linux/amd64"
                )));
            }
            Platforms::One(p.clone())
        }
        (None, true) => Platforms::All,
        (None, false) => Platforms::Node,
    };
    Ok(LoadOptions {
        cluster: a.cluster.cluster.clone(),
        nodes: a.cluster.nodes.clone(),
        images: a.images.clone(),
        archives: a.archive.clone(),
        platforms,
        snapshotter: a.snapshotter.clone().filter(|s| !s.is_empty()),
        force: a.force,
        io_timeout: Some(a.io_timeout).filter(|d| !d.is_zero()),
        timeout: Some(a.timeout).filter(|d| !d.is_zero()),
    })
}

async fn load_cmd(a: LoadArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let opts = options(&a)?;
    if opts.images.is_empty() && opts.archives.is_empty() {
        return Err(CliError::usage(
            "nothing to load: name one or more IMAGEs, or --archive FILE (see --help)",
        ));
    }
    let rep = reporter(&a.cluster);
    let t = std::time::Instant::now();
    let engine = a.cluster.engine.connect().await?;
    rep.detail(format!(
        "engine: {engine} ({:.0} ms)",
        t.elapsed().as_secs_f64() * 1e3
    ));
    // Ctrl-C drops the load: its connections close, so every `ctr import` still reading gets
    // a cut-off stream and keeps nothing; what finished earlier stays, and a re-run converges.
    // Every exec and the source are bounded by the time limit themselves; this only catches
    // an engine call that would outlast it.
    let backstop = async {
        match opts.timeout {
            Some(t) => tokio::time::sleep(t + std::time::Duration::from_secs(15)).await,
            None => std::future::pending().await,
        }
    };
    let report = tokio::select! {
        r = load::load(&engine, &opts, &rep) => r?,
        _ = backstop => {
            return Err(CliError::failure(format!(
                "timed out: the load did not finish within --timeout {} (the engine stopped \
                 answering?)",
                exec::secs(opts.timeout.unwrap_or_default())
            )));
        }
        _ = tokio::signal::ctrl_c() => {
            return Err(CliError::interrupted(
                "interrupted: imports still streaming were cut off (their nodes keep nothing \
                 of them); images that had finished loading stay; run the same command again \
                 to finish",
            ));
        }
    };
    print_report(&report, a.cluster.json, out)?;
    let failed = report.failed();
    if failed.is_empty() {
        let n = report.results.len();
        let present = report
            .results
            .iter()
            .filter(|r| r.action == Action::AlreadyPresent)
            .count();
        rep.info(format!(
            "done: {} image(s) on {} node(s) of cluster `{}` ({} already present)",
            n / report.nodes.len().max(1),
            report.nodes.len(),
            report.cluster,
            present
        ));
        return Ok(());
    }
    let lines: Vec<String> = failed
        .iter()
        .map(|r| {
            format!(
                "node `{}`, image `{}`: {}",
                r.node,
                r.image,
                r.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    let others = if failed.len() < report.results.len() {
        "\n(the other nodes' results are above)"
    } else {
        ""
    };
    Err(CliError::failure(format!(
        "loading failed on {} of {} node/image pair(s):\n  {}{others}",
        failed.len(),
        report.results.len(),
        lines.join("\n  ")
    )))
}

fn io_err(e: std::io::Error) -> CliError {
    CliError::failure(format!("writing the results failed: {e}"))
}

/// `NODE IMAGE RESULT BYTES SECONDS` lines, or one JSON document.
pub fn print_report(r: &LoadReport, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    if json {
        // The one JSON shape: `tool`, and each result's `status` (the RESULT column; `action`
        // is its old name, kept for now).
        let mut doc = serde_json::to_value(r).map_err(|e| CliError::failure(e.to_string()))?;
        doc["tool"] = "kind-load".into();
        if let Some(rows) = doc["results"].as_array_mut() {
            for row in rows {
                row["status"] = row["action"].clone();
            }
        }
        writeln!(out, "{}", e2e_core::json::to_text(&doc).trim_end()).map_err(io_err)?;
    } else {
        for row in &r.results {
            writeln!(
                out,
                "{} {} {} {} {:.3}",
                row.node,
                row.image,
                row.action.as_str(),
                row.bytes,
                row.seconds
            )
            .map_err(io_err)?;
        }
    }
    out.flush().map_err(io_err)
}

async fn images(c: &ClusterArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let engine = c.engine.connect().await?;
    let listing = load::list_images(&engine, &c.cluster, &c.nodes).await?;
    print_listing(&listing, c.json, out)?;
    let broken: Vec<String> = listing
        .iter()
        .filter_map(|n| n.error.as_ref().map(|e| format!("{}: {e}", n.node)))
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(format!(
            "cannot read the images of:\n  {}",
            broken.join("\n  ")
        )))
    }
}

/// `NODE NAME IMAGE-ID` lines, or JSON.
pub fn print_listing(l: &[NodeListing], json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    if json {
        // One result per node: `ok` or `failed` (its `error`); listing takes no time worth
        // reporting per node.
        let rows = l
            .iter()
            .map(|n| {
                let mut v = serde_json::to_value(n).unwrap_or_default();
                v["status"] = if n.error.is_some() { "failed" } else { "ok" }.into();
                v["seconds"] = 0.0.into();
                v
            })
            .collect();
        let doc = e2e_core::json::document("kind-load", rows, serde_json::Value::Null);
        out.write_all(e2e_core::json::to_text(&doc).as_bytes())
            .map_err(io_err)?;
    } else {
        for n in l {
            for i in &n.images {
                writeln!(out, "{} {} {}", n.node, i.name, i.ids.join(",")).map_err(io_err)?;
            }
        }
    }
    out.flush().map_err(io_err)
}

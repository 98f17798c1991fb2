//! `image-build`: build container images through the Docker or Podman engine API (bollard),
//! several in parallel, each labelled so that `image-build prune` can clean up.
//!
//! Modules: [`spec`] (what to build), [`ignore`] (`.dockerignore` with Docker's semantics),
//! [`context`] (the context walk and streamed tar), [`labels`], [`build`] (one build),
//! [`run`] (many, bounded, cancellable), [`progress`] (stderr), [`prune`].

pub mod build;
pub mod cli;
pub mod context;
pub mod ignore;
pub mod labels;
pub mod progress;
pub mod prune;
pub mod push;
pub mod run;
pub mod spec;

use clap::CommandFactory;
use cli::{BuildArgs, Cli, Command, PruneArgs};
use e2e_core::report::{Reporter, Verbosity};
use e2e_core::CliError;
use e2e_engine::runtime;
use std::io::Write;

/// Runs the parsed command line, writing results to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Some(Command::Completions { shell }) => {
            e2e_core::cli::write_completions(shell, Cli::command(), "image-build", out)
        }
        Some(Command::Man { out_dir }) => {
            e2e_core::clidoc::write_man_pages(Cli::command(), &out_dir, out)
        }
        Some(Command::Prune(args)) => runtime()?.block_on(prune_cmd(args, out)),
        None => runtime()?.block_on(build_cmd(cli.build, out)),
    }
}

fn write_out(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::failure(format!("cannot write to stdout: {e}")))
}

/// Collects the images to build from the flags, `--image` and `--spec`.
pub fn specs_from_args(args: &BuildArgs) -> Result<Vec<spec::ImageSpec>, CliError> {
    let mut defaults = spec::Defaults {
        target: args.target.clone(),
        platform: args.platform.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        ..Default::default()
    };
    for a in &args.build_args {
        if let Some((k, v)) = spec::parse_kv(a, "build arg")? {
            defaults.build_args.insert(k, v);
        }
    }
    for l in &args.labels {
        if let Some((k, v)) = spec::parse_kv(l, "label")? {
            defaults.labels.insert(k, v);
        }
    }
    let mut raw = Vec::new();
    if let Some(tag) = &args.tag {
        raw.push(spec::RawSpec {
            tag: tag.clone(),
            context: Some(args.context.clone()),
            file: args.file.clone(),
            ..Default::default()
        });
    } else if args.file.is_some() {
        return Err(CliError::usage(
            "--file needs --tag (or give file= inside an --image spec)",
        ));
    }
    for i in &args.images {
        if !i.trim().is_empty() {
            raw.push(spec::parse_image_flag(i)?);
        }
    }
    if let Some(f) = &args.spec {
        raw.extend(spec::read_spec_file(f)?);
    }
    if raw.is_empty() {
        return Err(CliError::usage(
            "nothing to build: give --tag REF (with --context/--file), --image SPEC or --spec FILE; see --help",
        ));
    }
    spec::resolve(raw, &defaults)
}

async fn build_cmd(args: BuildArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let specs = specs_from_args(&args)?;
    labels::source_date_epoch().map_err(CliError::usage)?;
    if args.print_digest && !args.push {
        return Err(CliError::usage(
            "--print-digest needs --push (the digest is what the registry stored)",
        ));
    }
    let reporter = Reporter::new(
        "image-build",
        Verbosity::from_flags(args.verbosity.quiet, args.verbosity.verbose),
    );
    let engine = args.engine.connect().await?;
    reporter.detail(format!("engine: {engine}"));
    let jobs = args
        .jobs
        .map(|j| j as usize)
        .unwrap_or_else(run::default_jobs)
        .min(specs.len());
    reporter.info(format!(
        "building {} image(s) with {engine}, {jobs} at a time",
        specs.len()
    ));
    let mut env = build::BuildEnv::new(
        engine.client.clone(),
        engine.flavor,
        args.consumer.clone(),
        args.skip_existing,
        (!args.timeout.is_zero()).then_some(args.timeout),
    );
    env.endpoint = Some(engine.endpoint.clone());
    if args.push {
        env.push = Some(push::PushEnv::new(
            engine.client.clone(),
            engine.flavor,
            (!args.push_timeout.is_zero()).then_some(args.push_timeout),
        ));
    }
    let ui = progress::Ui::new(reporter);
    let (results, ending) = run::run_all(env, specs, jobs, args.fail_fast, ui).await;

    if args.json {
        let rows = results
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CliError::failure(format!("cannot encode results: {e}")))?;
        let doc = e2e_core::json::document("image-build", rows, serde_json::Value::Null);
        write_out(out, &e2e_core::json::to_text(&doc))?;
    } else {
        let mut text = String::new();
        for r in results.iter().filter(|r| r.ok()) {
            match (&r.digest, args.print_digest) {
                (Some(d), true) => text.push_str(&push::digest_reference(&r.reference, d)),
                _ => text.push_str(&r.reference),
            }
            text.push('\n');
        }
        write_out(out, &text)?;
    }
    if ending == run::Ending::Interrupted {
        return Err(CliError::interrupted(
            "interrupted; unfinished builds were stopped",
        ));
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.ok())
        .map(|r| r.reference.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::failure(format!(
            "{} of {} image(s) not {}: {} (details above)",
            failed.len(),
            results.len(),
            if args.push {
                "built and pushed"
            } else {
                "built"
            },
            failed.join(", ")
        )))
    }
}

/// One prune result in the one JSON shape: `status` is `removed`, `would-remove` (dry run) or
/// `kept`; prune does not time single images, so `seconds` is 0.
fn prune_row(p: &prune::Pruned, dry_run: bool) -> Result<serde_json::Value, CliError> {
    let mut v = serde_json::to_value(p)
        .map_err(|e| CliError::failure(format!("cannot encode results: {e}")))?;
    let status = match (p.removed, dry_run) {
        (true, _) => "removed",
        (false, true) if p.kept_because.is_none() => "would-remove",
        _ => "kept",
    };
    v["status"] = status.into();
    v["seconds"] = 0.0.into();
    Ok(v)
}

async fn prune_cmd(args: PruneArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let reporter = Reporter::new(
        "image-build",
        Verbosity::from_flags(args.verbosity.quiet, args.verbosity.verbose),
    );
    let engine = args.engine.connect().await?;
    let opts = prune::PruneOptions {
        consumer: args.consumer.clone(),
        older_than: args.older_than,
        dry_run: args.dry_run,
    };
    let found = prune::prune(&engine.client, &opts).await?;
    if args.json {
        let rows = found
            .iter()
            .map(|p| prune_row(p, args.dry_run))
            .collect::<Result<Vec<_>, _>>()?;
        let doc = e2e_core::json::document(
            "image-build",
            rows,
            serde_json::json!({"dry_run": args.dry_run}),
        );
        write_out(out, &e2e_core::json::to_text(&doc))?;
    } else {
        let mut text = String::new();
        for p in found.iter().filter(|p| p.removed || args.dry_run) {
            if p.references.is_empty() {
                text.push_str(&p.id);
                text.push('\n');
            }
            for r in &p.references {
                text.push_str(r);
                text.push('\n');
            }
        }
        write_out(out, &text)?;
    }
    for p in found.iter().filter(|p| p.kept_because.is_some()) {
        reporter.warn(format!(
            "kept {}: {}",
            p.name(),
            p.kept_because.as_deref().unwrap_or_default()
        ));
    }
    let bytes: i64 = found
        .iter()
        .filter(|p| p.removed || args.dry_run)
        .map(|p| p.size)
        .sum();
    let n = found.iter().filter(|p| p.removed || args.dry_run).count();
    let scope = match (&args.consumer, args.older_than) {
        (Some(c), Some(d)) => format!(
            " for consumer `{c}` older than {}",
            humantime::format_duration(d)
        ),
        (Some(c), None) => format!(" for consumer `{c}`"),
        (None, Some(d)) => format!(" older than {}", humantime::format_duration(d)),
        (None, None) => String::new(),
    };
    if args.dry_run {
        reporter.info(format!(
            "dry run: would remove {n} image(s){scope} ({}) from {engine}; nothing removed",
            e2e_core::size::human_bytes(bytes.max(0) as u64)
        ));
    } else {
        reporter.info(format!(
            "removed {n} image(s){scope} ({}) from {engine}",
            e2e_core::size::human_bytes(bytes.max(0) as u64)
        ));
    }
    Ok(())
}

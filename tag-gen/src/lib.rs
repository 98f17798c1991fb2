//! `tag-gen`: image references that never collide, in the DD-TEST-001 formats.
//!
//! `infra` tags carry 8 hex digits from the OS random source (32 bits: two runs clash with
//! probability 2^-32 per pair; `--claim-dir` makes a clash impossible among runs sharing a
//! directory). `service` tags carry user, git hash and Unix seconds. `content` tags carry 12 hex
//! digits of a SHA-256 over what the build would send. Everything printed is re-parsed with the
//! OCI grammar before it is printed.

pub mod claim;
pub mod cli;
pub mod content;
pub mod generate;
pub mod output;
pub mod source;

use clap::CommandFactory;
use cli::{Cli, Command, CommonArgs, ContentArgs, Format, InfraArgs, ServiceArgs};
use e2e_core::{CliError, Reference};
use generate::{Generated, Parts};
use std::collections::HashSet;
use std::io::{BufWriter, Write};

/// How many times a clashing random suffix is redrawn before giving up.
const MAX_DRAWS: u32 = 64;

/// Runs one command, writing results to `out` (stdout in the binary).
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Infra(args) => infra(args, out),
        Command::Service(args) => service(args, out),
        Command::Content(args) => content(args, out),
        Command::Check { references } => check(&references, out),
        Command::Parse { reference } => parse(&reference, out),
        Command::Completions { shell } => {
            e2e_core::cli::write_completions(shell, Cli::command(), "tag-gen", out)
        }
        Command::Man { out_dir } => {
            e2e_core::clidoc::write_man_pages(Cli::command(), &out_dir, out)
        }
    }
}

fn infra(args: InfraArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let c = &args.common;
    let registry = generate::registry(&c.registry)?;
    let consumer = generate::tag_part("--consumer", &args.consumer)?;
    let pinned_tag = pin_tag(c)?;
    let pinned_suffix = args
        .suffix
        .as_deref()
        .map(|s| generate::pinned("--suffix (TAG_GEN_SUFFIX)", s))
        .transpose()?;
    let pinned = pinned_tag.is_some() || pinned_suffix.is_some();
    check_count(c, pinned)?;
    let vars = env_vars(c, &args.names)?;
    // Everything that can be refused is checked before the first line is printed.
    let repos = args
        .names
        .iter()
        .map(|n| generate::repository("infrastructure name", n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    let mut lines = Lines::new(out, format(c) == Format::Json);
    for ((name, var), repo) in args.names.iter().zip(&vars).zip(repos) {
        for i in 0..c.count {
            let mut draws = 0;
            let g = loop {
                draws += 1;
                let suffix = match &pinned_suffix {
                    Some(s) => s.clone(),
                    None => source::random_suffix()?,
                };
                let (tag, parts) = match &pinned_tag {
                    Some(t) => (t.clone(), Parts::Pinned),
                    None => (
                        format!("{consumer}-{suffix}"),
                        Parts::Infra {
                            consumer: consumer.clone(),
                            suffix,
                        },
                    ),
                };
                let g = generate::assemble(
                    registry.as_deref(),
                    repo.clone(),
                    tag,
                    name,
                    tag_arg(&pinned_tag, "--consumer"),
                    parts,
                )?;
                if is_fresh(c, &g, &mut seen)? {
                    break g;
                }
                if pinned || draws >= MAX_DRAWS {
                    return Err(CliError::failure(format!(
                        "`{}` is already claimed in {}; {}",
                        g.reference,
                        claim_dir_display(c),
                        if pinned {
                            "unset the pinned tag/suffix or use another claim directory"
                        } else {
                            "the claim directory is full of clashes; clean it"
                        }
                    )));
                }
            };
            lines.push(&output::render(&g, format(c), &numbered(var, i, c.count)))?;
        }
    }
    lines.finish()
}

fn service(args: ServiceArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let c = &args.common;
    let registry = generate::registry(&c.registry)?;
    let pinned_tag = pin_tag(c)?;
    if c.count > 1 {
        return Err(CliError::usage(
            "--count applies to `infra` only: a service tag has no random part, so every copy \
             would be the same",
        ));
    }
    let user = match &args.user {
        Some(u) => generate::tag_part("--user", u)?,
        None => generate::tag_part("user", &source::user()).unwrap_or_else(|_| "unknown".into()),
    };
    let git = match &args.git_hash {
        Some(h) => generate::pinned("--git-hash", &h.to_ascii_lowercase())?,
        None => source::git_hash(args.git_dir.as_deref()),
    };
    let timestamp = args.timestamp.unwrap_or_else(source::now);
    let vars = env_vars(c, &args.names)?;
    let mut seen = HashSet::new();
    let mut lines = Vec::new();
    for (name, var) in args.names.iter().zip(&vars) {
        let svc = generate::tag_part("service name", name)?;
        let repo =
            generate::repository("--prefix + service name", &format!("{}{name}", args.prefix))?;
        let (tag, parts) = match &pinned_tag {
            Some(t) => (t.clone(), Parts::Pinned),
            None => (
                format!("{svc}-{user}-{git}-{timestamp}"),
                Parts::Service {
                    user: user.clone(),
                    git: git.clone(),
                    timestamp,
                },
            ),
        };
        let g = generate::assemble(
            registry.as_deref(),
            repo,
            tag,
            name,
            tag_arg(&pinned_tag, "the service name or --user"),
            parts,
        )?;
        if !is_fresh(c, &g, &mut seen)? {
            return Err(CliError::failure(format!(
                "`{}` is already claimed in {}; wait a second (the tag holds Unix seconds) or \
                 use another claim directory",
                g.reference,
                claim_dir_display(c)
            )));
        }
        lines.push(output::render(&g, format(c), var));
    }
    write_lines(out, &lines, format(c) == Format::Json)
}

fn content(args: ContentArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let c = &args.common;
    let registry = generate::registry(&c.registry)?;
    let consumer = generate::tag_part("--consumer", &args.consumer)?;
    let pinned_tag = pin_tag(c)?;
    if c.count > 1 {
        return Err(CliError::usage(
            "--count applies to `infra` only: a content tag is the same for the same inputs",
        ));
    }
    if c.claim_dir.is_some() {
        return Err(CliError::usage(
            "--claim-dir does not apply to `content`: equal inputs must give the equal \
             reference on every run (that is what lets a re-run reuse the image)",
        ));
    }
    let jobs = content::jobs(&args)?;
    let names: Vec<String> = jobs.iter().map(|j| j.repository.clone()).collect();
    let vars = env_vars(c, &names)?;
    let mut lines = Vec::new();
    for (job, var) in jobs.iter().zip(&vars) {
        let d = content::digest_job(job)?;
        let (tag, parts) = match &pinned_tag {
            Some(t) => (t.clone(), Parts::Pinned),
            None => (
                format!("{consumer}-{}", &d.digest[..content::TAG_HEX]),
                Parts::Content {
                    consumer: consumer.clone(),
                    digest: d.digest,
                    files: d.files,
                    bytes: d.bytes,
                },
            ),
        };
        let reg = job.registry.clone().or_else(|| registry.clone());
        let g = generate::assemble(
            reg.as_deref(),
            job.repository.clone(),
            tag,
            &job.name,
            tag_arg(&pinned_tag, "--consumer"),
            parts,
        )?;
        lines.push(output::render(&g, format(c), var));
    }
    write_lines(out, &lines, format(c) == Format::Json)
}

fn check(references: &[String], out: &mut dyn Write) -> Result<(), CliError> {
    let mut bad = 0;
    for r in references {
        match Reference::parse(r) {
            Ok(_) => writeln!(out, "{r}").map_err(write_err)?,
            Err(e) => {
                bad += 1;
                eprintln!("tag-gen: {e}");
            }
        }
    }
    if bad > 0 {
        return Err(CliError::failure(format!(
            "{bad} of {} references are invalid",
            references.len()
        )));
    }
    Ok(())
}

fn parse(reference: &str, out: &mut dyn Write) -> Result<(), CliError> {
    let r = Reference::parse(reference).map_err(|e| CliError::failure(e.to_string()))?;
    let json = serde_json::json!({
        "reference": reference,
        "registry": r.registry,
        "repository": r.repository,
        "name": r.name(),
        "tag": r.tag,
        "digest": r.digest,
    });
    writeln!(out, "{json}").map_err(write_err)
}

fn pin_tag(c: &CommonArgs) -> Result<Option<String>, CliError> {
    c.tag
        .as_deref()
        .map(|t| generate::pinned("--tag (TAG_GEN_TAG)", t))
        .transpose()
}

/// The argument to blame when a tag is unusable.
fn tag_arg<'a>(pinned_tag: &Option<String>, otherwise: &'a str) -> &'a str {
    if pinned_tag.is_some() {
        "--tag (TAG_GEN_TAG)"
    } else {
        otherwise
    }
}

fn check_count(c: &CommonArgs, pinned: bool) -> Result<(), CliError> {
    if c.count > 1 && pinned {
        return Err(CliError::usage(format!(
            "--count {} with a pinned tag or suffix would print the same reference {} times",
            c.count, c.count
        )));
    }
    Ok(())
}

/// One variable name per name for `--format env` (user-given or derived); two names that
/// would set the same variable are refused, since the later line would silently win.
fn env_vars(c: &CommonArgs, names: &[String]) -> Result<Vec<String>, CliError> {
    let vars = given_or_default_vars(c, names)?;
    if format(c) == Format::Env {
        let mut first: std::collections::HashMap<&str, &str> = Default::default();
        for (name, var) in names.iter().zip(&vars) {
            if let Some(other) = first.insert(var, name) {
                return Err(CliError::usage(if c.vars.is_empty() {
                    format!(
                        "--format env: `{other}` and `{name}` would both set {var}; give each \
                         a variable of its own with --var (one per name, in order)"
                    )
                } else {
                    format!("--var {var} is given for both `{other}` and `{name}`")
                }));
            }
        }
    }
    Ok(vars)
}

fn given_or_default_vars(c: &CommonArgs, names: &[String]) -> Result<Vec<String>, CliError> {
    if c.vars.is_empty() {
        return Ok(names.iter().map(|n| output::default_var(n)).collect());
    }
    if c.vars.len() != names.len() {
        return Err(CliError::usage(format!(
            "--var was given {} time(s) for {} name(s); give one variable name per name",
            c.vars.len(),
            names.len()
        )));
    }
    for v in &c.vars {
        output::check_var(v)?;
    }
    Ok(c.vars.clone())
}

fn numbered(var: &str, i: u32, count: u32) -> String {
    if count > 1 {
        format!("{var}_{}", i + 1)
    } else {
        var.to_string()
    }
}

fn format(c: &CommonArgs) -> Format {
    if c.json {
        Format::Json
    } else {
        c.format
    }
}

/// True when `g` was not printed before in this run and (with a claim dir) was claimed now.
fn is_fresh(c: &CommonArgs, g: &Generated, seen: &mut HashSet<String>) -> Result<bool, CliError> {
    if !seen.insert(g.reference.clone()) {
        return Ok(false);
    }
    match &c.claim_dir {
        Some(dir) => claim::claim(dir, &g.reference),
        None => Ok(true),
    }
}

fn claim_dir_display(c: &CommonArgs) -> String {
    c.claim_dir
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "this run".into())
}

/// Lines written as they are made (through a buffer), so that `--count 100000` prints its
/// first line at once and memory stays flat; everything refusable is checked before.
/// With `json`, the lines are the results of the one JSON document, streamed the same way.
struct Lines<'a> {
    out: BufWriter<&'a mut dyn Write>,
    json: bool,
    written: usize,
}

impl<'a> Lines<'a> {
    fn new(out: &'a mut dyn Write, json: bool) -> Self {
        Lines {
            out: BufWriter::with_capacity(64 * 1024, out),
            json,
            written: 0,
        }
    }

    fn push(&mut self, line: &str) -> Result<(), CliError> {
        let sep: &[u8] = match (self.json, self.written) {
            (false, _) => b"",
            (true, 0) => output::JSON_HEAD.as_bytes(),
            (true, _) => b",\n",
        };
        let end: &[u8] = if self.json { b"" } else { b"\n" };
        self.written += 1;
        self.out
            .write_all(sep)
            .and_then(|_| self.out.write_all(line.as_bytes()))
            .and_then(|_| self.out.write_all(end))
            .map_err(write_err)
    }

    fn finish(mut self) -> Result<(), CliError> {
        if self.json {
            let head = if self.written == 0 {
                output::JSON_HEAD
            } else {
                ""
            };
            let tail = format!("{head}{}", output::JSON_TAIL);
            self.out.write_all(tail.as_bytes()).map_err(write_err)?;
        }
        self.out.flush().map_err(write_err)
    }
}

/// Writes all lines at once, so a failure half-way prints nothing.
fn write_lines(out: &mut dyn Write, lines: &[String], json: bool) -> Result<(), CliError> {
    let text = if json {
        format!(
            "{}{}{}",
            output::JSON_HEAD,
            lines.join(",\n"),
            output::JSON_TAIL
        )
    } else {
        let mut text = lines.join("\n");
        text.push('\n');
        text
    };
    out.write_all(text.as_bytes()).map_err(write_err)
}

fn write_err(e: std::io::Error) -> CliError {
    CliError::failure(format!("cannot write to stdout: {e}"))
}

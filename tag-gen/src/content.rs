//! `tag-gen content`: a tag from the digest of a build's inputs, computed over the very plan
//! image-build sends (crate `e2e-context`), so that equal inputs give the equal reference and a
//! pipeline can reuse an image that exists already.

use crate::cli::ContentArgs;
use e2e_context::digest::{self, BuildInputs};
use e2e_context::spec::{self, RawSpec};
use e2e_core::{CliError, Reference};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Hex digits of the digest put in the tag: 48 bits, so two different inputs share a tag with
/// probability 2^-48 per pair (among a million images, about 2 in a billion).
pub const TAG_HEX: usize = 12;

/// One image whose inputs are to be digested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// As given: a NAME argument or a spec's `tag`.
    pub name: String,
    /// Registry from a spec's reference (`None`: use --registry).
    pub registry: Option<String>,
    /// Repository path, sanitised.
    pub repository: String,
    pub context: PathBuf,
    pub file: Option<PathBuf>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
}

/// What was digested for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub digest: String,
    pub files: usize,
    pub bytes: u64,
}

/// The images to digest: NAME arguments with the flags, then `--image` specs, then the spec
/// file (their own fields win over the flags, build args are merged, as in image-build).
pub fn jobs(args: &ContentArgs) -> Result<Vec<Job>, CliError> {
    let mut defaults = BTreeMap::new();
    for a in &args.build_args {
        if let Some((k, v)) = spec::parse_kv(a, "build arg")? {
            defaults.insert(k, v);
        }
    }
    let mut raw: Vec<(RawSpec, bool)> = Vec::new();
    for n in &args.names {
        raw.push((
            RawSpec {
                tag: n.clone(),
                context: Some(args.context.clone()),
                file: args.file.clone(),
                ..Default::default()
            },
            false,
        ));
    }
    for i in &args.images {
        if !i.trim().is_empty() {
            raw.push((spec::parse_image_flag(i)?, true));
        }
    }
    if let Some(f) = &args.spec {
        raw.extend(spec::read_spec_file(f)?.into_iter().map(|r| (r, true)));
    }
    if raw.is_empty() {
        return Err(CliError::usage(
            "no image: give NAME (with --context/--file), --image SPEC or --spec FILE; see --help",
        ));
    }
    let mut out = Vec::new();
    for (r, from_spec) in raw {
        let (registry, repository) = if from_spec {
            spec_name(&r.tag)?
        } else {
            (None, crate::generate::repository("image name", &r.tag)?)
        };
        let mut build_args = defaults.clone();
        build_args.extend(r.build_args);
        out.push(Job {
            name: r.tag,
            registry,
            repository,
            context: r.context.unwrap_or_else(|| PathBuf::from(".")),
            file: r.file,
            build_args,
            target: r.target.or_else(|| args.target.clone()),
            platform: r.platform.or_else(|| args.platform.clone()),
        });
    }
    Ok(out)
}

/// Registry and repository of a spec's `tag`: a valid reference keeps its registry and
/// repository (its tag is replaced); anything else is a name, sanitised like NAME.
fn spec_name(tag: &str) -> Result<(Option<String>, String), CliError> {
    if tag.trim().is_empty() {
        return Err(CliError::usage("an image spec has an empty tag (its name)"));
    }
    match Reference::parse(tag) {
        Ok(r) => Ok((r.registry.clone(), r.repository.clone())),
        Err(_) => Ok((None, crate::generate::repository("image name", tag)?)),
    }
}

/// Digests one image's inputs: the context planned exactly as image-build plans it.
pub fn digest_job(job: &Job) -> Result<Digested, CliError> {
    let plan = e2e_context::plan(&job.context, job.file.as_deref())
        .map_err(|e| CliError::usage(format!("{}: {e}", job.name)))?;
    let dockerfile = match &plan.injected_dockerfile {
        Some(b) => b.clone(),
        None => std::fs::read(plan.root.join(&plan.dockerfile_name)).map_err(|e| {
            CliError::failure(format!(
                "{}: cannot read the Dockerfile `{}`: {e}",
                job.name,
                plan.root.join(&plan.dockerfile_name).display()
            ))
        })?,
    };
    let inputs = BuildInputs {
        dockerfile,
        build_args: job.build_args.clone(),
        target: job.target.clone(),
        platform: job.platform.clone(),
    };
    let items =
        digest::manifest(&plan).map_err(|e| CliError::failure(format!("{}: {e}", job.name)))?;
    Ok(Digested {
        digest: digest::digest_items(&items, &inputs),
        files: items.len(),
        bytes: items.iter().map(|i| i.size).sum(),
    })
}

//! Command-line interface, following docs/conventions.md: every flag reads an environment
//! variable, booleans take 1/0/true/false/yes/no/on/off, the output flags are global (before or
//! after the subcommand).

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use e2e_core::cli::{ArgAlias, Compat, EnvAlias};
use e2e_core::values::parse_bool;
use std::path::PathBuf;

/// Old names still accepted, with a warning (README "Changelog").
pub const COMPAT: Compat = Compat {
    env: &[
        EnvAlias {
            var: "E2E_CONSUMER",
            old: "TAG_GEN_CONSUMER",
            deprecated: true,
        },
        EnvAlias {
            var: "E2E_REGISTRY",
            old: "TAG_GEN_REGISTRY",
            deprecated: true,
        },
        EnvAlias {
            var: "TAG_GEN_MAN_OUT_DIR",
            old: "TAG_GEN_MAN_DIR",
            deprecated: true,
        },
    ],
    args: &[
        ArgAlias {
            old: "-c",
            new: "--consumer",
            takes_value: true,
            after: "",
        },
        ArgAlias {
            old: "-n",
            new: "--count",
            takes_value: true,
            after: "",
        },
    ],
};

const EXAMPLES: &str = "\
Examples:
  # One infrastructure image per consumer, 8 random hex digits:
  tag-gen infra datastorage --consumer aianalysis
    localhost/datastorage:aianalysis-1884d123

  # Several at once, as make variables for `eval` or a make include:
  tag-gen infra --consumer aianalysis datastorage holmesgpt-api --format env
    DATASTORAGE_IMAGE=localhost/datastorage:aianalysis-5f0c2e9a
    HOLMESGPT_API_IMAGE=localhost/holmesgpt-api:aianalysis-0b7d11c4

  # DD-TEST-001 service tag:
  tag-gen service aianalysis
    localhost/kubernaut-aianalysis:aianalysis-alice-abc123f-1734278400

  # Reproducible re-runs: pin the suffix (or the whole tag with TAG_GEN_TAG):
  TAG_GEN_SUFFIX=deadbeef tag-gen infra datastorage --consumer aianalysis

  # Validate and take apart references:
  tag-gen check localhost:5000/team/app:v1
  tag-gen parse quay.io/jordigilh/redis:7-alpine

Exit codes: 0 success, 1 failure (invalid reference in `check`, claim clash),
2 usage error (unusable input, bad flags).";

/// Print unique, valid container image references (DD-TEST-001 formats).
///
/// References go to stdout, one per line; errors to stderr.
#[derive(Debug, Parser)]
#[command(name = "tag-gen", version, after_long_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The output flags, accepted before the subcommand too (`tag-gen -o env infra ...`);
    /// clap hands their values to the subcommand's own copy, which is what is read.
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Infrastructure image: `<registry>/<infrastructure>:<consumer>-<8 random hex>`.
    #[command(after_long_help = EXAMPLES)]
    Infra(InfraArgs),
    /// Service image: `<registry>/<prefix><service>:<service>-<user>-<git7>-<unix seconds>`.
    #[command(after_long_help = EXAMPLES)]
    Service(ServiceArgs),
    /// Content image: `<registry>/<name>:<consumer>-<12 hex>`, the hex digits from a SHA-256 over
    /// exactly what image-build would send for the build (the files that survive
    /// `.dockerignore` with path, mode, link target and content, the Dockerfile, build args,
    /// target, platform): equal inputs give the equal reference, on any checkout and any day.
    #[command(after_long_help = CONTENT_EXAMPLES)]
    Content(ContentArgs),
    /// Validate references against the OCI distribution grammar; valid ones are echoed on
    /// stdout, each invalid one is explained on stderr (exit 1 if any is invalid).
    Check {
        #[arg(required = true, value_name = "REFERENCE")]
        references: Vec<String>,
    },
    /// Print a reference's registry, repository, tag and digest as JSON.
    Parse {
        #[arg(value_name = "REFERENCE")]
        reference: String,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (roff) for tag-gen and its subcommands into a directory.
    Man {
        #[arg(long, default_value = "target/man", env = "TAG_GEN_MAN_OUT_DIR")]
        out_dir: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct InfraArgs {
    /// Infrastructure image names (e.g. datastorage); one reference is printed per name.
    #[arg(required = true, value_name = "INFRASTRUCTURE")]
    pub names: Vec<String>,
    /// The suite that consumes the images (first part of the tag).
    #[arg(long, env = "E2E_CONSUMER")]
    pub consumer: String,
    /// Pin the random suffix (reproducible re-runs).
    #[arg(long, env = "TAG_GEN_SUFFIX", conflicts_with = "tag")]
    pub suffix: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

const CONTENT_EXAMPLES: &str = "\
Examples:
  # The tag changes only when what the build would send changes:
  tag-gen content datastorage --consumer aianalysis --context build/ds --build-arg GOARCH=amd64
    localhost/datastorage:aianalysis-3f9a0c41d2e7

  # Every image of an image-build spec file (or --image specs) in one call, as make variables:
  tag-gen content --consumer aianalysis --spec images.yaml -o env
  tag-gen content --consumer aianalysis -i tag=datastorage,context=build/ds -o env

Exit codes: 0 success, 1 a context file cannot be read, 2 usage error (bad context,
Dockerfile, .dockerignore or spec).";

#[derive(Debug, Args)]
pub struct ContentArgs {
    /// Image names; each gets a reference for the build given by --context, --file,
    /// --build-arg, --target and --platform.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// The suite that consumes the images (first part of the tag).
    #[arg(long, env = "E2E_CONSUMER")]
    pub consumer: String,
    /// Build context directory, as given to image-build.
    #[arg(long, env = "TAG_GEN_CONTEXT", value_name = "DIR", default_value = ".")]
    pub context: PathBuf,
    /// Dockerfile, relative to the current directory as in image-build [default: CONTEXT/Dockerfile].
    #[arg(long, short = 'f', env = "TAG_GEN_FILE", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Build argument KEY=VALUE (repeatable; a bare KEY takes its value from the environment).
    #[arg(
        long = "build-arg",
        env = "TAG_GEN_BUILD_ARGS",
        value_delimiter = '\n',
        value_name = "K=V"
    )]
    pub build_args: Vec<String>,
    /// Dockerfile stage to build.
    #[arg(long, env = "TAG_GEN_TARGET")]
    pub target: Option<String>,
    /// Platform of the build (e.g. linux/amd64).
    #[arg(long, env = "TAG_GEN_PLATFORM")]
    pub platform: Option<String>,
    /// An image as image-build's --image takes it (`tag=NAME,context=DIR,file=...,build-arg=K=V`);
    /// repeatable. Its fields win over the flags above.
    #[arg(
        long = "image",
        short = 'i',
        env = "TAG_GEN_IMAGES",
        value_delimiter = ';',
        value_name = "SPEC"
    )]
    pub images: Vec<String>,
    /// A spec file as image-build reads it (YAML or JSON); one reference per image, named by
    /// its `tag` (registry and repository kept, the tag replaced).
    #[arg(long, env = "TAG_GEN_SPEC", value_name = "FILE")]
    pub spec: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Service names (e.g. aianalysis); one reference is printed per name.
    #[arg(required = true, value_name = "SERVICE")]
    pub names: Vec<String>,
    /// Repository prefix put before the service name.
    #[arg(long, env = "TAG_GEN_PREFIX", default_value = "kubernaut-")]
    pub prefix: String,
    /// User part of the tag [default: $USER, then the OS account, then `unknown`].
    #[arg(long, env = "TAG_GEN_USER")]
    pub user: Option<String>,
    /// Repository whose HEAD gives the git hash [default: the current directory].
    #[arg(long, short = 'C', env = "TAG_GEN_GIT_DIR", value_name = "DIR")]
    pub git_dir: Option<PathBuf>,
    /// Git hash part of the tag [default: `git rev-parse --short=7 HEAD`, else `unknown`].
    #[arg(long, env = "TAG_GEN_GIT_HASH")]
    pub git_hash: Option<String>,
    /// Unix seconds for the tag [default: now].
    #[arg(long, env = "TAG_GEN_TIMESTAMP")]
    pub timestamp: Option<u64>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Registry host put in front of the repository; empty for none.
    #[arg(long, global = true, env = "E2E_REGISTRY", default_value = "localhost")]
    pub registry: String,
    /// Pin the whole tag (reproducible re-runs); never `latest`.
    #[arg(long, global = true, env = "TAG_GEN_TAG")]
    pub tag: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, env = "TAG_GEN_FORMAT", value_enum, default_value_t = Format::Ref)]
    pub format: Format,
    /// Shorthand for `--format json`.
    #[arg(long, global = true, env = "TAG_GEN_JSON", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub json: bool,
    /// Variable name(s) for `--format env`, one per name given [default: NAME_IMAGE].
    #[arg(
        long = "var",
        global = true,
        env = "TAG_GEN_VAR",
        value_delimiter = ',',
        value_name = "VAR"
    )]
    pub vars: Vec<String>,
    /// How many references to print per name (at most 100000; printed as they are made).
    #[arg(long, global = true, env = "TAG_GEN_COUNT", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,
    /// Claim each reference in this directory (one file per reference, created exclusively)
    /// and redraw on a clash: no two tag-gen runs sharing the directory print the same one.
    #[arg(long, global = true, env = "TAG_GEN_CLAIM_DIR", value_name = "DIR")]
    pub claim_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Full reference: `localhost/datastorage:aianalysis-1884d123`.
    Ref,
    /// Tag only: `aianalysis-1884d123`.
    Tag,
    /// Repository with registry: `localhost/datastorage`.
    Repo,
    /// One JSON document: `{"tool": "tag-gen", "results": [...]}`.
    Json,
    /// `NAME=reference` lines for shell `eval` or a make include.
    Env,
}

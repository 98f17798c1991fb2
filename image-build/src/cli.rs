//! Command-line interface, following docs/conventions.md: every flag reads an environment
//! variable, booleans take 1/0/true/false/yes/no/on/off, durations are humantime (a bare
//! number is seconds), and --json, -q, -v, --engine, --host go before or after `prune`.

use clap::{ArgAction, Args, Parser, Subcommand};
use e2e_core::cli::{Compat, EnvAlias};
use e2e_engine::EngineArgs;
use std::path::PathBuf;

/// Old names still accepted, with a warning (README "Changelog").
pub const COMPAT: Compat = Compat {
    env: &[
        EnvAlias {
            var: "IMAGE_BUILD_BUILD_ARGS",
            old: "IMAGE_BUILD_ARGS",
            deprecated: true,
        },
        EnvAlias {
            var: "IMAGE_BUILD_MAN_OUT_DIR",
            old: "IMAGE_BUILD_MAN_DIR",
            deprecated: true,
        },
    ],
    args: &[],
};

const EXAMPLES: &str = "\
Examples:
  # One image (flags as in `docker build`); the reference is printed on stdout:
  image-build --tag localhost/datastorage:e2e-1234 --file docker/data-storage.Dockerfile \\
      --context . --build-arg GOARCH=amd64 --target development --consumer aianalysis

  # Several images at once, at most 3 building at a time, log lines prefixed by image:
  image-build --jobs 3 --consumer aianalysis --no-cache \\
      --image tag=localhost/datastorage:e2e-1,file=docker/data-storage.Dockerfile \\
      --image tag=localhost/aianalysis:e2e-1,file=docker/aianalysis.Dockerfile,build-arg=GOFLAGS=-cover \\
      --image 'tag=localhost/mock-llm:e2e-1,context=test/services/mock-llm,file=test/services/mock-llm/go.Dockerfile'

  # The same from a file (YAML or JSON; paths relative to the file):
  #   images:
  #     - tag: localhost/datastorage:e2e-1
  #       file: docker/data-storage.Dockerfile
  #       build-args: {GOARCH: amd64}
  image-build --spec images.yaml --json

  # Through Podman's API (images land as localhost/NAME:TAG):
  image-build --engine podman --tag app:dev --context .

  # Build and push to a registry; print what to deploy, pinned by digest:
  image-build --push --print-digest --tag localhost:5000/team/app:e2e-1 --context .
  # localhost:5000/team/app@sha256:3f1c...

  # Do not rebuild what exists; then clean up a suite's images older than a day:
  image-build --skip-existing --tag localhost/app:e2e-1 --context .
  image-build prune --consumer aianalysis --older-than 24h --dry-run

--image spec: comma-separated KEY=VALUE fields: tag (or a bare first field), context,
file, target, platform, build-arg=K=V and label=K=V (repeatable), no-cache, pull. Put a
field in double quotes to use a comma in it. Paths are relative to the current directory,
like `docker build -f`. Flags given outside --image (--build-arg, --label, --target,
--platform, --no-cache, --pull) apply to every image; an --image field overrides them.

Labels on every image: io.kubernaut.e2e.{tool,consumer,created,git-commit} and
org.opencontainers.image.{created,revision,source}; `prune` selects by them.

--push: credentials come from Docker's config ($DOCKER_CONFIG/config.json or
~/.docker/config.json: auths, credHelpers, credsStore) and, on Podman, first from its auth
file ($REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
~/.config/containers/auth.json); they are never printed.

Exit codes: 0 all images built (or skipped as existing) and pushed if asked, 1 a build or push
failed or timed out, or the engine is unreachable, 2 usage error, 130 interrupted (Ctrl-C).";

/// Build container images through the Docker or Podman engine API, several in parallel,
/// labelled for cleanup.
///
/// Built references go to stdout, one per line, in the order given (--json: one document);
/// progress and errors go to stderr.
#[derive(Debug, Parser)]
#[command(
    name = "image-build",
    version,
    after_long_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Remove images built by image-build, selected by their labels.
    #[command(after_long_help = PRUNE_EXAMPLES)]
    Prune(PruneArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (roff) for image-build and its subcommands into a directory.
    Man {
        #[arg(long, default_value = "target/man", env = "IMAGE_BUILD_MAN_OUT_DIR")]
        out_dir: PathBuf,
    },
}

const PRUNE_EXAMPLES: &str = "\
Examples:
  image-build prune --consumer aianalysis                 # every image built for aianalysis
  image-build prune --older-than 24h                      # any consumer, built over a day ago
  image-build prune --consumer aianalysis --dry-run --json

Removed (or, with --dry-run, would-be-removed) references go to stdout, one per line.
Images a container still uses are kept and reported. Exit codes: 0 done, 1 engine error,
2 usage error.";

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Reference of the image to build (one image; add more with --image or --spec).
    #[arg(long, short = 't', env = "IMAGE_BUILD_TAG", value_name = "REF")]
    pub tag: Option<String>,
    /// Dockerfile, relative to the current directory [default: CONTEXT/Dockerfile].
    #[arg(long, short = 'f', env = "IMAGE_BUILD_FILE", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Build context directory.
    #[arg(
        long,
        short = 'c',
        env = "IMAGE_BUILD_CONTEXT",
        value_name = "DIR",
        default_value = "."
    )]
    pub context: PathBuf,
    /// An image to build: `tag=REF,context=DIR,file=PATH,...` (see below). Repeatable; the
    /// env var takes several separated by `;`.
    #[arg(
        long = "image",
        short = 'i',
        env = "IMAGE_BUILD_IMAGES",
        value_delimiter = ';',
        value_name = "SPEC"
    )]
    pub images: Vec<String>,
    /// A YAML or JSON file listing images (a list, or `images:`), each with tag, context,
    /// file, target, build-args, labels, platform, no-cache, pull.
    #[arg(long, env = "IMAGE_BUILD_SPEC", value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Build argument `KEY=VALUE` (a bare `KEY` takes the value from the environment), for
    /// every image. Repeatable; the env var takes several, one per line.
    #[arg(
        long = "build-arg",
        env = "IMAGE_BUILD_BUILD_ARGS",
        value_delimiter = '\n',
        value_name = "KEY=VALUE"
    )]
    pub build_args: Vec<String>,
    /// Target stage to build, for every image without its own.
    #[arg(long, env = "IMAGE_BUILD_TARGET", value_name = "STAGE")]
    pub target: Option<String>,
    /// Extra label `KEY=VALUE` for every image. Repeatable; the env var takes several, one
    /// per line.
    #[arg(
        long = "label",
        env = "IMAGE_BUILD_LABELS",
        value_delimiter = '\n',
        value_name = "KEY=VALUE"
    )]
    pub labels: Vec<String>,
    /// Do not use the engine's build cache.
    #[arg(long, env = "IMAGE_BUILD_NO_CACHE", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub no_cache: bool,
    /// Platform to build for (`linux/amd64`), if the engine supports it.
    #[arg(long, env = "IMAGE_BUILD_PLATFORM", value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Let the engine pull newer base images (off by default: E2E builds use local bases).
    #[arg(long, env = "IMAGE_BUILD_PULL", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub pull: bool,
    /// Who the images are for (the suite, e.g. aianalysis); recorded in a label for prune.
    #[arg(long, env = "E2E_CONSUMER", default_value = "adhoc")]
    pub consumer: String,
    /// How many images build at once [default: number of CPUs, at least 2, at most 8].
    #[arg(long, short = 'j', env = "IMAGE_BUILD_JOBS", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Stop the other builds as soon as one fails (by default they finish).
    #[arg(long, env = "IMAGE_BUILD_FAIL_FAST", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub fail_fast: bool,
    /// Time limit per build (`15m`, `90s`, `1h`); `0` for none.
    #[arg(long, env = "IMAGE_BUILD_TIMEOUT", default_value = "15m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Do not build an image whose reference already exists in the engine (reported as
    /// cached).
    #[arg(long, env = "IMAGE_BUILD_SKIP_EXISTING", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub skip_existing: bool,
    /// Print one JSON document (reference, status, id, size, seconds, cached per image).
    #[arg(long, global = true, env = "IMAGE_BUILD_JSON", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub json: bool,
    /// After a successful build, push the image to its registry through the engine (progress
    /// on stderr, at most --jobs at once); the digest goes into --json (`digest`).
    #[arg(
        long,
        env = "IMAGE_BUILD_PUSH",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = parse_bool
    )]
    pub push: bool,
    /// Time limit per push (`5m`, `90s`); `0` for none.
    #[arg(long, env = "IMAGE_BUILD_PUSH_TIMEOUT", default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub push_timeout: std::time::Duration,
    /// With --push: print `repo@sha256:…` (what the registry stored) instead of the reference.
    #[arg(
        long,
        env = "IMAGE_BUILD_PRINT_DIGEST",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = parse_bool
    )]
    pub print_digest: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

fn parse_bool(s: &str) -> Result<bool, String> {
    e2e_core::values::parse_bool(s)
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only images built for this consumer [default: every consumer].
    #[arg(long, env = "E2E_CONSUMER")]
    pub consumer: Option<String>,
    /// Only images built longer ago than this (`24h`, `30m`, `7d`).
    #[arg(long, env = "IMAGE_BUILD_OLDER_THAN", value_parser = parse_duration, value_name = "DURATION")]
    pub older_than: Option<std::time::Duration>,
    /// Print what would be removed; remove nothing.
    #[arg(long, short = 'n', env = "IMAGE_BUILD_DRY_RUN", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub dry_run: bool,
    /// Print one JSON document instead of references.
    #[arg(long, global = true, env = "IMAGE_BUILD_JSON", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub verbosity: Verbosity,
}

#[derive(Debug, Args, Clone, Copy)]
pub struct Verbosity {
    /// Only errors on stderr.
    #[arg(long, short = 'q', global = true, env = "IMAGE_BUILD_QUIET", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub quiet: bool,
    /// More detail (build output under the live status lines on a terminal).
    #[arg(long, short = 'v', global = true, env = "IMAGE_BUILD_VERBOSE", action = ArgAction::Count, value_parser = e2e_core::values::parse_count)]
    pub verbose: u8,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    e2e_core::values::parse_duration(s)
}

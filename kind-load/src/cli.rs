//! Command-line interface, following docs/conventions.md: every flag reads an environment
//! variable, booleans take 1/0/true/false/yes/no/on/off, durations are humantime (a bare
//! number is seconds), and the cluster/engine/output flags go before or after a subcommand.

use clap::{ArgAction, Args, Parser, Subcommand};
use e2e_core::cli::{ArgAlias, Compat, EnvAlias};
use e2e_core::values::parse_bool;
use e2e_engine::EngineArgs;
use std::path::PathBuf;

/// Old names still accepted (README "Changelog"); `KIND_CLUSTER_NAME` is honoured for good.
pub const COMPAT: Compat = Compat {
    env: &[
        EnvAlias {
            var: "E2E_KIND_CLUSTER",
            old: "KIND_CLUSTER_NAME",
            deprecated: false,
        },
        EnvAlias {
            var: "KIND_LOAD_MAN_OUT_DIR",
            old: "KIND_LOAD_MAN_DIR",
            deprecated: true,
        },
    ],
    args: &[ArgAlias {
        old: "-n",
        new: "--cluster",
        takes_value: true,
        after: "",
    }],
};

const EXAMPLES: &str = "\
Examples:
  # Load two images into every node of cluster aianalysis-e2e (concurrently, no temp files):
  kind-load --cluster aianalysis-e2e localhost/datastorage:aianalysis-1884d123 localhost/aianalysis:e2e
    aianalysis-e2e-control-plane localhost/datastorage:aianalysis-1884d123 loaded 104861184 2.310
    aianalysis-e2e-worker localhost/datastorage:aianalysis-1884d123 loaded 104861184 2.305
    ...

  # Again: nothing is streamed, every node says so:
  kind-load --cluster aianalysis-e2e localhost/datastorage:aianalysis-1884d123
    aianalysis-e2e-control-plane localhost/datastorage:aianalysis-1884d123 already-present 0 0.081

  # Images built by Podman (its `localhost/` names are kept), cluster from the environment:
  E2E_KIND_CLUSTER=aianalysis-e2e E2E_ENGINE=podman kind-load localhost/aianalysis:e2e

  # An existing archive (streamed from the file), only into one node, as JSON:
  kind-load --cluster aianalysis-e2e --archive /data/images.tar --nodes aianalysis-e2e-worker --json

  # A multi-arch image from Docker's containerd store: one platform only:
  kind-load --cluster kind --platform linux/amd64 myapp:dev

  # What does each node hold?
  kind-load images --cluster aianalysis-e2e

Results go to stdout, one line per node and image: NODE IMAGE RESULT BYTES SECONDS, where
RESULT is loaded, re-tagged, already-present or failed. Progress and errors go to stderr.

Exit codes: 0 every node has every image; 1 something failed (no such cluster, image not in the
engine, `ctr` failed in a node: the other nodes' results are still printed); 2 usage error;
130 interrupted (Ctrl-C; run the same command again to finish).";

/// Put local images into every node of a Kind cluster.
///
/// Finds the cluster's node containers by Kind's labels, skips nodes that already hold the
/// image ID, re-tags where only the name is missing, and streams one export of the image from
/// the engine (Docker or Podman) into the containerd of all other nodes at once (layers with
/// `ctr content ingest`, then `ctr images import`). Needs neither the `kind` binary nor
/// privileged exec, and writes no temporary files.
#[derive(Debug, Parser)]
#[command(
    name = "kind-load",
    version,
    after_long_help = EXAMPLES,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load images (the default when no subcommand is given).
    #[command(after_long_help = EXAMPLES)]
    Load(LoadArgs),
    /// List the images every node holds: NODE NAME IMAGE-ID (config digest).
    #[command(after_long_help = EXAMPLES)]
    Images(ImagesArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (roff) for kind-load and its subcommands into a directory.
    Man {
        #[arg(long, default_value = "target/man", env = "KIND_LOAD_MAN_OUT_DIR")]
        out_dir: PathBuf,
    },
}

/// Which cluster, which engine, how to print.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// The Kind cluster (as `kind --name`); KIND_CLUSTER_NAME is read when E2E_KIND_CLUSTER
    /// is unset.
    #[arg(
        long,
        visible_alias = "name",
        global = true,
        env = "E2E_KIND_CLUSTER",
        default_value = "kind"
    )]
    pub cluster: String,
    /// Only these nodes (container names, comma-separated); default: every control-plane and
    /// worker node.
    #[arg(
        long,
        global = true,
        env = "KIND_LOAD_NODES",
        value_delimiter = ',',
        value_name = "NODE,..."
    )]
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Print one JSON document on stdout instead of lines.
    #[arg(long, global = true, env = "KIND_LOAD_JSON", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub json: bool,
    /// Only warnings and errors on stderr.
    #[arg(long, short = 'q', global = true, env = "KIND_LOAD_QUIET", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub quiet: bool,
    /// More detail on stderr (snapshotter, ctr output).
    #[arg(long, short = 'v', global = true, env = "KIND_LOAD_VERBOSE", action = ArgAction::Count, value_parser = e2e_core::values::parse_count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Images in the engine to load (`localhost/app:tag`; no tag means `latest`).
    #[arg(value_name = "IMAGE", env = "KIND_LOAD_IMAGES", value_delimiter = ' ')]
    pub images: Vec<String>,
    /// Load an image archive (`docker save`/`podman save` tar or OCI layout tar), streamed from
    /// the file; repeatable or comma-separated.
    #[arg(
        long,
        env = "KIND_LOAD_ARCHIVE",
        value_delimiter = ',',
        value_name = "FILE"
    )]
    pub archive: Vec<PathBuf>,
    /// Keep only this platform (`linux/amd64`): the engine exports just it where it can (Docker
    /// API 1.48+), and `ctr import --platform` keeps just it. For multi-arch images whose other
    /// platforms' blobs are missing.
    #[arg(
        long,
        env = "KIND_LOAD_PLATFORM",
        value_name = "OS/ARCH[/VARIANT]",
        conflicts_with = "all_platforms"
    )]
    pub platform: Option<String>,
    /// Import every platform in the archive (`ctr import --all-platforms`, what `kind load`
    /// does). Default: the node's platform only, which also works for partial multi-arch
    /// images.
    #[arg(long, env = "KIND_LOAD_ALL_PLATFORMS", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub all_platforms: bool,
    /// containerd snapshotter to unpack into; default: read from each node's `containerd
    /// config dump` (config versions 1-4), else overlayfs.
    #[arg(long, env = "KIND_LOAD_SNAPSHOTTER")]
    pub snapshotter: Option<String>,
    /// Import even into nodes that already hold the image.
    #[arg(long, env = "KIND_LOAD_FORCE", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub force: bool,
    /// A node that makes no progress this long (`90s`, `2m`; `0`: never) fails, naming what
    /// it was doing (a paused node, a hung containerd); the other nodes finish. A notice goes
    /// to stderr after a few seconds without progress.
    #[arg(long, env = "KIND_LOAD_IO_TIMEOUT", default_value = "2m", value_parser = e2e_core::values::parse_duration)]
    pub io_timeout: std::time::Duration,
    /// Time limit for the whole load (`10m`; `0`: none); nodes still loading then fail.
    #[arg(long, env = "KIND_LOAD_TIMEOUT", default_value = "0", value_parser = e2e_core::values::parse_duration)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
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
    fn images_without_subcommand_load() {
        let c = Cli::try_parse_from(["kind-load", "--cluster", "c", "a:1", "b:2"]).unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.load.images, vec!["a:1", "b:2"]);
        assert_eq!(c.load.cluster.cluster, "c");
        let c = Cli::try_parse_from(["kind-load", "images", "--cluster", "c", "--json"]).unwrap();
        match c.command {
            Some(Command::Images(a)) => {
                assert_eq!(a.cluster.cluster, "c");
                assert!(a.cluster.json);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nodes_and_archives_split_on_commas() {
        let c = Cli::try_parse_from([
            "kind-load",
            "--nodes",
            "a,b",
            "--archive",
            "x.tar,y.tar",
            "--name",
            "k",
        ])
        .unwrap();
        assert_eq!(c.load.cluster.nodes, vec!["a", "b"]);
        assert_eq!(c.load.archive.len(), 2);
        assert_eq!(c.load.cluster.cluster, "k");
    }

    #[test]
    fn global_flags_before_or_after_the_subcommand() {
        for args in [
            &["kind-load", "--cluster", "c", "--json", "-q", "images"][..],
            &["kind-load", "images", "--cluster", "c", "--json", "-q"],
        ] {
            match Cli::try_parse_from(args).unwrap().command {
                Some(Command::Images(a)) => {
                    assert_eq!(a.cluster.cluster, "c", "{args:?}");
                    assert!(a.cluster.json && a.cluster.quiet, "{args:?}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn durations_in_the_one_syntax() {
        for (text, secs) in [("1h30m", 5400), ("5", 5), ("7d", 604_800)] {
            let c =
                Cli::try_parse_from(["kind-load", "--timeout", text, "--io-timeout", text, "x"])
                    .unwrap();
            assert_eq!(c.load.timeout.as_secs(), secs, "{text}");
            assert_eq!(c.load.io_timeout.as_secs(), secs, "{text}");
        }
    }

    #[test]
    fn platform_conflicts_with_all_platforms() {
        assert!(Cli::try_parse_from([
            "kind-load",
            "--platform",
            "linux/amd64",
            "--all-platforms",
            "x"
        ])
        .is_err());
    }
}

//! Command-line interface. Every value is a flag with an environment variable and a key of the
//! `--values` file (the flag's long name); precedence: flag > environment > values file > default.
//! Flags are `Option`s here so the values file can fill what neither flag nor environment set.

use clap::{ArgAction, Args, Parser, Subcommand};
use e2e_core::cli::{Compat, EnvAlias};
use e2e_core::values::{parse_bool, parse_count};
use std::path::PathBuf;
use std::time::Duration;

/// Old names still accepted, with a warning (README "Changelog").
pub const COMPAT: Compat = Compat {
    env: &[EnvAlias {
        var: "DS_DEPLOY_MAN_OUT_DIR",
        old: "DS_DEPLOY_MAN_DIR",
        deprecated: true,
    }],
    args: &[],
};

const EXAMPLES: &str = "\
Examples:
  # Deploy the bundle into kubernaut-system and wait until every component is Ready:
  ds-deploy up --image localhost/datastorage:aianalysis-1884d123 --migrations-dir migrations

  # Another cluster (kubeconfig + context), CA for test clients written to a file:
  ds-deploy up --kubeconfig ~/.kube/aianalysis-e2e-config --image localhost/ds:e2e --ca-out ~/.kube/inter-service-ca.pem

  # Two bundles side by side: another namespace, NodePorts picked by the API server (0):
  ds-deploy up -N team-b --image localhost/ds:e2e --node-port 0 --health-node-port 0 --metrics-node-port 0 --postgres-node-port 0

  # The manifests, for kubectl (secrets and keys masked unless --show-secrets):
  ds-deploy render --image localhost/ds:e2e | kubectl apply --dry-run=server -f -

  # What runs, why it is not Ready, and removing it all again:
  ds-deploy status
  ds-deploy diagnose --out /tmp/ds-diag
  ds-deploy down --delete-namespace

  # Values from a file (keys are the flags' long names), flags still win:
  ds-deploy up --values e2e/datastorage.yaml --timeout 10m

Results go to stdout (up: one line per step, `--json` one document); progress and errors go to
stderr.

Exit codes: 0 success; 1 the deployment failed or timed out (a diagnosis is printed); 2 usage or
configuration error (bad values, unreachable cluster, unknown context); 130 interrupted (Ctrl-C;
run `ds-deploy up` again to converge).";

/// Deploy the DataStorage bundle (PostgreSQL, Redis, migrations, DataStorage with its TLS,
/// signing certificate, CRDs and RBAC) and wait until it is Ready, or say why it is not.
#[derive(Debug, Parser)]
// A flag given twice takes its last value, as Makefiles that append to a command line expect.
#[command(
    name = "ds-deploy",
    version,
    after_long_help = EXAMPLES,
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Flags every subcommand takes, before or after the subcommand's name.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Kubeconfig file [default: $KUBECONFIG, else ~/.kube/config]
    #[arg(long, global = true, env = "E2E_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context [default: the current context]
    #[arg(long, global = true, env = "DS_DEPLOY_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the bundle [default: kubernaut-system]
    #[arg(short = 'N', long, global = true, env = "DS_DEPLOY_NAMESPACE")]
    pub namespace: Option<String>,
    /// YAML file of values (keys are the flags' long names)
    #[arg(long, global = true, env = "DS_DEPLOY_VALUES", value_name = "FILE")]
    pub values: Option<PathBuf>,
    /// One JSON document on stdout instead of lines
    #[arg(long, global = true, env = "DS_DEPLOY_JSON", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub json: bool,
    /// Only errors and warnings on stderr
    #[arg(short, long, global = true, env = "DS_DEPLOY_QUIET", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub quiet: bool,
    /// More detail on stderr
    #[arg(short, long, global = true, env = "DS_DEPLOY_VERBOSE", action = ArgAction::Count, value_parser = parse_count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the bundle (server-side apply) and wait until it is Ready.
    #[command(after_long_help = EXAMPLES)]
    Up(UpArgs),
    /// Print the bundle's manifests as YAML (kubectl-compatible) without touching a cluster.
    #[command(after_long_help = EXAMPLES)]
    Render(RenderArgs),
    /// One line per component: COMPONENT READY IMAGE AGE.
    Status,
    /// Delete everything `up` made (cluster-scoped objects too, unless another namespace's
    /// bundle still uses them) and wait until it is gone.
    Down(DownArgs),
    /// Pod phases, conditions, container states, events and logs of failing containers, with
    /// hints.
    Diagnose(DiagnoseArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (roff) for ds-deploy and its subcommands into a directory.
    Man {
        #[arg(long, default_value = "target/man", env = "DS_DEPLOY_MAN_OUT_DIR")]
        out_dir: PathBuf,
    },
}

/// What the bundle is made of. Defaults reproduce the upstream bundle.
#[derive(Debug, Args, Clone, Default)]
pub struct BundleArgs {
    /// DataStorage image (the image under test)
    #[arg(long, env = "DS_DEPLOY_IMAGE", value_name = "REF")]
    pub image: Option<String>,
    /// PostgreSQL image [default: docker.io/library/postgres:16-alpine]
    #[arg(long, env = "DS_DEPLOY_POSTGRES_IMAGE", value_name = "REF")]
    pub postgres_image: Option<String>,
    /// Redis image [default: quay.io/jordigilh/redis:7-alpine]
    #[arg(long, env = "DS_DEPLOY_REDIS_IMAGE", value_name = "REF")]
    pub redis_image: Option<String>,
    /// DataStorage pull policy: Never (images loaded into the nodes), IfNotPresent (from a
    /// registry), Always [default: Never]
    #[arg(long, env = "DS_DEPLOY_PULL_POLICY", value_name = "POLICY")]
    pub pull_policy: Option<String>,
    /// DataStorage API NodePort (0: picked by the API server) [default: 30081]
    #[arg(long, env = "DS_DEPLOY_NODE_PORT", value_name = "PORT")]
    pub node_port: Option<u16>,
    /// DataStorage metrics NodePort [default: 30181]
    #[arg(long, env = "DS_DEPLOY_METRICS_NODE_PORT", value_name = "PORT")]
    pub metrics_node_port: Option<u16>,
    /// DataStorage health NodePort [default: 30281]
    #[arg(long, env = "DS_DEPLOY_HEALTH_NODE_PORT", value_name = "PORT")]
    pub health_node_port: Option<u16>,
    /// PostgreSQL NodePort [default: 30432]
    #[arg(long, env = "DS_DEPLOY_POSTGRES_NODE_PORT", value_name = "PORT")]
    pub postgres_node_port: Option<u16>,
    /// PostgreSQL storage: emptydir, or pvc[:SIZE] (PVC postgresql-data) [default: emptydir]
    #[arg(long, env = "DS_DEPLOY_POSTGRES_STORAGE", value_name = "KIND")]
    pub postgres_storage: Option<String>,
    /// Database user [default: slm_user]
    #[arg(long, env = "DS_DEPLOY_POSTGRES_USER")]
    pub postgres_user: Option<String>,
    /// Database password [default: test_password]
    #[arg(long, env = "DS_DEPLOY_POSTGRES_PASSWORD", hide_env_values = true)]
    pub postgres_password: Option<String>,
    /// Database name [default: action_history]
    #[arg(long, env = "DS_DEPLOY_POSTGRES_DB")]
    pub postgres_db: Option<String>,
    /// Container resources: upstream (the upstream requests/limits) or none [default: upstream]
    #[arg(long, env = "DS_DEPLOY_RESOURCES", value_name = "PROFILE")]
    pub resources: Option<String>,
    /// Inter-service TLS (CA, DataStorage certificate, signing certificate): on or off
    /// [default: on]
    #[arg(long, env = "DS_DEPLOY_TLS", value_name = "on|off")]
    pub tls: Option<String>,
    /// DataStorage's cluster RBAC (ClusterRoles data-storage-client and
    /// data-storage-auth-middleware, its binding): on or off [default: on]
    #[arg(long, env = "DS_DEPLOY_RBAC", value_name = "on|off")]
    pub rbac: Option<String>,
    /// CRD files or directories, applied first and waited on until Established (repeatable;
    /// env: comma-separated)
    #[arg(
        long,
        env = "DS_DEPLOY_CRDS",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub crds: Vec<PathBuf>,
    /// Extra manifests (files or directories) applied after the CRDs, before DataStorage
    /// (repeatable; env: comma-separated)
    #[arg(
        long,
        env = "DS_DEPLOY_MANIFESTS",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub manifests: Vec<PathBuf>,
    /// DataStorage log level in its config.yaml [default: debug]
    #[arg(long, env = "DS_DEPLOY_LOG_LEVEL")]
    pub log_level: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct UpArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Directory of goose-format migrations [default: migrations]
    #[arg(long, env = "DS_DEPLOY_MIGRATIONS_DIR", value_name = "DIR")]
    pub migrations_dir: Option<PathBuf>,
    /// Deploy without running migrations
    #[arg(long, env = "DS_DEPLOY_SKIP_MIGRATIONS", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub skip_migrations: bool,
    /// Migration ledger: goose (goose_db_version, as upstream) or sqlx [default: goose]
    #[arg(long, env = "DS_DEPLOY_LEDGER")]
    pub ledger: Option<String>,
    /// Run the migrations against this URL (e.g. the PostgreSQL NodePort mapped to the host)
    /// instead of a port-forward through the API server
    #[arg(
        long,
        env = "DS_DEPLOY_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Write the inter-service CA (PEM) to this file, for test clients
    #[arg(long, env = "DS_DEPLOY_CA_OUT", value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
    /// Give up after this long in total [default: 10m]
    #[arg(long, env = "DS_DEPLOY_TIMEOUT", value_parser = e2e_core::values::parse_duration)]
    pub timeout: Option<Duration>,
    /// Give up on one step (a component becoming Ready, the migrations) after this long
    /// [default: 5m]
    #[arg(long, env = "DS_DEPLOY_STEP_TIMEOUT", value_parser = e2e_core::values::parse_duration)]
    pub step_timeout: Option<Duration>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct RenderArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// Print secrets and private keys as they are (masked by default)
    #[arg(long, env = "DS_DEPLOY_SHOW_SECRETS", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub show_secrets: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DownArgs {
    /// Delete the namespace too
    #[arg(long, env = "DS_DEPLOY_DELETE_NAMESPACE", action = ArgAction::SetTrue, value_parser = parse_bool)]
    pub delete_namespace: bool,
    /// Give up waiting for the objects to be gone after this long [default: 2m]
    #[arg(long, env = "DS_DEPLOY_TIMEOUT", value_parser = e2e_core::values::parse_duration)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DiagnoseArgs {
    /// Also write the diagnosis, every pod's logs and the events into this directory
    #[arg(long, env = "DS_DEPLOY_DIAGNOSE_OUT", value_name = "DIR")]
    pub out: Option<PathBuf>,
}

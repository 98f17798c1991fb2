//! The bundle's settings, resolved from flags, environment, the `--values` file and defaults (in
//! that order of precedence), and checked before anything touches a cluster: every mistake is
//! one line naming the value, exit 2.

use crate::cli::{BundleArgs, GlobalArgs, UpArgs};
use e2e_core::{CliError, Reference};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_NAMESPACE: &str = "kubernaut-system";
pub const DEFAULT_POSTGRES_IMAGE: &str = "docker.io/library/postgres:16-alpine";
pub const DEFAULT_REDIS_IMAGE: &str = "quay.io/jordigilh/redis:7-alpine";

/// Keys of the values file: the flags' long names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValuesFile {
    namespace: Option<String>,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    image: Option<String>,
    postgres_image: Option<String>,
    redis_image: Option<String>,
    pull_policy: Option<String>,
    node_port: Option<u16>,
    metrics_node_port: Option<u16>,
    health_node_port: Option<u16>,
    postgres_node_port: Option<u16>,
    postgres_storage: Option<String>,
    postgres_user: Option<String>,
    postgres_password: Option<String>,
    postgres_db: Option<String>,
    resources: Option<String>,
    tls: Option<Switch>,
    rbac: Option<Switch>,
    crds: Option<Vec<PathBuf>>,
    manifests: Option<Vec<PathBuf>>,
    log_level: Option<String>,
    migrations_dir: Option<PathBuf>,
    skip_migrations: Option<bool>,
    ledger: Option<String>,
    database_url: Option<String>,
    ca_out: Option<PathBuf>,
    timeout: Option<String>,
    step_timeout: Option<String>,
}

/// `on`/`off` in a values file also accepts YAML booleans.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Switch {
    Bool(bool),
    Text(String),
}

impl ValuesFile {
    pub fn load(path: &Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::usage(format!("cannot read values file {}: {e}", path.display()))
        })?;
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_norway::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "values file {}: {e} (keys are the flags' long names, e.g. `postgres-image`)",
                path.display()
            ))
        })
    }
}

/// Where the cluster is.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: String,
}

/// Everything the manifests are made from.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub namespace: String,
    pub image: String,
    pub postgres_image: String,
    pub redis_image: String,
    pub pull_policy: String,
    pub node_port: u16,
    pub metrics_node_port: u16,
    pub health_node_port: u16,
    pub postgres_node_port: u16,
    /// `None`: emptyDir; `Some(size)`: PVC `postgresql-data` of that size.
    pub postgres_pvc: Option<String>,
    pub postgres_user: String,
    pub postgres_password: String,
    pub postgres_db: String,
    pub upstream_resources: bool,
    pub tls: bool,
    pub rbac: bool,
    pub crds: Vec<PathBuf>,
    pub manifests: Vec<PathBuf>,
    pub log_level: String,
}

/// `up`'s settings beyond the bundle.
#[derive(Debug, Clone)]
pub struct UpSettings {
    pub bundle: Bundle,
    pub migrations_dir: Option<PathBuf>,
    pub ledger: migrate::LedgerKind,
    pub database_url: Option<String>,
    pub ca_out: Option<PathBuf>,
    pub timeout: Duration,
    pub step_timeout: Duration,
}

fn values_file(global: &GlobalArgs) -> Result<ValuesFile, CliError> {
    match &global.values {
        Some(p) => ValuesFile::load(p),
        None => Ok(ValuesFile::default()),
    }
}

/// Resolves the cluster target (for every subcommand).
pub fn target(global: &GlobalArgs) -> Result<Target, CliError> {
    target_from(global, &values_file(global)?)
}

fn target_from(global: &GlobalArgs, file: &ValuesFile) -> Result<Target, CliError> {
    let namespace = global
        .namespace
        .clone()
        .or(file.namespace.clone())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    check_dns_label("namespace", &namespace)?;
    Ok(Target {
        kubeconfig: global.kubeconfig.clone().or(file.kubeconfig.clone()),
        context: global.context.clone().or(file.context.clone()),
        namespace,
    })
}

/// Resolves and checks the bundle's values.
pub fn bundle(global: &GlobalArgs, args: &BundleArgs) -> Result<Bundle, CliError> {
    let file = values_file(global)?;
    bundle_from(global, args, &file)
}

fn bundle_from(
    global: &GlobalArgs,
    args: &BundleArgs,
    file: &ValuesFile,
) -> Result<Bundle, CliError> {
    let namespace = target_from(global, file)?.namespace;
    let pick = |flag: &Option<String>, key: &Option<String>| flag.clone().or(key.clone());
    let image = pick(&args.image, &file.image).ok_or_else(|| {
        CliError::usage(
            "no DataStorage image: pass --image REF (or DS_DEPLOY_IMAGE, or `image:` in --values); \
             build one with `make example-images`",
        )
    })?;
    let image = check_image("image", &image)?;
    let postgres_image = check_image(
        "postgres-image",
        &pick(&args.postgres_image, &file.postgres_image)
            .unwrap_or_else(|| DEFAULT_POSTGRES_IMAGE.into()),
    )?;
    let redis_image = check_image(
        "redis-image",
        &pick(&args.redis_image, &file.redis_image).unwrap_or_else(|| DEFAULT_REDIS_IMAGE.into()),
    )?;
    let pull_policy = match pick(&args.pull_policy, &file.pull_policy)
        .unwrap_or_else(|| "Never".into())
        .to_ascii_lowercase()
        .replace(['-', '_'], "")
        .as_str()
    {
        "never" => "Never",
        "ifnotpresent" => "IfNotPresent",
        "always" => "Always",
        other => {
            return Err(CliError::usage(format!(
                "pull-policy `{other}`: use Never, IfNotPresent or Always"
            )))
        }
    }
    .to_string();
    let postgres_pvc = match pick(&args.postgres_storage, &file.postgres_storage)
        .unwrap_or_else(|| "emptydir".into())
        .as_str()
    {
        "emptydir" | "emptyDir" => None,
        "pvc" => Some("1Gi".to_string()),
        s => match s.strip_prefix("pvc:") {
            Some(size)
                if !size.is_empty() && size.chars().next().is_some_and(|c| c.is_ascii_digit()) =>
            {
                Some(size.to_string())
            }
            _ => {
                return Err(CliError::usage(format!(
                    "postgres-storage `{s}`: use emptydir, pvc or pvc:SIZE (e.g. pvc:2Gi)"
                )))
            }
        },
    };
    let resources = pick(&args.resources, &file.resources).unwrap_or_else(|| "upstream".into());
    let upstream_resources = match resources.as_str() {
        "upstream" => true,
        "none" => false,
        other => {
            return Err(CliError::usage(format!(
                "resources `{other}`: use upstream or none"
            )))
        }
    };
    let tls = switch("tls", args.tls.as_deref(), file.tls.clone())?;
    let rbac = switch("rbac", args.rbac.as_deref(), file.rbac.clone())?;
    let crds = if args.crds.is_empty() {
        file.crds.clone().unwrap_or_default()
    } else {
        args.crds.clone()
    };
    let manifests = if args.manifests.is_empty() {
        file.manifests.clone().unwrap_or_default()
    } else {
        args.manifests.clone()
    };
    for p in crds.iter().chain(&manifests) {
        if !p.exists() {
            return Err(CliError::usage(format!(
                "{} does not exist (given to --crds/--manifests)",
                p.display()
            )));
        }
    }
    let postgres_user =
        pick(&args.postgres_user, &file.postgres_user).unwrap_or_else(|| "slm_user".into());
    let postgres_db =
        pick(&args.postgres_db, &file.postgres_db).unwrap_or_else(|| "action_history".into());
    for (what, v) in [
        ("postgres-user", &postgres_user),
        ("postgres-db", &postgres_db),
    ] {
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(CliError::usage(format!(
                "{what} `{v}`: use letters, digits and `_` only"
            )));
        }
    }
    let log_level = pick(&args.log_level, &file.log_level).unwrap_or_else(|| "debug".into());
    if !["debug", "info", "warn", "error"].contains(&log_level.as_str()) {
        return Err(CliError::usage(format!(
            "log-level `{log_level}`: use debug, info, warn or error"
        )));
    }
    Ok(Bundle {
        namespace,
        image,
        postgres_image,
        redis_image,
        pull_policy,
        node_port: port(args.node_port, file.node_port, 30081, "node-port")?,
        metrics_node_port: port(
            args.metrics_node_port,
            file.metrics_node_port,
            30181,
            "metrics-node-port",
        )?,
        health_node_port: port(
            args.health_node_port,
            file.health_node_port,
            30281,
            "health-node-port",
        )?,
        postgres_node_port: port(
            args.postgres_node_port,
            file.postgres_node_port,
            30432,
            "postgres-node-port",
        )?,
        postgres_pvc,
        postgres_user,
        postgres_password: pick(&args.postgres_password, &file.postgres_password)
            .unwrap_or_else(|| "test_password".into()),
        postgres_db,
        upstream_resources,
        tls,
        rbac,
        crds,
        manifests,
        log_level,
    })
}

/// Resolves and checks `up`'s settings (the migrations directory is loaded later, still
/// before anything is applied).
pub fn up(global: &GlobalArgs, args: &UpArgs) -> Result<UpSettings, CliError> {
    let file = values_file(global)?;
    let bundle = bundle_from(global, &args.bundle, &file)?;
    let skip = args.skip_migrations || file.skip_migrations.unwrap_or(false);
    let migrations_dir = if skip {
        None
    } else {
        let dir = args
            .migrations_dir
            .clone()
            .or(file.migrations_dir.clone())
            .unwrap_or_else(|| PathBuf::from("migrations"));
        if !dir.is_dir() {
            return Err(CliError::usage(format!(
                "migrations directory {} does not exist: pass --migrations-dir DIR, or --skip-migrations",
                dir.display()
            )));
        }
        Some(dir)
    };
    let ledger = match args
        .ledger
        .clone()
        .or(file.ledger.clone())
        .unwrap_or_else(|| "goose".into())
        .as_str()
    {
        "goose" => migrate::LedgerKind::Goose,
        "sqlx" => migrate::LedgerKind::Sqlx,
        other => {
            return Err(CliError::usage(format!(
                "ledger `{other}`: use goose or sqlx"
            )))
        }
    };
    let duration = |flag: Option<Duration>, key: &Option<String>, what: &str, default: u64| match (
        flag, key,
    ) {
        (Some(d), _) => Ok(d),
        (None, Some(s)) => {
            e2e_core::values::parse_duration(s).map_err(|e| CliError::usage(format!("{what}: {e}")))
        }
        (None, None) => Ok(Duration::from_secs(default)),
    };
    Ok(UpSettings {
        bundle,
        migrations_dir,
        ledger,
        database_url: args.database_url.clone().or(file.database_url.clone()),
        ca_out: args.ca_out.clone().or(file.ca_out.clone()),
        timeout: duration(args.timeout, &file.timeout, "timeout", 600)?,
        step_timeout: duration(args.step_timeout, &file.step_timeout, "step-timeout", 300)?,
    })
}

fn switch(what: &str, flag: Option<&str>, key: Option<Switch>) -> Result<bool, CliError> {
    let text = match (flag, key) {
        (Some(f), _) => f.to_string(),
        (None, Some(Switch::Bool(b))) => return Ok(b),
        (None, Some(Switch::Text(t))) => t,
        (None, None) => return Ok(true),
    };
    e2e_core::values::parse_bool(&text).map_err(|e| CliError::usage(format!("{what}: {e}")))
}

fn port(flag: Option<u16>, key: Option<u16>, default: u16, what: &str) -> Result<u16, CliError> {
    let p = flag.or(key).unwrap_or(default);
    if p != 0 && !(30000..=32767).contains(&p) {
        return Err(CliError::usage(format!(
            "{what} {p} is outside the NodePort range 30000-32767 (0 lets the API server pick one)"
        )));
    }
    Ok(p)
}

fn check_image(what: &str, image: &str) -> Result<String, CliError> {
    Reference::parse(image)
        .map(|_| image.to_string())
        .map_err(|e| {
            CliError::usage(format!(
                "{what} `{image}` is not a valid image reference: {e}"
            ))
        })
}

fn check_dns_label(what: &str, v: &str) -> Result<(), CliError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{what} `{v}` is not a valid name: lowercase letters, digits and `-`, at most 63 characters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global() -> GlobalArgs {
        GlobalArgs::default()
    }

    #[test]
    fn defaults_reproduce_upstream() {
        let args = BundleArgs {
            image: Some("localhost/ds:e2e".into()),
            ..Default::default()
        };
        let b = bundle_from(&global(), &args, &ValuesFile::default()).unwrap();
        assert_eq!(b.namespace, "kubernaut-system");
        assert_eq!(b.postgres_image, DEFAULT_POSTGRES_IMAGE);
        assert_eq!(b.node_port, 30081);
        assert_eq!(b.postgres_node_port, 30432);
        assert_eq!(b.pull_policy, "Never");
        assert!(b.tls && b.rbac && b.upstream_resources);
        assert_eq!(b.postgres_pvc, None);
    }

    #[test]
    fn flag_beats_values_file() {
        let file: ValuesFile =
            serde_norway::from_str("image: localhost/a:1\nredis-image: localhost/r:1\ntls: off\n")
                .unwrap();
        let args = BundleArgs {
            image: Some("localhost/b:2".into()),
            ..Default::default()
        };
        let b = bundle_from(&global(), &args, &file).unwrap();
        assert_eq!(b.image, "localhost/b:2");
        assert_eq!(b.redis_image, "localhost/r:1");
        assert!(!b.tls);
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.yaml");
        std::fs::write(&p, "imagee: x\n").unwrap();
        let e = ValuesFile::load(&p).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.message.contains("imagee"), "{}", e.message);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let cases = [
            BundleArgs {
                image: Some("Not A Ref".into()),
                ..Default::default()
            },
            BundleArgs {
                image: Some("localhost/a:1".into()),
                node_port: Some(8080),
                ..Default::default()
            },
            BundleArgs {
                image: Some("localhost/a:1".into()),
                postgres_storage: Some("disk".into()),
                ..Default::default()
            },
            BundleArgs {
                image: Some("localhost/a:1".into()),
                tls: Some("maybe".into()),
                ..Default::default()
            },
        ];
        for args in cases {
            let e = bundle_from(&global(), &args, &ValuesFile::default()).unwrap_err();
            assert_eq!(e.code, 2, "{}", e.message);
        }
    }

    #[test]
    fn pvc_sizes() {
        let args = BundleArgs {
            image: Some("localhost/a:1".into()),
            postgres_storage: Some("pvc:5Gi".into()),
            ..Default::default()
        };
        let b = bundle_from(&global(), &args, &ValuesFile::default()).unwrap();
        assert_eq!(b.postgres_pvc.as_deref(), Some("5Gi"));
    }
}

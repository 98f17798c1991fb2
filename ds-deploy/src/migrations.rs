//! The bundle's migrations, through the migrate library: over an in-process port-forward to the
//! PostgreSQL pod, or a URL the caller gives (a NodePort mapped to the host); then the grants
//! upstream gives the service's database user.

use crate::cluster::describe;
use crate::portforward::PortForward;
use crate::progress::Progress;
use crate::values::Bundle;
use e2e_core::CliError;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use migrate::{Event, LedgerKind, MigrationSet, Migrator, Observer, Options};
use std::time::Duration;

const GRANTS: &[&str] = &[
    "GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO {user}",
    "GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO {user}",
    "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {user}",
];

/// What the migrations did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    pub applied: Vec<String>,
    pub via: String,
}

struct Lines(Progress);

impl Observer for Lines {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Applying(m) => self.0.set("migrations", format!("applying {}", m.name)),
            Event::Applied(a) => self.0.reporter().info(format!(
                "Applied {} ({} ms)",
                a.name,
                a.duration.as_millis()
            )),
            Event::LockWait { pid, .. } => self.0.set(
                "migrations",
                format!("waiting for the migration lock held by pid {pid}"),
            ),
            Event::Warning(w) => self.0.reporter().warn(w),
            _ => {}
        }
    }
}

/// Loads the directory (every format error at once), before anything is applied.
pub fn load(dir: &std::path::Path) -> Result<MigrationSet, CliError> {
    MigrationSet::load(dir).map_err(|e| {
        let e = migrate::Error::from(e);
        CliError {
            code: e.exit_code(),
            message: e.to_string(),
        }
    })
}

/// The newest Running and Ready PostgreSQL pod.
async fn postgres_pod(client: &Client, ns: &str) -> Result<String, CliError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels("app=postgresql"))
        .await
        .map_err(|e| {
            CliError::failure(format!("cannot list the PostgreSQL pods: {}", describe(&e)))
        })?;
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .max_by_key(|p| p.metadata.creation_timestamp.clone())
        .and_then(|p| p.metadata.name)
        .ok_or_else(|| CliError::failure("no Ready PostgreSQL pod to run the migrations against"))
}

pub async fn run(
    client: &Client,
    bundle: &Bundle,
    set: MigrationSet,
    ledger: LedgerKind,
    database_url: Option<&str>,
    timeout: Duration,
    progress: &Progress,
) -> Result<Report, CliError> {
    let ns = bundle.namespace.as_str();
    let mut _forward = None;
    let (url, via) = match database_url {
        Some(url) => (url.to_string(), migrate::url::mask(url)),
        None => {
            let pod = postgres_pod(client, ns).await?;
            let pf = PortForward::start(Api::namespaced(client.clone(), ns), &pod, 5432).await?;
            let url = format!(
                "postgres://{}:{}@{}/{}?sslmode=disable",
                bundle.postgres_user, bundle.postgres_password, pf.local, bundle.postgres_db
            );
            let via = format!("port-forward to pod {pod}");
            _forward = Some(pf);
            (url, via)
        }
    };
    progress.set("migrations", format!("connecting ({via})"));
    let work = async {
        let mut conn = migrate::connect(&url, Duration::from_secs(15))
            .await
            .map_err(|e| CliError::failure(format!("migrations: {e}")))?;
        let options = Options {
            ledger,
            ..Options::default()
        };
        let applied = Migrator::new(set, options)
            .with_observer(Box::new(Lines(progress.clone())))
            .up(&mut conn, None)
            .await
            .map_err(|e| {
                CliError::failure(format!(
                    "migrations failed, so DataStorage was not deployed:\n{e}"
                ))
            })?;
        for grant in GRANTS {
            let sql = grant.replace("{user}", &format!("\"{}\"", bundle.postgres_user));
            if let Err(e) = sqlx::query(&sql).execute(&mut conn).await {
                progress.reporter().warn(format!(
                    "`{sql}` failed: {}",
                    migrate::error::describe_sqlx(&e)
                ));
            }
        }
        Ok::<_, CliError>(applied)
    };
    let applied = tokio::time::timeout(timeout, work).await.map_err(|_| {
        CliError::failure(format!(
            "the migrations did not finish within {} ({via})",
            humantime::format_duration(timeout)
        ))
    })??;
    Ok(Report {
        applied: applied.into_iter().map(|a| a.name).collect(),
        via,
    })
}

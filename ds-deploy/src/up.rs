//! `up`: the bundle in dependency order, independent steps at once.
//!
//! namespace -> { CRDs (Established) then extra manifests | certificates | cluster RBAC |
//! PostgreSQL (Ready) then migrations | Redis (Ready) | DataStorage's config objects } ->
//! DataStorage (Ready). DataStorage's Deployment is applied only after the migrations
//! succeeded, so it never starts against a schema that is not there.

use crate::apply::{self, Outcome};
use crate::certs::{self, CertSet};
use crate::cluster::describe;
use crate::migrations;
use crate::objects::{self, Object, Objects};
use crate::progress::Progress;
use crate::values::UpSettings;
use crate::wait;
use e2e_core::CliError;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::{Api, Client};
use migrate::MigrationSet;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

/// How long extra manifests wait for discovery to serve the kinds of CRDs just applied.
const DISCOVERY_PATIENCE: Duration = Duration::from_secs(20);

/// One step's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub name: String,
    /// `ready`, `applied`, `unchanged`, `reused`, `skipped`.
    pub status: String,
    pub seconds: f64,
    pub created: usize,
    pub configured: usize,
    pub unchanged: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub migrations: Vec<String>,
}

impl Step {
    fn new(name: &str, started: Instant, outcomes: &[Outcome]) -> Self {
        let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count();
        Step {
            name: name.into(),
            status: if outcomes.iter().all(|o| *o == Outcome::Unchanged) {
                "unchanged".into()
            } else {
                "applied".into()
            },
            seconds: started.elapsed().as_secs_f64(),
            created: count(Outcome::Created),
            configured: count(Outcome::Configured),
            unchanged: count(Outcome::Unchanged),
            migrations: Vec::new(),
        }
    }

    fn changed(&self) -> bool {
        self.created + self.configured + self.migrations.len() > 0
    }
}

/// What `up` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub namespace: String,
    pub seconds: f64,
    pub changed: bool,
    pub results: Vec<Step>,
    pub node_ports: BTreeMap<String, i32>,
}

async fn apply_all(client: &Client, ns: &str, objs: &[Object]) -> Result<Vec<Outcome>, CliError> {
    futures_util::future::try_join_all(objs.iter().map(|o| apply::apply(client, ns, o))).await
}

/// An existing certificate set, if it is still good for this namespace for an hour.
async fn existing_certs(client: &Client, ns: &str) -> Option<CertSet> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let ca = cms.get_opt(objects::CA_CONFIGMAP).await.ok()??;
    let tls = secrets.get_opt(objects::TLS_SECRET).await.ok()??;
    let signing = secrets.get_opt(objects::SIGNING_SECRET).await.ok()??;
    let ann = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, k: &str| {
        m.annotations.as_ref().and_then(|a| a.get(k)).cloned()
    };
    let not_after: u64 = ann(&ca.metadata, certs::NOT_AFTER)?.parse().ok()?;
    let made_for = ann(&ca.metadata, certs::MADE_FOR)?;
    // The three must be one set.
    for m in [&tls.metadata, &signing.metadata] {
        if ann(m, certs::NOT_AFTER)? != not_after.to_string()
            || ann(m, certs::MADE_FOR)? != made_for
        {
            return None;
        }
    }
    if !certs::reusable(not_after, &made_for, ns, SystemTime::now()) {
        return None;
    }
    let get = |s: &Secret, k: &str| {
        s.data
            .as_ref()
            .and_then(|d| d.get(k))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(CertSet {
        ca_pem: ca.data.as_ref()?.get("ca.crt")?.clone(),
        tls_crt: get(&tls, "tls.crt")?,
        tls_key: get(&tls, "tls.key")?,
        signing_crt: get(&signing, "tls.crt")?,
        signing_key: get(&signing, "tls.key")?,
        not_after,
        made_for,
    })
}

async fn crds_and_manifests(
    client: &Client,
    s: &UpSettings,
    progress: &Progress,
) -> Result<Option<Step>, CliError> {
    let b = &s.bundle;
    if b.crds.is_empty() && b.manifests.is_empty() {
        return Ok(None);
    }
    let started = Instant::now();
    let ns = b.namespace.as_str();
    let mut outcomes = Vec::new();
    let crds = apply::read_manifests(&b.crds)?;
    let mut crd_objs = Vec::new();
    for (file, obj) in crds {
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        if kind != "CustomResourceDefinition" {
            return Err(CliError::usage(format!(
                "{}: --crds takes CustomResourceDefinitions, this is a {kind}; pass other objects with --manifests",
                file.display()
            )));
        }
        crd_objs.push(label(
            apply::resolve(client, ns, &file, obj, Duration::ZERO).await?,
        ));
    }
    progress.set("crds", format!("applying {} CRDs", crd_objs.len()));
    outcomes.extend(apply_all(client, ns, &crd_objs).await?);
    for o in &crd_objs {
        progress.set(
            "crds",
            format!("waiting for {} to be Established", o.name()),
        );
        wait::crd_established(client, o.name(), s.step_timeout).await?;
    }
    // Extra manifests may be custom resources of those CRDs: resolved only now.
    // Discovery serves a new CRD's kind a moment after it is Established: give it that moment.
    let patience = if crd_objs.is_empty() {
        Duration::ZERO
    } else {
        DISCOVERY_PATIENCE
    };
    let mut extra = Vec::new();
    for (file, obj) in apply::read_manifests(&b.manifests)? {
        extra.push(label(
            apply::resolve(client, ns, &file, obj, patience).await?,
        ));
    }
    progress.set("crds", format!("applying {} extra objects", extra.len()));
    outcomes.extend(apply_all(client, ns, &extra).await?);
    let all: Vec<&Object> = crd_objs.iter().chain(&extra).collect();
    outcomes.push(apply::apply(client, ns, &objects::extras_record(ns, &all)).await?);
    let step = Step::new("crds+manifests", started, &outcomes);
    progress.finish(
        "crds",
        format!("{} ({} objects)", step.status, outcomes.len()),
    );
    Ok(Some(step))
}

/// Marks an extra object as ours, so `down` finds it.
fn label(mut o: Object) -> Object {
    let labels = o.data.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(objects::MANAGED_BY.into(), objects::TOOL.into());
    labels.insert(objects::PART_OF.into(), objects::BUNDLE.into());
    if o.namespaced {
        labels.insert(
            objects::NAMESPACE_LABEL.into(),
            o.data.metadata.namespace.clone().unwrap_or_default(),
        );
    }
    o
}

async fn component(
    client: &Client,
    ns: &str,
    name: &str,
    objs: &[Object],
    s: &UpSettings,
    progress: &Progress,
) -> Result<Step, CliError> {
    let started = Instant::now();
    progress.set(name, "applying");
    let outcomes = apply_all(client, ns, objs).await?;
    progress.set(name, "waiting for a pod");
    wait::deployment(client, ns, name, s.step_timeout, progress).await?;
    let mut step = Step::new(name, started, &outcomes);
    step.status = "ready".into();
    progress.finish(name, format!("ready ({:.1}s)", step.seconds));
    Ok(step)
}

async fn postgres_then_migrations(
    client: &Client,
    objs: &Objects,
    s: &UpSettings,
    set: Option<MigrationSet>,
    progress: &Progress,
) -> Result<(Step, Option<Step>), CliError> {
    let ns = s.bundle.namespace.as_str();
    let pg = component(client, ns, objects::POSTGRES, &objs.postgres, s, progress).await?;
    let Some(set) = set else {
        return Ok((pg, None));
    };
    let started = Instant::now();
    let report = migrations::run(
        client,
        &s.bundle,
        set,
        s.ledger,
        s.database_url.as_deref(),
        s.step_timeout,
        progress,
    )
    .await?;
    let mut step = Step::new("migrations", started, &[]);
    step.status = if report.applied.is_empty() {
        "unchanged".into()
    } else {
        "applied".into()
    };
    progress.finish(
        "migrations",
        format!("{} applied via {}", report.applied.len(), report.via),
    );
    step.migrations = report.applied;
    Ok((pg, Some(step)))
}

/// Runs `up` to the end; on failure the caller diagnoses.
pub async fn up(
    client: &Client,
    s: &UpSettings,
    set: Option<MigrationSet>,
    progress: &Progress,
) -> Result<Report, CliError> {
    let started = Instant::now();
    let b = &s.bundle;
    let ns = b.namespace.as_str();

    let t = Instant::now();
    let ns_obj = objects::namespace_object(ns);
    let ns_outcome = apply::apply(client, ns, &ns_obj).await?;
    let mut steps = vec![Step::new("namespace", t, &[ns_outcome])];

    let t = Instant::now();
    let (certs, reused) = if b.tls {
        match existing_certs(client, ns).await {
            Some(c) => (Some(c), true),
            None => (Some(certs::generate(ns)?), false),
        }
    } else {
        (None, false)
    };
    if let (Some(path), Some(c)) = (&s.ca_out, &certs) {
        write_ca(path, &c.ca_pem)?;
    }
    let objs = objects::build(b, certs.as_ref());

    let certs_step = async {
        if objs.certs.is_empty() {
            return Ok(None);
        }
        let outcomes = apply_all(client, ns, &objs.certs).await?;
        let mut step = Step::new("certificates", t, &outcomes);
        if reused && step.status == "unchanged" {
            step.status = "reused".into();
        }
        progress.finish("certificates", step.status.clone());
        Ok::<_, CliError>(Some(step))
    };
    let rbac_step = async {
        if objs.rbac.is_empty() {
            return Ok(None);
        }
        let t = Instant::now();
        let step = Step::new("rbac", t, &apply_all(client, ns, &objs.rbac).await?);
        progress.finish("rbac", step.status.clone());
        Ok::<_, CliError>(Some(step))
    };
    let config_step = async {
        let t = Instant::now();
        let outcomes = apply_all(client, ns, &objs.datastorage_config).await?;
        Ok::<_, CliError>(Step::new("datastorage-config", t, &outcomes))
    };
    let datastorage = || {
        component(
            client,
            ns,
            objects::DATASTORAGE,
            std::slice::from_ref(&objs.datastorage),
            s,
            progress,
        )
    };
    let migrate_first = set.is_some();
    let pg_chain = postgres_then_migrations(client, &objs, s, set, progress);
    let redis_step = component(client, ns, objects::REDIS, &objs.redis, s, progress);
    if migrate_first {
        // DataStorage only after the migrations: it must never see a schema that is not there.
        let (crds, certs_s, rbac_s, (pg, mig), redis, config) = futures_util::try_join!(
            crds_and_manifests(client, s, progress),
            certs_step,
            rbac_step,
            pg_chain,
            redis_step,
            config_step,
        )?;
        steps.extend(crds);
        steps.extend(certs_s);
        steps.extend(rbac_s);
        steps.push(pg);
        steps.extend(mig);
        steps.push(redis);
        steps.push(config);
        steps.push(datastorage().await?);
    } else {
        // Nothing to wait for but its CRDs, certificates and config: DataStorage starts with
        // PostgreSQL and Redis, as a plain `kubectl apply` would start it.
        let ds_chain = async {
            let (crds, certs_s, config) = futures_util::try_join!(
                crds_and_manifests(client, s, progress),
                certs_step,
                config_step
            )?;
            let ds = datastorage().await?;
            Ok::<_, CliError>((crds, certs_s, config, ds))
        };
        let ((crds, certs_s, config, ds), rbac_s, (pg, _), redis) =
            futures_util::try_join!(ds_chain, rbac_step, pg_chain, redis_step)?;
        steps.extend(crds);
        steps.extend(certs_s);
        steps.extend(rbac_s);
        steps.push(pg);
        steps.push(redis);
        steps.push(config);
        steps.push(ds);
    }

    let node_ports = node_ports(client, ns).await?;
    Ok(Report {
        namespace: ns.to_string(),
        seconds: started.elapsed().as_secs_f64(),
        changed: steps.iter().any(Step::changed),
        results: steps,
        node_ports,
    })
}

fn write_ca(path: &std::path::Path, pem: &str) -> Result<(), CliError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, pem)
        .map_err(|e| CliError::failure(format!("cannot write the CA to {}: {e}", path.display())))
}

/// The NodePorts the Services got (they may have been picked by the API server), by port name
/// (`api` for DataStorage's `https`).
pub async fn node_ports(client: &Client, ns: &str) -> Result<BTreeMap<String, i32>, CliError> {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    let mut out = BTreeMap::new();
    for svc in [objects::DS_SERVICE, objects::POSTGRES] {
        let service = api.get_opt(svc).await.map_err(|e| {
            CliError::failure(format!("cannot read Service {svc}: {}", describe(&e)))
        })?;
        let ports = service.and_then(|s| s.spec).and_then(|s| s.ports);
        for p in ports.unwrap_or_default() {
            if let (Some(name), Some(np)) = (p.name, p.node_port) {
                let key = if name == "https" {
                    "api".to_string()
                } else {
                    name
                };
                out.insert(key, np);
            }
        }
    }
    Ok(out)
}

//! Server-side apply (field manager `ds-deploy`), saying for each object whether it was
//! created, changed or left as it was; and reading extra manifests (CRDs, RBAC, custom
//! resources) from YAML files, resolved through discovery.

use crate::cluster::describe;
use crate::objects::Object;
use e2e_core::CliError;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::Scope;
use kube::Client;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const FIELD_MANAGER: &str = "ds-deploy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

pub fn api(client: &Client, ns: &str, obj: &Object) -> Api<DynamicObject> {
    if obj.namespaced {
        let ns = obj.data.metadata.namespace.as_deref().unwrap_or(ns);
        Api::namespaced_with(client.clone(), ns, &obj.resource)
    } else {
        Api::all_with(client.clone(), &obj.resource)
    }
}

/// Applies one object; an unchanged resourceVersion means the apply changed nothing.
pub async fn apply(client: &Client, ns: &str, obj: &Object) -> Result<Outcome, CliError> {
    let api = api(client, ns, obj);
    let name = obj.name();
    let fail =
        |e: kube::Error| CliError::failure(format!("cannot apply {}: {}", obj.id(), describe(&e)));
    let before = api
        .get_opt(name)
        .await
        .map_err(fail)?
        .and_then(|o| o.metadata.resource_version);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let after = api
        .patch(name, &params, &Patch::Apply(&obj.data))
        .await
        .map_err(fail)?;
    Ok(match before {
        None => Outcome::Created,
        Some(rv) if after.metadata.resource_version.as_deref() == Some(rv.as_str()) => {
            Outcome::Unchanged
        }
        Some(_) => Outcome::Configured,
    })
}

/// The YAML documents of files and directories (`*.yaml`, `*.yml`, `*.json`, sorted).
pub fn read_manifests(paths: &[PathBuf]) -> Result<Vec<(PathBuf, DynamicObject)>, CliError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file()
                        && matches!(
                            f.extension().and_then(|x| x.to_str()),
                            Some("yaml" | "yml" | "json")
                        )
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p.clone());
        }
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", f.display())))?;
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| CliError::usage(format!("{}: not YAML: {e}", f.display())))?;
            if value.is_null() {
                continue;
            }
            let obj: DynamicObject = serde_json::from_value(value).map_err(|e| {
                CliError::usage(format!("{}: not a Kubernetes object: {e}", f.display()))
            })?;
            if obj.types.is_none() || obj.metadata.name.is_none() {
                return Err(CliError::usage(format!(
                    "{}: an object without apiVersion, kind or metadata.name",
                    f.display()
                )));
            }
            out.push((f.clone(), obj));
        }
    }
    Ok(out)
}

/// Resolves a manifest's kind through discovery, asking again for up to `patience` (a CRD
/// applied a moment ago); a kind no API serves is named with the hint that its CRD is missing.
pub async fn resolve(
    client: &Client,
    ns: &str,
    file: &Path,
    obj: DynamicObject,
    patience: Duration,
) -> Result<Object, CliError> {
    let types = obj.types.clone().unwrap_or_default();
    let gvk = GroupVersionKind::try_from(&types).map_err(|e| {
        CliError::usage(format!(
            "{}: apiVersion `{}`: {e}",
            file.display(),
            types.api_version
        ))
    })?;
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(100);
    let found = loop {
        match kube::discovery::pinned_kind(client, &gvk).await {
            Err(_) if Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => break other,
        }
    };
    let (resource, caps) = found.map_err(|e| {
        CliError::failure(format!(
            "{}: no API serves kind {} in {} ({}): is its CRD installed? Pass the CRD with --crds",
            file.display(),
            types.kind,
            types.api_version,
            describe(&e)
        ))
    })?;
    let namespaced = caps.scope == Scope::Namespaced;
    let mut data = obj;
    if namespaced && data.metadata.namespace.is_none() {
        data.metadata.namespace = Some(ns.to_string());
    }
    Ok(Object {
        resource,
        namespaced,
        data,
    })
}

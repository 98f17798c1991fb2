//! `down`: deletes what `up` made and waits until it is gone. Cluster-scoped objects shared by
//! bundles (the ClusterRoles, CRDs and cluster-scoped extras) go only when no other namespace
//! still holds a bundle, so `down` of one bundle never breaks another.

use crate::cluster::describe;
use crate::objects::{self, SELECTOR};
use e2e_core::CliError;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};
use kube::Client;
use std::time::Duration;

/// What `down` removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub deleted: Vec<String>,
    pub kept: Vec<String>,
}

/// Deletes every object of kind K that carries the bundle's labels.
async fn delete_labelled<K>(api: Api<K>, report: &mut Report) -> Result<(), CliError>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let kind = K::kind(&());
    let kind = kind.as_ref();
    let list = api
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .map_err(|e| CliError::failure(format!("cannot list {kind}s: {}", describe(&e))))?;
    for o in list.items {
        let name = o.meta().name.clone().unwrap_or_default();
        delete(&api, kind, &name, report).await?;
    }
    Ok(())
}

async fn delete<K>(
    api: &Api<K>,
    kind: &str,
    name: &str,
    report: &mut Report,
) -> Result<(), CliError>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {
            report.deleted.push(format!("{kind}/{name}"));
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(CliError::failure(format!(
            "cannot delete {kind}/{name}: {}",
            describe(&e)
        ))),
    }
}

/// Namespaces other than `ns` that hold a bundle.
async fn other_bundles(client: &Client, ns: &str) -> Result<Vec<String>, CliError> {
    let cms: Api<ConfigMap> = Api::all(client.clone());
    let list = cms
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .map_err(|e| CliError::failure(format!("cannot list ConfigMaps: {}", describe(&e))))?;
    let mut out: Vec<String> = list
        .items
        .into_iter()
        .filter(|c| c.metadata.name.as_deref() == Some("datastorage-config"))
        .filter_map(|c| c.metadata.namespace)
        .filter(|n| n != ns)
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The extra objects `up` recorded.
async fn extras(client: &Client, ns: &str) -> Vec<(ApiResource, Option<String>, String)> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let Ok(Some(cm)) = cms.get_opt(objects::EXTRAS_CONFIGMAP).await else {
        return Vec::new();
    };
    let text = cm
        .data
        .and_then(|d| d.get("objects.json").cloned())
        .unwrap_or_default();
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
    list.into_iter()
        .filter_map(|v| {
            let api_version = v["apiVersion"].as_str()?.to_string();
            let (group, version) = match api_version.split_once('/') {
                Some((g, v)) => (g.to_string(), v.to_string()),
                None => (String::new(), api_version.clone()),
            };
            Some((
                ApiResource {
                    group,
                    version,
                    api_version,
                    kind: v["kind"].as_str()?.to_string(),
                    plural: v["plural"].as_str()?.to_string(),
                },
                v["namespace"].as_str().map(str::to_string),
                v["name"].as_str()?.to_string(),
            ))
        })
        .collect()
}

pub async fn down(
    client: &Client,
    ns: &str,
    delete_namespace: bool,
    timeout: Duration,
) -> Result<Report, CliError> {
    let mut report = Report::default();
    let others = other_bundles(client, ns).await?;
    let shared_ok = others.is_empty();

    // Extra objects first (custom resources before their CRDs).
    for (ar, obj_ns, name) in extras(client, ns).await {
        let api: Api<DynamicObject> = match &obj_ns {
            Some(n) => Api::namespaced_with(client.clone(), n, &ar),
            None if shared_ok => Api::all_with(client.clone(), &ar),
            None => {
                report.kept.push(format!("{}/{name}", ar.kind));
                continue;
            }
        };
        if ar.kind != "CustomResourceDefinition" {
            delete(&api, &ar.kind, &name, &mut report).await?;
        }
    }

    let c = || client.clone();
    delete_labelled(Api::<Deployment>::namespaced(c(), ns), &mut report).await?;
    delete_labelled(Api::<Service>::namespaced(c(), ns), &mut report).await?;
    delete_labelled(Api::<ConfigMap>::namespaced(c(), ns), &mut report).await?;
    delete_labelled(Api::<Secret>::namespaced(c(), ns), &mut report).await?;
    delete_labelled(Api::<ServiceAccount>::namespaced(c(), ns), &mut report).await?;
    delete_labelled(
        Api::<PersistentVolumeClaim>::namespaced(c(), ns),
        &mut report,
    )
    .await?;

    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    delete(
        &bindings,
        "ClusterRoleBinding",
        &objects::auth_binding_name(ns),
        &mut report,
    )
    .await?;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if shared_ok {
        delete_labelled(roles, &mut report).await?;
        delete_labelled(crds, &mut report).await?;
    } else {
        report.kept.push(format!(
            "ClusterRoles and CRDs (still used by the bundle in {})",
            others.join(", ")
        ));
    }

    // Wait until the pods are gone: then nothing of the bundle runs any more.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let gone = async {
        loop {
            let list = pods
                .list(&ListParams::default().labels(SELECTOR))
                .await
                .map_err(|e| CliError::failure(format!("cannot list pods: {}", describe(&e))))?;
            let Some(p) = list.items.into_iter().next() else {
                return Ok::<_, CliError>(());
            };
            let name = p.metadata.name.clone().unwrap_or_default();
            let uid = p.metadata.uid.clone().unwrap_or_default();
            crate::wait::deleted(pods.clone(), &name, &uid, timeout).await?;
        }
    };
    tokio::time::timeout(timeout, gone).await.map_err(|_| {
        CliError::failure(format!(
            "the bundle's pods were still there after {}",
            humantime::format_duration(timeout)
        ))
    })??;

    if delete_namespace {
        let nss: Api<Namespace> = Api::all(client.clone());
        if let Ok(Some(n)) = nss.get_opt(ns).await {
            delete(&nss, "Namespace", ns, &mut report).await?;
            let uid = n.metadata.uid.unwrap_or_default();
            crate::wait::deleted(nss, ns, &uid, timeout).await?;
        }
    }
    Ok(report)
}

//! `status`: the bundle's components, one line each: COMPONENT READY IMAGE AGE.

use crate::cluster::describe;
use crate::objects;
use e2e_core::CliError;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub name: String,
    pub status: String,
    pub ready: String,
    pub image: String,
    pub age_seconds: Option<i64>,
}

pub async fn status(client: &Client, ns: &str) -> Result<Vec<Row>, CliError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let mut rows = Vec::new();
    for name in [objects::POSTGRES, objects::REDIS, objects::DATASTORAGE] {
        let d = api
            .get_opt(name)
            .await
            .map_err(|e| CliError::failure(format!("cannot read {name}: {}", describe(&e))))?;
        let Some(d) = d else {
            rows.push(Row {
                name: name.into(),
                status: "absent".into(),
                ready: "-".into(),
                image: "-".into(),
                age_seconds: None,
            });
            continue;
        };
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let ready = d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        let image = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let age = d.metadata.creation_timestamp.as_ref().map(|t| {
            let created = t.0.as_second();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(created);
            now - created
        });
        rows.push(Row {
            name: name.into(),
            status: if crate::wait::deployment_ready(&d) {
                "ready".into()
            } else {
                "not-ready".into()
            },
            ready: format!("{ready}/{want}"),
            image,
            age_seconds: age,
        });
    }
    Ok(rows)
}

/// `1h2m`, `3m4s`, `5s`.
pub fn age(secs: Option<i64>) -> String {
    let Some(s) = secs else { return "-".into() };
    let s = s.max(0);
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

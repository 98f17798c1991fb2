//! Finding a Kind cluster's node containers by the labels Kind puts on them.

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
use e2e_core::CliError;
use e2e_engine::error_text;
use std::collections::{BTreeSet, HashMap};

pub const CLUSTER_LABEL: &str = "io.x-k8s.kind.cluster";
pub const ROLE_LABEL: &str = "io.x-k8s.kind.role";

/// One node container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub role: String,
    /// The engine's state (`running`, `exited`, ...).
    pub state: String,
}

/// The cluster's internal nodes (roles `control-plane` and `worker`; the external load
/// balancer holds no images), control plane first, then by name.
pub async fn list(docker: &Docker, cluster: &str) -> Result<Vec<Node>, CliError> {
    let containers = labelled(docker, format!("{CLUSTER_LABEL}={cluster}")).await?;
    let mut nodes: Vec<Node> = containers
        .into_iter()
        .filter_map(|c| {
            let labels = c.labels.unwrap_or_default();
            let role = labels.get(ROLE_LABEL).cloned().unwrap_or_default();
            let name = c
                .names
                .unwrap_or_default()
                .into_iter()
                .next()?
                .trim_start_matches('/')
                .to_string();
            let state = c
                .state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into());
            is_internal(&role).then_some(Node { name, role, state })
        })
        .collect();
    nodes.sort_by(|a, b| {
        (a.role != "control-plane", &a.name).cmp(&(b.role != "control-plane", &b.name))
    });
    Ok(nodes)
}

/// Kind's `InternalNodes`: control planes and workers.
pub fn is_internal(role: &str) -> bool {
    role == "control-plane" || role == "worker"
}

/// Names of the Kind clusters that have containers in this engine.
pub async fn clusters(docker: &Docker) -> Result<BTreeSet<String>, CliError> {
    let containers = labelled(docker, CLUSTER_LABEL.to_string()).await?;
    Ok(containers
        .into_iter()
        .filter_map(|c| c.labels?.get(CLUSTER_LABEL).cloned())
        .collect())
}

/// Keeps the nodes named in `wanted` (`--nodes`); unknown names are a usage error that lists
/// the cluster's nodes.
pub fn restrict(nodes: Vec<Node>, wanted: &[String], cluster: &str) -> Result<Vec<Node>, CliError> {
    if wanted.is_empty() {
        return Ok(nodes);
    }
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|w| !nodes.iter().any(|n| &n.name == *w))
        .collect();
    if !unknown.is_empty() {
        return Err(CliError::usage(format!(
            "--nodes: {} not in cluster `{cluster}`; its nodes are: {}",
            list_quoted(unknown.iter().map(|s| s.as_str())),
            list_quoted(nodes.iter().map(|n| n.name.as_str()))
        )));
    }
    Ok(nodes
        .into_iter()
        .filter(|n| wanted.contains(&n.name))
        .collect())
}

/// `` `a`, `b` `` (or "none").
pub fn list_quoted<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = items.map(|s| format!("`{s}`")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The message for a cluster without nodes: which clusters exist here, and (when known)
/// where else it exists.
pub fn no_nodes_message(
    cluster: &str,
    engine: &str,
    here: &BTreeSet<String>,
    elsewhere: Option<(&str, &BTreeSet<String>)>,
) -> String {
    let mut m = format!("no nodes for Kind cluster `{cluster}` in {engine}; ");
    if here.is_empty() {
        m.push_str("no Kind clusters found there");
    } else {
        m.push_str(&format!(
            "clusters found: {}",
            list_quoted(here.iter().map(String::as_str))
        ));
    }
    if let Some((other, theirs)) = elsewhere {
        if theirs.contains(cluster) {
            m.push_str(&format!(
                ". Cluster `{cluster}` runs in {other}: use `--engine {}` (or E2E_ENGINE)",
                if other.starts_with("podman") {
                    "podman"
                } else {
                    "docker"
                }
            ));
        } else if !theirs.is_empty() {
            m.push_str(&format!(
                "; in {other}: {}",
                list_quoted(theirs.iter().map(String::as_str))
            ));
        }
    }
    m.push_str(". Check --cluster (E2E_KIND_CLUSTER), or create the cluster first");
    m
}

/// Every container (running or not) matching a label filter (`KEY` or `KEY=VALUE`).
async fn labelled(docker: &Docker, filter: String) -> Result<Vec<ContainerSummary>, CliError> {
    let filters = HashMap::from([("label".to_string(), vec![filter])]);
    docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(|e| CliError::failure(format!("listing containers failed: {}", error_text(&e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, role: &str) -> Node {
        Node {
            name: name.into(),
            role: role.into(),
            state: "running".into(),
        }
    }

    #[test]
    fn roles() {
        assert!(is_internal("control-plane"));
        assert!(is_internal("worker"));
        assert!(!is_internal("external-load-balancer"));
        assert!(!is_internal(""));
    }

    #[test]
    fn restrict_to_named_nodes() {
        let nodes = vec![
            node("c-control-plane", "control-plane"),
            node("c-worker", "worker"),
        ];
        let kept = restrict(nodes.clone(), &["c-worker".into()], "c").unwrap();
        assert_eq!(kept, vec![node("c-worker", "worker")]);
        assert_eq!(restrict(nodes.clone(), &[], "c").unwrap().len(), 2);
        let e = restrict(nodes, &["c-worker9".into()], "c").unwrap_err();
        assert_eq!(e.code, 2);
        assert!(
            e.message.contains("`c-worker9` not in cluster `c`"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("`c-control-plane`, `c-worker`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn no_nodes_lists_clusters_and_points_at_the_other_engine() {
        let here: BTreeSet<String> = ["a-e2e".to_string(), "b-e2e".to_string()].into();
        let m = no_nodes_message("x", "docker at unix:///var/run/docker.sock", &here, None);
        assert!(m.contains("no nodes for Kind cluster `x`"), "{m}");
        assert!(m.contains("clusters found: `a-e2e`, `b-e2e`"), "{m}");
        let there: BTreeSet<String> = ["x".to_string()].into();
        let m = no_nodes_message(
            "x",
            "docker",
            &BTreeSet::new(),
            Some(("podman 4.3.1", &there)),
        );
        assert!(m.contains("no Kind clusters found there"), "{m}");
        assert!(
            m.contains("runs in podman 4.3.1: use `--engine podman`"),
            "{m}"
        );
    }
}

//! Readiness by watching, never by sleeping: a Deployment is Ready when its newest generation's
//! replicas are all ready; its pods are watched too, so a state that will not heal on its own
//! (an image the node does not have, a container that keeps crashing) fails at once instead of
//! at the timeout. Conditions are plain functions of the objects, tested without a cluster.

use crate::cluster::describe;
use crate::progress::Progress;
use e2e_core::CliError;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::time::Duration;

/// Container waiting reasons that do not heal by waiting.
const HOPELESS: &[&str] = &[
    "ErrImageNeverPull",
    "InvalidImageName",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
];
/// Restarts after which a crash loop is a failure rather than a slow start.
const CRASH_RESTARTS: i32 = 2;

/// Where a Deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Ready,
    /// Still coming up: what it is doing.
    Waiting(String),
    /// Will not become Ready by itself: why.
    Failed(String),
}

/// Whether the Deployment's current generation is fully rolled out and ready.
pub fn deployment_ready(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &d.status else { return false };
    let observed = st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    observed
        && st.updated_replicas.unwrap_or(0) >= want
        && st.ready_replicas.unwrap_or(0) >= want
        && st.available_replicas.unwrap_or(0) >= want
        && st.replicas.unwrap_or(0) == want
}

/// The images of the Deployment's pod template: pods running others are from an older
/// rollout and do not count.
fn template_images(d: &Deployment) -> Vec<String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| {
            p.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// What one pod says about its Deployment's chances.
pub fn pod_state(p: &Pod) -> State {
    if p.metadata.deletion_timestamp.is_some() {
        return State::Waiting("old pod terminating".into());
    }
    let Some(st) = &p.status else {
        return State::Waiting("pod created".into());
    };
    for c in st.container_statuses.iter().flatten() {
        let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(w) = waiting {
            let reason = w.reason.clone().unwrap_or_default();
            let msg = w.message.clone().unwrap_or_default();
            if HOPELESS.contains(&reason.as_str())
                || (reason == "CrashLoopBackOff" && c.restart_count >= CRASH_RESTARTS)
            {
                let detail = if msg.is_empty() {
                    String::new()
                } else {
                    format!(": {msg}")
                };
                return State::Failed(format!(
                    "container {} of pod {}: {reason}{detail}",
                    c.name,
                    p.metadata.name.as_deref().unwrap_or("?")
                ));
            }
            return State::Waiting(if reason.is_empty() {
                "container waiting".into()
            } else {
                reason
            });
        }
        if !c.ready {
            let restarts = if c.restart_count > 0 {
                format!(", {} restarts", c.restart_count)
            } else {
                String::new()
            };
            return State::Waiting(format!("running, not ready{restarts}"));
        }
    }
    for cond in st.conditions.iter().flatten() {
        if cond.type_ == "PodScheduled" && cond.status == "False" {
            return State::Waiting(format!(
                "unschedulable: {}",
                cond.message.clone().unwrap_or_default()
            ));
        }
    }
    match st.phase.as_deref() {
        Some("Running") => State::Ready,
        Some(phase) => State::Waiting(phase.to_string()),
        None => State::Waiting("pending".into()),
    }
}

/// The Deployment's state from itself and its current pods.
pub fn state(d: Option<&Deployment>, pods: &[&Pod]) -> State {
    let Some(d) = d else {
        return State::Waiting("deployment not created yet".into());
    };
    if deployment_ready(d) {
        return State::Ready;
    }
    let images = template_images(d);
    let current: Vec<&&Pod> = pods
        .iter()
        .filter(|p| {
            let pod_images: Vec<String> = p
                .spec
                .as_ref()
                .map(|s| {
                    s.containers
                        .iter()
                        .filter_map(|c| c.image.clone())
                        .collect()
                })
                .unwrap_or_default();
            pod_images == images
        })
        .collect();
    let mut waiting = None;
    for p in &current {
        match pod_state(p) {
            State::Failed(why) => return State::Failed(why),
            State::Waiting(w) => waiting = waiting.or(Some(w)),
            State::Ready => {}
        }
    }
    State::Waiting(match (waiting, current.is_empty()) {
        (Some(w), _) => w,
        (None, true) => "waiting for a pod".into(),
        (None, false) => "rolling out".into(),
    })
}

/// One watch event of either stream; one lives at a time, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Seen {
    Deployment(Event<Deployment>),
    Pod(Event<Pod>),
}

/// Waits until Deployment `name` in `ns` (pods labelled `app=name`) is Ready.
pub async fn deployment(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
    progress: &Progress,
) -> Result<(), CliError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let d_stream = watcher::watcher(
        deployments,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .map_ok(Seen::Deployment);
    let p_stream = watcher::watcher(
        pods,
        watcher::Config::default().labels(&format!("app={name}")),
    )
    .map_ok(Seen::Pod);
    let mut events = futures_util::stream::select(d_stream.boxed(), p_stream.boxed());

    let mut dep: Option<Deployment> = None;
    let mut pod_map: BTreeMap<String, Pod> = BTreeMap::new();
    let mut init_pods: Option<BTreeMap<String, Pod>> = None;
    let mut last = State::Waiting("starting".into());
    let run = async {
        while let Some(ev) = events.next().await {
            match ev {
                Ok(Seen::Deployment(Event::Apply(d) | Event::InitApply(d))) => dep = Some(d),
                Ok(Seen::Deployment(Event::Delete(_))) => dep = None,
                Ok(Seen::Deployment(_)) => {}
                Ok(Seen::Pod(Event::Init)) => init_pods = Some(BTreeMap::new()),
                Ok(Seen::Pod(Event::InitApply(p))) => {
                    let key = p.metadata.name.clone().unwrap_or_default();
                    init_pods.get_or_insert_with(BTreeMap::new).insert(key, p);
                }
                Ok(Seen::Pod(Event::InitDone)) => {
                    if let Some(m) = init_pods.take() {
                        pod_map = m;
                    }
                }
                Ok(Seen::Pod(Event::Apply(p))) => {
                    pod_map.insert(p.metadata.name.clone().unwrap_or_default(), p);
                }
                Ok(Seen::Pod(Event::Delete(p))) => {
                    pod_map.remove(p.metadata.name.as_deref().unwrap_or_default());
                }
                // The watcher retries on its own; say so if it keeps failing.
                Err(e) => {
                    progress.set(name, format!("watch interrupted: {e}"));
                    continue;
                }
            }
            let pods: Vec<&Pod> = pod_map.values().collect();
            last = state(dep.as_ref(), &pods);
            match &last {
                State::Ready => return Ok(()),
                State::Failed(why) => return Err(why.clone()),
                State::Waiting(w) => progress.set(name, w.clone()),
            }
        }
        Err("the watch ended".to_string())
    };
    let result = tokio::time::timeout(timeout, run).await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(CliError::failure(format!(
            "{name} will not become Ready: {why}"
        ))),
        Err(_) => {
            let what = match last {
                State::Waiting(w) => w,
                _ => "not ready".into(),
            };
            Err(CliError::failure(format!(
                "{name} was not Ready within {} (last state: {what})",
                humantime::format_duration(timeout)
            )))
        }
    }
}

/// Waits until CRD `name` is Established.
pub async fn crd_established(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<(), CliError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let cond = kube::runtime::conditions::is_crd_established();
    match tokio::time::timeout(
        timeout,
        kube::runtime::wait::await_condition(api, name, cond),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(CliError::failure(format!("waiting for CRD {name}: {e}"))),
        Err(_) => Err(CliError::failure(format!(
            "CRD {name} was not Established within {}",
            humantime::format_duration(timeout)
        ))),
    }
}

/// Waits until the object `api`/`name` is gone.
pub async fn deleted<K>(
    api: Api<K>,
    name: &str,
    uid: &str,
    timeout: Duration,
) -> Result<(), CliError>
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + 'static,
{
    let cond = kube::runtime::conditions::is_deleted(uid);
    match tokio::time::timeout(
        timeout,
        kube::runtime::wait::await_condition(api, name, cond),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(CliError::failure(format!("waiting for {name} to go: {e}"))),
        Err(_) => Err(CliError::failure(format!(
            "{name} was still there after {}",
            humantime::format_duration(timeout)
        ))),
    }
}

pub fn api_error(what: &str, e: &kube::Error) -> CliError {
    CliError::failure(format!("{what}: {}", describe(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p1"},
            "spec": {"containers": [{"name": "c", "image": "img:1"}]},
            "status": status
        }))
        .unwrap()
    }

    fn dep(status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "img:1"}]}}},
            "status": status
        }))
        .unwrap()
    }

    #[test]
    fn never_pull_fails_at_once() {
        let p = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "c", "image": "img:1", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "Container image \"img:1\" is not present with pull policy of Never"}}}]}));
        let d = dep(json!({"observedGeneration": 2, "replicas": 1}));
        match state(Some(&d), &[&p]) {
            State::Failed(why) => assert!(why.contains("ErrImageNeverPull"), "{why}"),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn crash_loop_fails_after_restarts_not_before() {
        let status = |n: i32| {
            json!({"phase": "Running", "containerStatuses": [{
            "name": "c", "image": "img:1", "imageID": "", "ready": false, "restartCount": n,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]})
        };
        let d = dep(json!({"observedGeneration": 2, "replicas": 1}));
        assert!(matches!(
            state(Some(&d), &[&pod(status(1))]),
            State::Waiting(_)
        ));
        assert!(matches!(
            state(Some(&d), &[&pod(status(2))]),
            State::Failed(_)
        ));
    }

    #[test]
    fn ready_needs_the_current_generation() {
        let ready = json!({"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1});
        let mut old = ready.clone();
        old["observedGeneration"] = json!(1);
        let mut new = ready;
        new["observedGeneration"] = json!(2);
        assert!(!deployment_ready(&dep(old)));
        assert!(deployment_ready(&dep(new)));
    }

    #[test]
    fn pods_of_an_older_template_do_not_count() {
        let mut p = pod(json!({"phase": "Running", "containerStatuses": [{
            "name": "c", "image": "old:0", "imageID": "", "ready": false, "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}));
        p.spec.as_mut().unwrap().containers[0].image = Some("old:0".into());
        let d = dep(json!({"observedGeneration": 2, "replicas": 2}));
        assert!(matches!(state(Some(&d), &[&p]), State::Waiting(_)));
    }
}

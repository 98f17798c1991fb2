//! Why the bundle is not Ready: per pod its phase, conditions, container states with reasons and
//! restarts, the namespace's last events, the last log lines of failing containers, and a hint
//! for each known failure (an image the node lacks, a crash loop, a pod nobody schedules).

use crate::cluster::describe;
use e2e_core::CliError;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use std::fmt::Write as _;
use std::path::Path;

const LOG_LINES: i64 = 50;
const EVENTS: usize = 25;

/// The diagnosis, and whether it found something wrong.
pub struct Diagnosis {
    pub text: String,
    pub problems: usize,
}

/// The hint for a container waiting or terminated with `reason`.
pub fn hint(reason: &str, image: &str) -> Option<String> {
    Some(match reason {
        "ErrImageNeverPull" => format!(
            "the image {image} is not in the node: load it with `kind-load --cluster <cluster> {image}` (build it with image-build first if the engine lacks it)"
        ),
        "ErrImagePull" | "ImagePullBackOff" => format!(
            "the node cannot pull {image}: load it into the nodes (kind-load) and deploy with --pull-policy Never, or check the registry and its credentials"
        ),
        "InvalidImageName" => format!("{image} is not a valid image reference"),
        "CrashLoopBackOff" | "Error" => {
            "the container keeps exiting: its logs are below".to_string()
        }
        "CreateContainerConfigError" => {
            "a Secret or ConfigMap the container needs is missing: see the events below".to_string()
        }
        "OOMKilled" => "the container ran out of memory: raise its limit or use --resources none".to_string(),
        "Unschedulable" => {
            "no node takes the pod: see the scheduling events below (too little CPU/memory? try --resources none)".to_string()
        }
        _ => return None,
    })
}

pub async fn diagnose(
    client: &Client,
    ns: &str,
    out: Option<&Path>,
) -> Result<Diagnosis, CliError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let list = pods
        .list(&ListParams::default())
        .await
        .map_err(|e| CliError::failure(format!("cannot list pods in {ns}: {}", describe(&e))))?;
    let mut text = String::new();
    let mut problems = 0;
    let _ = writeln!(text, "Diagnosis of namespace {ns}:");
    if list.items.is_empty() {
        let _ = writeln!(
            text,
            "  no pods (was the bundle deployed here? `ds-deploy status`)"
        );
        problems += 1;
    }
    let mut failing: Vec<(String, String, bool)> = Vec::new();
    for p in &list.items {
        let name = p.metadata.name.clone().unwrap_or_default();
        let st = p.status.clone().unwrap_or_default();
        let ready = st
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready {
            problems += 1;
        }
        let _ = writeln!(
            text,
            "  pod {name}: {}{}{}",
            st.phase.as_deref().unwrap_or("Unknown"),
            if ready { ", Ready" } else { ", not Ready" },
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .map(|n| format!(", node {n}"))
                .unwrap_or_default()
        );
        for c in st
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.status != "True")
        {
            let _ = writeln!(
                text,
                "    condition {}=False{}{}",
                c.type_,
                c.reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default(),
                c.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
            if c.reason.as_deref() == Some("Unschedulable") {
                if let Some(h) = hint("Unschedulable", "") {
                    let _ = writeln!(text, "    hint: {h}");
                }
            }
        }
        for c in st.container_statuses.iter().flatten() {
            let state = c.state.clone().unwrap_or_default();
            let (what, reason) = if let Some(w) = &state.waiting {
                let r = w.reason.clone().unwrap_or_default();
                (
                    format!(
                        "waiting: {r}{}",
                        w.message
                            .as_ref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ),
                    r,
                )
            } else if let Some(t) = &state.terminated {
                let r = t.reason.clone().unwrap_or_default();
                (format!("terminated: {r} (exit code {})", t.exit_code), r)
            } else {
                ("running".to_string(), String::new())
            };
            let last = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| {
                    format!(
                        "; last exit: {} (exit code {})",
                        t.reason.clone().unwrap_or_default(),
                        t.exit_code
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                text,
                "    container {}: {what}, ready={}, restarts={}{last}",
                c.name, c.ready, c.restart_count
            );
            let last_reason = c
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .and_then(|t| t.reason.clone());
            let h =
                hint(&reason, &c.image).or_else(|| last_reason.and_then(|r| hint(&r, &c.image)));
            if let Some(h) = h {
                let _ = writeln!(text, "    hint: {h}");
            }
            if !c.ready
                && (c.restart_count > 0 || state.running.is_some() || state.terminated.is_some())
            {
                failing.push((name.clone(), c.name.clone(), c.restart_count > 0));
            }
        }
    }

    let events = recent_events(client, ns).await;
    let _ = writeln!(text, "Last events:");
    if events.is_empty() {
        let _ = writeln!(text, "  (none)");
    }
    for e in events.iter().rev().take(EVENTS).rev() {
        let _ = writeln!(text, "  {e}");
        if e.contains("no matches for kind") {
            let _ = writeln!(
                text,
                "    hint: a custom resource's CRD is missing: pass the CRDs with --crds"
            );
        }
    }

    for (pod, container, restarted) in &failing {
        let mut lp = LogParams {
            container: Some(container.clone()),
            tail_lines: Some(LOG_LINES),
            ..Default::default()
        };
        let mut logs = pods.logs(pod, &lp).await.unwrap_or_default();
        if logs.trim().is_empty() && *restarted {
            lp.previous = true;
            logs = pods.logs(pod, &lp).await.unwrap_or_default();
        }
        let _ = writeln!(text, "Last {LOG_LINES} log lines of {pod}/{container}:");
        for line in logs.lines() {
            let _ = writeln!(text, "  | {line}");
        }
    }

    if let Some(dir) = out {
        write_out(&pods, &list.items, &events, &text, dir).await?;
    }
    Ok(Diagnosis { text, problems })
}

/// The namespace's events, oldest first, one line each.
async fn recent_events(client: &Client, ns: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return Vec::new();
    };
    let mut items = list.items;
    // Seconds are enough to order what happened, and read alike whichever field is set.
    let when = |e: &Event| {
        let secs = e
            .last_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .or_else(|| e.event_time.as_ref().map(|t| t.0.as_second()))
            .or_else(|| {
                e.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_second())
            })
            .unwrap_or(0);
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
        e2e_core::report::utc_timestamp(t)
    };
    items.sort_by_key(when);
    items
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}/{}: {}",
                when(e),
                e.type_.as_deref().unwrap_or(""),
                e.reason.as_deref().unwrap_or(""),
                e.involved_object.kind.as_deref().unwrap_or(""),
                e.involved_object.name.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect()
}

async fn write_out(
    pods: &Api<Pod>,
    items: &[Pod],
    events: &[String],
    text: &str,
    dir: &Path,
) -> Result<(), CliError> {
    let fail = |p: &Path, e: std::io::Error| {
        CliError::failure(format!("cannot write {}: {e}", p.display()))
    };
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| fail(&logs, e))?;
    let p = dir.join("diagnosis.txt");
    std::fs::write(&p, text).map_err(|e| fail(&p, e))?;
    let p = dir.join("events.txt");
    std::fs::write(&p, events.join("\n") + "\n").map_err(|e| fail(&p, e))?;
    for pod in items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            let lp = LogParams {
                container: Some(c.name.clone()),
                ..Default::default()
            };
            let body = pods
                .logs(&name, &lp)
                .await
                .unwrap_or_else(|e| format!("(no logs: {})\n", describe(&e)));
            let p = logs.join(format!("{name}_{}.log", c.name));
            std::fs::write(&p, body).map_err(|e| fail(&p, e))?;
        }
        let p = logs.join(format!("{name}.yaml"));
        let yaml = serde_norway::to_string(pod).unwrap_or_default();
        std::fs::write(&p, yaml).map_err(|e| fail(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_name_the_fix() {
        assert!(hint("ErrImageNeverPull", "localhost/ds:1")
            .unwrap()
            .contains("kind-load"));
        assert!(hint("CrashLoopBackOff", "x").unwrap().contains("logs"));
        assert!(hint("Unschedulable", "")
            .unwrap()
            .contains("scheduling events"));
        assert!(hint("Running", "x").is_none());
    }
}

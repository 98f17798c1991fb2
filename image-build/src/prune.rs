//! `image-build prune`: removes the images image-build made, chosen by their labels
//! (consumer, age), with a dry run.

use crate::labels;
use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions};
use bollard::Docker;
use e2e_core::CliError;
use e2e_engine::error_text;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct PruneOptions {
    pub consumer: Option<String>,
    pub older_than: Option<Duration>,
    pub dry_run: bool,
}

/// One image chosen by prune.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    /// Its tags (`<none>` images are named by ID).
    pub references: Vec<String>,
    pub id: String,
    pub consumer: Option<String>,
    pub created: Option<String>,
    pub size: i64,
    #[serde(skip)]
    pub parent: String,
    /// Removed now (false in a dry run or when the engine refused).
    pub removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_because: Option<String>,
}

/// Finds the images to prune and (unless a dry run) removes them. Images an engine refuses
/// to remove because a container uses them are kept and reported.
pub async fn prune(client: &Docker, opts: &PruneOptions) -> Result<Vec<Pruned>, CliError> {
    // One label filter only: Podman 4.3's compat API returns nothing for two. The consumer is
    // checked here.
    let filters = vec![format!("{}={}", labels::TOOL, labels::TOOL_NAME)];
    let images = client
        .list_images(Some(ListImagesOptions {
            all: false,
            filters: Some(HashMap::from([("label".to_string(), filters)])),
            ..Default::default()
        }))
        .await
        .map_err(|e| CliError::failure(format!("cannot list images: {}", error_text(&e))))?;
    let now = SystemTime::now();
    let mut out = Vec::new();
    for img in images {
        // Engines apply the label filter; checked again so that nothing else is ever removed.
        if img.labels.get(labels::TOOL).map(String::as_str) != Some(labels::TOOL_NAME) {
            continue;
        }
        let consumer = img.labels.get(labels::CONSUMER).cloned();
        if opts.consumer.is_some() && consumer != opts.consumer {
            continue;
        }
        // The engine's own creation time: the created label is the source's time (commit or
        // SOURCE_DATE_EPOCH), kept reproducible, so it says nothing about the image's age.
        let created = UNIX_EPOCH + Duration::from_secs(img.created.max(0) as u64);
        if let Some(min_age) = opts.older_than {
            let age = now.duration_since(created).unwrap_or_default();
            if age < min_age {
                continue;
            }
        }
        let tags: Vec<String> = img
            .repo_tags
            .iter()
            .filter(|t| t.as_str() != "<none>:<none>")
            .cloned()
            .collect();
        out.push(Pruned {
            references: tags,
            id: img.id.clone(),
            consumer,
            created: Some(e2e_core::report::utc_timestamp(created)),
            size: img.size,
            parent: img.parent_id.clone(),
            removed: false,
            kept_because: None,
        });
    }
    let out = removal_order(out);
    if opts.dry_run {
        return Ok(out);
    }
    let mut out = out;
    for p in &mut out {
        // Untag each name (so an image that also carries foreign tags is handled one name
        // at a time), then the ID when it had none.
        let names: Vec<String> = if p.references.is_empty() {
            vec![p.id.clone()]
        } else {
            p.references.clone()
        };
        let mut err = None;
        for n in &names {
            if let Err(e) = client
                .remove_image(
                    n,
                    Some(RemoveImageOptions {
                        force: false,
                        noprune: false,
                        ..Default::default()
                    }),
                    None,
                )
                .await
            {
                err = Some(match &e {
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 404, ..
                    } => continue,
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 409,
                        message,
                    } => format!("in use: {}", message.trim()),
                    other => error_text(other),
                });
            }
        }
        match err {
            None => p.removed = true,
            Some(why) => p.kept_because = Some(why),
        }
    }
    Ok(out)
}

/// Tagged images first (by name), then untagged ones (an earlier build's image whose tag
/// moved on, or Podman's per-step cache images, which carry the build's labels too), each
/// before its parent, so that no removal fails for a child still being there.
fn removal_order(mut all: Vec<Pruned>) -> Vec<Pruned> {
    all.sort_by(|a, b| a.references.cmp(&b.references).then(a.id.cmp(&b.id)));
    let (mut tagged, mut rest): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|p| !p.references.is_empty());
    while !rest.is_empty() {
        let i = rest
            .iter()
            .position(|p| {
                !rest.iter().any(|c| {
                    !c.parent.is_empty() && c.parent.ends_with(p.id.trim_start_matches("sha256:"))
                })
            })
            .unwrap_or(0);
        tagged.push(rest.remove(i));
    }
    tagged
}

impl Pruned {
    /// The name printed on stdout: its first tag, else its ID.
    pub fn name(&self) -> &str {
        self.references.first().unwrap_or(&self.id)
    }
}

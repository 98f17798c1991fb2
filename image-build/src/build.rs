//! One image build through the engine API: context planned and checked, tar streamed as the
//! request body, the engine's output parsed into steps, log lines and errors.

use crate::context::{self, ContextPlan};
use crate::labels::{self, GitInfo};
use crate::progress::Slot;
use crate::spec::ImageSpec;
use bollard::query_parameters::BuildImageOptions;
use bollard::Docker;
use bytes::Bytes;
use e2e_engine::Flavor;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// How many lines of build output a failure shows.
pub const TAIL_LINES: usize = 30;

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Built now.
    Built,
    /// Not built: the reference already existed (`--skip-existing`).
    Skipped,
    Failed,
    TimedOut,
    /// Stopped by Ctrl-C or `--fail-fast`.
    Cancelled,
}

/// The result of one build, as printed with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct BuildResult {
    pub reference: String,
    pub status: Status,
    /// Image ID (`sha256:…`).
    pub id: Option<String>,
    /// Image size in bytes.
    pub size: Option<i64>,
    pub seconds: f64,
    /// True when nothing was built: skipped as existing, or every Dockerfile step came from
    /// the engine's build cache.
    pub cached: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// With `--push`: the manifest digest the registry stored (`sha256:…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// With `--push`: how long the push took (included in `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_seconds: Option<f64>,
}

impl BuildResult {
    pub fn new(reference: &str, status: Status) -> Self {
        BuildResult {
            reference: reference.to_string(),
            status,
            id: None,
            size: None,
            seconds: 0.0,
            cached: false,
            step: None,
            error: None,
            log_tail: Vec::new(),
            digest: None,
            push_seconds: None,
        }
    }

    pub fn ok(&self) -> bool {
        matches!(self.status, Status::Built | Status::Skipped)
    }
}

/// Settings shared by every build of one run.
#[derive(Debug, Clone)]
pub struct BuildEnv {
    pub client: Docker,
    pub flavor: Flavor,
    pub consumer: String,
    /// `SOURCE_DATE_EPOCH`, for the created labels (else the commit time; never the clock, so
    /// that an unchanged rebuild gives the same image).
    pub created: Option<SystemTime>,
    pub skip_existing: bool,
    pub timeout: Option<Duration>,
    /// `--push`: where built images go next.
    pub push: Option<crate::push::PushEnv>,
    git: Arc<Mutex<HashMap<PathBuf, GitInfo>>>,
}

impl BuildEnv {
    pub fn new(
        client: Docker,
        flavor: Flavor,
        consumer: String,
        skip_existing: bool,
        timeout: Option<Duration>,
    ) -> Self {
        BuildEnv {
            client,
            flavor,
            consumer,
            created: labels::source_date_epoch().ok().flatten(),
            skip_existing,
            timeout,
            push: None,
            git: Arc::default(),
        }
    }

    async fn git_info(&self, dir: PathBuf) -> GitInfo {
        if let Some(g) = self.git.lock().ok().and_then(|m| m.get(&dir).cloned()) {
            return g;
        }
        let d = dir.clone();
        let g = tokio::task::spawn_blocking(move || labels::git_info(&d))
            .await
            .unwrap_or_default();
        if let Ok(mut m) = self.git.lock() {
            m.insert(dir, g.clone());
        }
        g
    }
}

/// The name an engine stores a reference under: Podman puts names without a registry under
/// `localhost/`.
pub fn stored_reference(flavor: Flavor, reference: &str) -> String {
    if flavor == Flavor::Podman {
        if let Ok(r) = e2e_core::Reference::parse(reference) {
            if r.registry.is_none() {
                return format!("localhost/{reference}");
            }
        }
    }
    reference.to_string()
}

/// Builds one image (with the per-build timeout). Never panics on engine trouble: every
/// outcome is a [`BuildResult`].
pub async fn build(env: &BuildEnv, spec: &ImageSpec, slot: &Slot) -> BuildResult {
    let start = Instant::now();
    let reference = stored_reference(env.flavor, &spec.reference);
    let mut progress = Progress::default();
    let outcome = match env.timeout {
        Some(t) => match tokio::time::timeout(t, run(env, spec, &reference, slot, &mut progress)).await
        {
            Ok(r) => r,
            Err(_) => Err(Failure {
                status: Status::TimedOut,
                message: format!(
                    "timed out after {}; the build request was closed, which makes the engine stop the build (raise --timeout if it needs longer)",
                    humantime::format_duration(t)
                ),
            }),
        },
        None => run(env, spec, &reference, slot, &mut progress).await,
    };
    let mut result = BuildResult::new(&reference, Status::Built);
    result.seconds = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    match outcome {
        Ok(done) => {
            result.status = done.status;
            result.id = done.id;
            result.size = done.size;
            result.cached = done.status == Status::Skipped || progress.all_cached();
        }
        Err(f) => {
            result.status = f.status;
            result.error = Some(f.message);
            result.step = progress.current.clone();
            result.log_tail = progress.tail.iter().cloned().collect();
        }
    }
    result
}

struct Done {
    status: Status,
    id: Option<String>,
    size: Option<i64>,
}

struct Failure {
    status: Status,
    message: String,
}

impl Failure {
    fn failed(message: impl Into<String>) -> Self {
        Failure {
            status: Status::Failed,
            message: message.into(),
        }
    }
}

/// What the engine's output told so far.
#[derive(Debug, Default)]
struct Progress {
    /// The current step (`Step 2/5 : RUN make`).
    current: Option<String>,
    /// Per step: its text, and whether it came from the cache.
    steps: Vec<(String, bool)>,
    tail: VecDeque<String>,
    partial: String,
    id: Option<String>,
}

impl Progress {
    fn line(&mut self, line: &str, slot: &Slot) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            return;
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        slot.log(line);
        let t = line.trim_start();
        // Docker's classic builder: `Step 2/5 : RUN x`; Podman/buildah: `STEP 2/5: RUN x`.
        if t.starts_with("Step ") || t.starts_with("STEP ") {
            if let Some((head, _)) = t.split_once(':') {
                if head.contains('/') {
                    self.current = Some(t.to_string());
                    self.steps.push((t.to_string(), false));
                    slot.status(t);
                }
            }
        } else if t.starts_with("---> Using cache") || t.starts_with("--> Using cache") {
            if let Some(last) = self.steps.last_mut() {
                last.1 = true;
            }
        }
    }

    fn text(&mut self, s: &str, slot: &Slot) {
        self.partial.push_str(s);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(&line[..line.len() - 1], slot);
        }
    }

    fn flush(&mut self, slot: &Slot) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest, slot);
        }
    }

    /// Every Dockerfile step came from the cache, the `LABEL` step holding our labels
    /// included (they are reproducible, so an unchanged rebuild is the same image).
    fn all_cached(&self) -> bool {
        let real: Vec<_> = self
            .steps
            .iter()
            .filter(|(text, _)| {
                let instr = text.split_once(':').map(|(_, i)| i.trim()).unwrap_or("");
                !instr.to_ascii_uppercase().starts_with("FROM ")
            })
            .collect();
        !real.is_empty() && real.iter().all(|(_, cached)| *cached)
    }
}

async fn run(
    env: &BuildEnv,
    spec: &ImageSpec,
    reference: &str,
    slot: &Slot,
    progress: &mut Progress,
) -> Result<Done, Failure> {
    let client = &env.client;
    if env.skip_existing {
        if let Ok(img) = client.inspect_image(reference).await {
            slot.event("exists already; not built (--skip-existing)");
            return Ok(Done {
                status: Status::Skipped,
                id: img.id,
                size: img.size,
            });
        }
    }

    let (ctx, file) = (spec.context.clone(), spec.dockerfile.clone());
    let mut plan: ContextPlan =
        tokio::task::spawn_blocking(move || context::plan(&ctx, file.as_deref()))
            .await
            .map_err(|e| Failure::failed(format!("context walk failed: {e}")))?
            .map_err(|e| Failure::failed(e.0))?;

    // Refuse COPY/ADD sources outside the context before sending anything.
    let df_path = spec
        .dockerfile
        .clone()
        .unwrap_or_else(|| plan.root.join(&plan.dockerfile_name));
    let df_text = plan.dockerfile_text().unwrap_or_default();
    if let Some(e) = context::find_escapes(&df_text).first() {
        progress.current = Some(format!(
            "{} {} (Dockerfile line {})",
            e.instruction, e.source, e.line
        ));
        return Err(Failure::failed(format!(
            "`{} {}` at line {} of `{}` reads a path outside the build context `{}`; refused. \
             Move the file into the context, or use a wider --context",
            e.instruction,
            e.source,
            e.line,
            df_path.display(),
            plan.root.display()
        )));
    }

    let git = env.git_info(plan.root.clone()).await;
    let mut all_labels = labels::labels(&env.consumer, env.created, &git, &plan.root);
    for (k, v) in &spec.labels {
        all_labels.insert(k.clone(), v.clone());
    }
    // Docker's classic builder makes one step (one container) per API label, and Podman one
    // LABEL step per label in the API map's (random) order, which defeats its cache; folded
    // into a single LABEL instruction, in key order, they cost one step and are cached.
    let mut api_labels = Some(all_labels.clone().into_iter().collect::<HashMap<_, _>>());
    let list: Vec<(String, String)> = all_labels.into_iter().collect();
    if let Some(text) = context::fold_labels(&df_text, &list, spec.target.as_deref()) {
        if plan.replace_dockerfile(text) {
            api_labels = None;
        }
    }

    let options = BuildImageOptions {
        dockerfile: plan.dockerfile_name.clone(),
        t: Some(reference.to_string()),
        nocache: spec.no_cache,
        pull: spec.pull.then(|| "1".to_string()),
        rm: true,
        forcerm: true,
        buildargs: (!spec.build_args.is_empty())
            .then(|| spec.build_args.clone().into_iter().collect()),
        labels: api_labels,
        platform: spec.platform.clone().unwrap_or_default(),
        target: spec.target.clone().unwrap_or_default(),
        ..Default::default()
    };

    slot.event(&format!(
        "sending context: {} entries, {} ({} excluded by .dockerignore)",
        plan.entries.len(),
        human_bytes(plan.bytes),
        plan.excluded
    ));
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let writer = tokio::task::spawn_blocking(move || context::write_tar(&plan, tx));
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut stream = client.build_image(options, None, Some(bollard::body_stream(body)));

    let mut failure: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = &info.stream {
                    progress.text(s, slot);
                }
                if let Some(s) = &info.status {
                    progress.flush(slot);
                    progress.line(s, slot);
                }
                if let Some(id) = info.aux.as_ref().and_then(|a| a.id.clone()) {
                    progress.id = Some(id);
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                failure = Some(error);
                break;
            }
            Err(e) => {
                failure = Some(engine_error(&e));
                break;
            }
        }
    }
    progress.flush(slot);
    drop(stream);
    let sent = writer.await;
    if let Some(msg) = failure {
        // A context that could not be read is the real cause of an aborted request.
        if let Ok(Err(e)) = &sent {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Failure::failed(format!(
                    "sending the build context failed: {e}"
                )));
            }
        }
        return Err(Failure::failed(msg.trim().to_string()));
    }
    if let Ok(Err(e)) = sent {
        return Err(Failure::failed(format!(
            "sending the build context failed: {e}"
        )));
    }
    let img = client.inspect_image(reference).await.map_err(|e| {
        Failure::failed(format!(
            "the engine reported success but `{reference}` is not there: {}",
            engine_error(&e)
        ))
    })?;
    Ok(Done {
        status: Status::Built,
        id: img.id.or(progress.id.clone()),
        size: img.size,
    })
}

/// A one-line description of an engine error.
pub fn engine_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("engine answered {status_code}: {}", message.trim()),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(e) = src {
                s.push_str(&format!(": {e}"));
                src = e.source();
            }
            s
        }
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_names_get_localhost() {
        assert_eq!(stored_reference(Flavor::Podman, "app:1"), "localhost/app:1");
        assert_eq!(
            stored_reference(Flavor::Podman, "quay.io/x/app:1"),
            "quay.io/x/app:1"
        );
        assert_eq!(stored_reference(Flavor::Docker, "app:1"), "app:1");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(104_857_600), "104.9 MB");
    }
}

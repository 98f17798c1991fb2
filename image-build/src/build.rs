//! One image build through the engine API: context planned and checked, tar streamed as the
//! request body, the engine's output parsed into steps, log lines and errors.

use crate::context::{self, ContextPlan};
use crate::labels::{self, GitInfo};
use crate::progress::Slot;
use crate::spec::ImageSpec;
use bollard::query_parameters::BuildImageOptions;
use bollard::Docker;
use bytes::Bytes;
use e2e_core::size::human_bytes;
use e2e_engine::{error_text, Flavor};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
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
    /// The engine's URL: same-tag builds take turns per engine.
    pub endpoint: Option<String>,
    git: Arc<Mutex<HashMap<PathBuf, GitInfo>>>,
    /// Markers of Podman builds whose requests were dropped before the engine said they
    /// ended (Ctrl-C, `--fail-fast`): their RUN steps are still to be stopped.
    abandoned: Arc<Mutex<Vec<String>>>,
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
            endpoint: None,
            git: Arc::default(),
            abandoned: Arc::default(),
        }
    }

    /// Takes the markers of the Podman builds dropped before they ended (see
    /// [`stop_run_steps`]).
    pub fn take_abandoned(&self) -> Vec<String> {
        self.abandoned
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
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

/// Puts a Podman build's marker on the abandoned list when the build is dropped before the
/// engine said it ended.
struct MarkerGuard<'a> {
    env: &'a BuildEnv,
    marker: Option<String>,
}

impl Drop for MarkerGuard<'_> {
    fn drop(&mut self) {
        if let (Some(m), Ok(mut list)) = (self.marker.take(), self.env.abandoned.lock()) {
            list.push(m);
        }
    }
}

/// Builds one image (with the per-build timeout). Never panics on engine trouble: every
/// outcome is a [`BuildResult`].
pub async fn build(env: &BuildEnv, spec: &ImageSpec, slot: &Slot) -> BuildResult {
    let start = Instant::now();
    let reference = stored_reference(env.flavor, &spec.reference);
    let mut progress = Progress::default();
    let marker = (env.flavor == Flavor::Podman).then(new_marker);
    let mut guard = MarkerGuard {
        env,
        marker: marker.clone(),
    };
    let m = marker.as_deref();
    let outcome = match env.timeout {
        Some(t) => {
            match tokio::time::timeout(t, run(env, spec, &reference, slot, &mut progress, m)).await
            {
                Ok(r) => r,
                Err(_) => {
                    let mut message = format!(
                    "timed out after {}; the build request was closed, which makes the engine stop the build (raise --timeout if it needs longer)",
                    humantime::format_duration(t)
                );
                    if let Some(m) = guard.marker.take() {
                        let stopped = tokio::task::spawn_blocking(move || stop_run_steps(&[m]))
                            .await
                            .unwrap_or_default();
                        message = format!(
                        "timed out after {}; the build request was closed and {} (raise --timeout if it needs longer)",
                        humantime::format_duration(t),
                        stopped.describe()
                    );
                    }
                    Err(Failure {
                        status: Status::TimedOut,
                        message,
                    })
                }
            }
        }
        None => run(env, spec, &reference, slot, &mut progress, m).await,
    };
    // The engine said the build ended (or it was stopped above): nothing left to stop.
    guard.marker = None;
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
    marker: Option<&str>,
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
        // Podman: the marker host name in /etc/hosts of every RUN step (see stop_run_steps).
        extrahosts: marker.map(|m| format!("[\"{m}:127.0.0.1\"]")),
        ..Default::default()
    };
    // The image the reference names now: replaced by this build, it would be left dangling.
    let before = client
        .inspect_image(reference)
        .await
        .ok()
        .and_then(|i| i.id);

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
            Err(e @ bollard::errors::Error::DockerResponseServerError { .. }) => {
                failure = Some(error_text(&e));
                break;
            }
            Err(e) => {
                // The connection broke (engine stopped or restarted, socket gone): the request
                // is gone, which stops the build on Docker; Podman's RUN step needs killing.
                let mut msg = format!(
                    "lost the connection to the engine during the build ({}); nothing was tagged unless the engine had finished, re-run to build it",
                    error_text(&e)
                );
                if let Some(m) = marker.map(str::to_string) {
                    let stopped = tokio::task::spawn_blocking(move || stop_run_steps(&[m]))
                        .await
                        .unwrap_or_default();
                    msg.push_str(&format!("; {}", stopped.describe()));
                }
                failure = Some(msg);
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
            error_text(&e)
        ))
    })?;
    if let (Some(old), Some(new)) = (&before, &img.id) {
        if old != new {
            remove_replaced(client, old, slot).await;
        }
    }
    Ok(Done {
        status: Status::Built,
        id: img.id.or(progress.id.clone()),
        size: img.size,
    })
}

/// Removes the image a rebuild moved the tag away from, when image-build made it and nothing
/// else names or uses it (the engine refuses an image a container uses or another image
/// builds on; `prune` gets those later).
async fn remove_replaced(client: &Docker, id: &str, slot: &Slot) {
    let Ok(old) = client.inspect_image(id).await else {
        return;
    };
    let ours = old
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get(crate::labels::TOOL))
        .is_some_and(|v| v == crate::labels::TOOL_NAME);
    if !ours || old.repo_tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return;
    }
    let short = id.trim_start_matches("sha256:").get(..12).unwrap_or(id);
    let opts = bollard::query_parameters::RemoveImageOptions {
        force: false,
        noprune: false,
        ..Default::default()
    };
    match client.remove_image(id, Some(opts), None).await {
        Ok(_) => slot.event(&format!(
            "removed the image this build replaced ({short}), left untagged"
        )),
        Err(e) => slot.event(&format!(
            "kept the image this build replaced ({short}): {}",
            error_text(&e)
        )),
    }
}

/// A fresh marker: a host name no other build carries.
fn new_marker() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("image-build-run-{hex}.invalid")
}

/// What [`stop_run_steps`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stopped {
    /// Processes of the builds' RUN steps killed.
    pub killed: usize,
    /// Whether Podman's processes are visible from here (same host, root).
    pub visible: bool,
}

impl Stopped {
    /// What happened to the stopped builds' RUN steps, as a clause.
    pub fn describe(&self) -> String {
        match (self.killed, self.visible) {
            (n, _) if n > 0 => format!(
                "Podman's running RUN step was killed ({n} process(es)); nothing was committed"
            ),
            (_, true) => "no RUN step was running on Podman; nothing was committed".into(),
            _ => "Podman finishes a RUN step that is already running before it gives the build up (nothing is committed); its processes are not visible from here to stop it sooner (that needs root on the engine's host)".into(),
        }
    }
}

/// Stops the RUN steps of Podman builds whose requests were dropped. Podman (4.x) does not
/// stop a running RUN step when its build request is closed: the step runs to its end and
/// only then is the build abandoned, and removing the build container through the API leaves
/// the process running too. So each Podman build carries a marker, an extra host name in its
/// RUN steps' /etc/hosts (never committed, not part of the cache key); on the engine's host,
/// with root, the processes whose /etc/hosts holds it are the step's, and are killed. Podman
/// then fails the build and removes its build container. Scans until nothing marked has been
/// seen for a moment (a step may be about to start, or fork while being killed).
pub fn stop_run_steps(markers: &[String]) -> Stopped {
    const QUIET: Duration = Duration::from_millis(800);
    const LIMIT: Duration = Duration::from_secs(10);
    let start = Instant::now();
    let mut last_seen = start;
    let mut killed = HashSet::new();
    let mut visible = false;
    let me = std::process::id();
    loop {
        let mut seen = false;
        let Ok(dir) = std::fs::read_dir("/proc") else {
            break;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid == me {
                continue;
            }
            let proc_dir = entry.path();
            if !visible
                && std::fs::read_to_string(proc_dir.join("comm"))
                    .is_ok_and(|c| c.trim() == "podman")
            {
                visible = std::fs::read_link(proc_dir.join("root")).is_ok();
            }
            let Ok(hosts) = std::fs::read_to_string(proc_dir.join("root/etc/hosts")) else {
                continue;
            };
            if markers.iter().any(|m| hosts.contains(m.as_str())) {
                seen = true;
                // SAFETY: kill(2) with a pid read from /proc and a valid signal number.
                if unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) } == 0 {
                    killed.insert(pid);
                }
            }
        }
        if seen {
            last_seen = Instant::now();
        }
        if last_seen.elapsed() >= QUIET || start.elapsed() >= LIMIT {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Stopped {
        killed: killed.len(),
        visible,
    }
}

/// An exclusive claim on building one reference on one engine, shared by every image-build
/// process of the user: two builds of the same tag at once would both succeed and leave one
/// image dangling, so they take turns. A lock file (`flock`) under the user's runtime
/// directory, released when the build ends or its process dies.
#[derive(Debug)]
pub struct TagLock {
    _file: std::fs::File,
}

/// Where the lock files live: `$XDG_RUNTIME_DIR/image-build`, else a per-user directory in
/// the temporary directory.
pub fn lock_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() && d.is_dir() => d.join("image-build"),
        _ => {
            // SAFETY: getuid(2) cannot fail.
            let uid = unsafe { libc::getuid() };
            std::env::temp_dir().join(format!("image-build-{uid}"))
        }
    }
}

/// The lock file's name: readable, and unique per engine and reference (FNV-1a, stable
/// across builds of the tool, unlike std's hasher).
fn lock_name(endpoint: Option<&str>, reference: &str) -> String {
    let endpoint = endpoint
        .map(|e| match e2e_engine::socket_path(e) {
            Some(p) => std::fs::canonicalize(&p).unwrap_or(p).display().to_string(),
            None => e.to_string(),
        })
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in endpoint.bytes().chain([0]).chain(reference.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let readable: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("{readable}-{h:016x}.lock")
}

/// Takes the lock for `reference`, calling `waiting` once (with the holder's pid when known)
/// if another process has it. Polls instead of blocking a thread, so Ctrl-C stays immediate.
pub async fn lock_tag(
    endpoint: Option<&str>,
    reference: &str,
    waiting: impl FnOnce(Option<u32>),
) -> Result<TagLock, String> {
    let dir = lock_dir();
    let path = dir.join(lock_name(endpoint, reference));
    let open = |path: &Path| -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(&dir)?;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
    };
    let mut file =
        open(&path).map_err(|e| format!("cannot open the lock file `{}`: {e}", path.display()))?;
    let mut waiting = Some(waiting);
    loop {
        // SAFETY: flock(2) on a descriptor this function owns.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(format!("cannot lock `{}`: {err}", path.display()));
        }
        if let Some(w) = waiting.take() {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let _ = file.rewind();
            w(text.trim().parse().ok());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(TagLock { _file: file })
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
    fn a_second_claim_on_a_tag_waits_for_the_first_and_other_tags_do_not() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let host = Some("unix:///nonexistent/engine.sock");
            let tag = format!("localhost/lock-test-{}:1", std::process::id());
            let first = lock_tag(host, &tag, |_| panic!("nobody holds it yet"))
                .await
                .unwrap();
            // Another tag, or the same tag on another engine, is free.
            let other = format!("localhost/lock-test-{}:2", std::process::id());
            drop(
                lock_tag(host, &other, |_| panic!("not held"))
                    .await
                    .unwrap(),
            );
            drop(
                lock_tag(Some("tcp://127.0.0.1:1"), &tag, |_| panic!("not held"))
                    .await
                    .unwrap(),
            );
            let waited = Arc::new(Mutex::new(None));
            let w = Arc::clone(&waited);
            let t = tag.clone();
            let second = tokio::spawn(async move {
                lock_tag(host, &t, move |pid| *w.lock().unwrap() = Some(pid)).await
            });
            while waited.lock().unwrap().is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // It names the holder and is still waiting.
            assert_eq!(*waited.lock().unwrap(), Some(Some(std::process::id())));
            assert!(!second.is_finished());
            drop(first);
            second.await.unwrap().unwrap();
            for (h, t) in [
                (host, &tag),
                (host, &other),
                (Some("tcp://127.0.0.1:1"), &tag),
            ] {
                let _ = std::fs::remove_file(lock_dir().join(lock_name(h, t)));
            }
        });
    }

    #[test]
    fn lock_names_are_readable_and_distinct() {
        let a = lock_name(Some("unix:///var/run/docker.sock"), "localhost/app:1");
        assert!(
            a.starts_with("localhost_app_1-") && a.ends_with(".lock"),
            "{a}"
        );
        assert_ne!(
            a,
            lock_name(Some("unix:///var/run/docker.sock"), "localhost/app:2")
        );
        assert_ne!(a, lock_name(Some("tcp://h:2375"), "localhost/app:1"));
        let long = format!("localhost/{}:1", "a".repeat(250));
        assert!(lock_name(None, &long).len() < 255);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(104_857_600), "104.9 MB");
    }
}

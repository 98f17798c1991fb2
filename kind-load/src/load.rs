//! Loading: decide per node, re-tag where only the name is missing, import (one export fanned
//! out to every node that needs it) where the image is missing, then verify.

use crate::containerd::{self, NodeImages, Platforms};
use crate::exec::{self, Limits};
use crate::fanout;
use crate::frames;
use crate::names::ImageName;
use crate::nodes::{self, Node};
use crate::repack;
use crate::source::{self, ArchiveToc, ByteStream};
use bollard::Docker;
use e2e_core::report::Reporter;
use e2e_core::size::human_bytes;
use e2e_core::CliError;
use e2e_engine::Engine;
use futures_util::future::join_all;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What to load, and how.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub cluster: String,
    /// Restrict to these node names (empty: all internal nodes).
    pub nodes: Vec<String>,
    pub images: Vec<String>,
    pub archives: Vec<PathBuf>,
    pub platforms: Platforms,
    /// Skip detection and use this snapshotter.
    pub snapshotter: Option<String>,
    /// Import even where the image is present.
    pub force: bool,
    /// A node (or the source) making no progress this long fails (`None`: never).
    pub io_timeout: Option<std::time::Duration>,
    /// The whole load's time limit (`None`: none).
    pub timeout: Option<std::time::Duration>,
}

/// What happened on one node for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Loaded,
    #[serde(rename = "re-tagged")]
    Retagged,
    AlreadyPresent,
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Loaded => "loaded",
            Action::Retagged => "re-tagged",
            Action::AlreadyPresent => "already-present",
            Action::Failed => "failed",
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeResult {
    pub node: String,
    /// The image as given (or the archive's path).
    pub image: String,
    /// The name(s) the node lists it under.
    pub names: Vec<String>,
    pub action: Action,
    /// The image's bytes (as the engine or file delivered them) streamed into the node.
    pub bytes: u64,
    /// Bytes actually written into the node (its layers' bytes and the frames around them;
    /// layers it held already are left out).
    pub sent_bytes: u64,
    /// The layers the node held already, which were not sent.
    pub reused_bytes: u64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything a load did.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub cluster: String,
    pub engine: String,
    pub nodes: Vec<String>,
    pub results: Vec<NodeResult>,
}

impl LoadReport {
    pub fn failed(&self) -> Vec<&NodeResult> {
        self.results
            .iter()
            .filter(|r| r.action == Action::Failed)
            .collect()
    }
}

/// One thing to load: an engine image or an archive file.
#[derive(Debug, Clone)]
struct Item {
    label: String,
    /// (containerd name, image ID) pairs that must be on every node afterwards.
    wants: Vec<(String, String)>,
    /// Blob digests known before the export is read (protected from the first byte on).
    expected: Vec<String>,
    /// The image's layer diff IDs in order (engine images), to tell the layers of a Docker
    /// < 25 export apart.
    diff_ids: Vec<String>,
    /// Archive path -> digest of layers named by a v1 ID (archive files, from their TOC).
    layer_digests: HashMap<String, String>,
    source: ItemSource,
}

#[derive(Debug, Clone)]
enum ItemSource {
    Engine(String),
    File(PathBuf),
}

/// An archive file and its table of contents.
type Archive = (PathBuf, ArchiveToc);

/// Parses the image names and reads the archives' tables of contents (no engine needed).
fn items_from(opts: &LoadOptions) -> Result<(Vec<ImageName>, Vec<Archive>), CliError> {
    if opts.images.is_empty() && opts.archives.is_empty() {
        return Err(CliError::usage(
            "nothing to load: name one or more IMAGEs, or --archive FILE",
        ));
    }
    let mut names: Vec<ImageName> = Vec::new();
    for i in &opts.images {
        let n = ImageName::parse(i)?;
        if !names.iter().any(|m| m.node == n.node) {
            names.push(n);
        }
    }
    let mut archives = Vec::new();
    for p in &opts.archives {
        archives.push((p.clone(), source::archive_toc(p)?));
    }
    Ok((names, archives))
}

/// The cluster's nodes, or the "no nodes" error listing the clusters that exist.
pub async fn find_nodes(
    engine: &Engine,
    cluster: &str,
    only: &[String],
) -> Result<Vec<Node>, CliError> {
    let found = nodes::list(&engine.client, cluster).await?;
    if found.is_empty() {
        let here = nodes::clusters(&engine.client).await?;
        let other = other_engine(engine).await;
        let elsewhere = other.as_ref().map(|(desc, c)| (desc.as_str(), c));
        return Err(CliError::failure(nodes::no_nodes_message(
            cluster,
            &describe(engine),
            &here,
            elsewhere,
        )));
    }
    nodes::restrict(found, only, cluster)
}

/// The clusters of the other engine kind, when one answers (for the "wrong engine" hint).
async fn other_engine(engine: &Engine) -> Option<(String, std::collections::BTreeSet<String>)> {
    use e2e_engine::{EngineChoice, Flavor};
    let choice = match engine.flavor {
        Flavor::Docker => EngineChoice::Podman,
        Flavor::Podman => EngineChoice::Docker,
    };
    let other = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        e2e_engine::connect(choice, None),
    )
    .await
    .ok()?
    .ok()?;
    if other.endpoint == engine.endpoint {
        return None;
    }
    let c = nodes::clusters(&other.client).await.ok()?;
    Some((describe(&other), c))
}

/// Docker's `GET /images/{name}/get?platform=` exists from API 1.48 (Docker 28).
pub fn exports_one_platform(engine: &Engine) -> bool {
    engine.flavor == e2e_engine::Flavor::Docker && api_at_least(&engine.api_version, 1, 48)
}

fn api_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

pub fn describe(engine: &Engine) -> String {
    format!(
        "{} {} at {}",
        engine.flavor, engine.version, engine.endpoint
    )
}

/// Reads a node's image names (`ctr images ls`; with `full`, also `ctr content ls`, run
/// at the same time).
pub async fn node_images(
    docker: &Docker,
    node: &Node,
    full: bool,
    lim: &Limits,
) -> Result<NodeImages, String> {
    if node.state != "running" {
        return Err(not_running(node));
    }
    let ls_cmd = containerd::images_ls_cmd();
    let (ls, content) = tokio::join!(exec::run(docker, &node.name, &ls_cmd, lim), async {
        if full {
            Some(content_ls(docker, &node.name, lim).await)
        } else {
            None
        }
    });
    let ls = ls?;
    if !ls.ok() {
        return Err(format!("`ctr images ls` failed: {}", ls.message()));
    }
    let mut s = NodeImages::parse_names(&ls.stdout);
    if let Some(c) = content {
        s.add_content(&c?);
    }
    Ok(s)
}

/// A node container that is not running, and what to do about it.
fn not_running(node: &Node) -> String {
    format!(
        "node container `{}` is not running (state: {}); start it (`docker start {}`, or \
         `podman start` for a Podman cluster) or recreate the cluster",
        node.name, node.state, node.name
    )
}

async fn content_ls(docker: &Docker, node: &str, lim: &Limits) -> Result<String, String> {
    let o = exec::run(docker, node, &containerd::content_ls_cmd(), lim).await?;
    if !o.ok() {
        return Err(format!("`ctr content ls` failed: {}", o.message()));
    }
    Ok(o.stdout)
}

/// Makes `s` full (adds `ctr content ls`) unless it already is.
async fn complete(
    docker: &Docker,
    node: &str,
    s: &mut NodeImages,
    lim: &Limits,
) -> Result<(), String> {
    if !s.full {
        let c = content_ls(docker, node, lim).await?;
        s.add_content(&c);
    }
    Ok(())
}

/// What one node needs for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    Nothing,
    /// (existing name, new name) pairs.
    Retag(Vec<(String, String)>),
    Import,
}

fn need(state: &NodeImages, item: &Item, force: bool) -> Need {
    if force || item.wants.is_empty() {
        return Need::Import;
    }
    let mut retags = Vec::new();
    for (name, id) in &item.wants {
        if state.has(name, id) {
            continue;
        }
        match state.other_name_with(id, name) {
            Some(src) => retags.push((src.to_string(), name.clone())),
            None => return Need::Import,
        }
    }
    if retags.is_empty() {
        Need::Nothing
    } else {
        Need::Retag(retags)
    }
}

async fn retag(
    docker: &Docker,
    node: &str,
    pairs: &[(String, String)],
    lim: &Limits,
) -> Result<(), String> {
    for (src, dst) in pairs {
        let o = exec::run(docker, node, &containerd::tag_cmd(src, dst), lim).await?;
        if !o.ok() {
            return Err(format!(
                "`ctr images tag {src} {dst}` failed: {}",
                o.message()
            ));
        }
    }
    Ok(())
}

/// What a node's `containerd config dump` says: the snapshotter CRI unpacks into (as Kind
/// reads it; the dump also resolves defaults and `imports`), else overlayfs with a warning;
/// and where containerd keeps unfinished ingests.
#[derive(Debug, Clone)]
struct NodeConfig {
    snapshotter: String,
    ingest_dir: String,
}

async fn detect_config(docker: &Docker, node: &str, lim: &Limits) -> (NodeConfig, Option<String>) {
    let fallback = |why: String| {
        (
            NodeConfig {
                snapshotter: "overlayfs".into(),
                ingest_dir: containerd::ingest_dir(containerd::DEFAULT_ROOT),
            },
            Some(why),
        )
    };
    match exec::run(docker, node, &containerd::config_dump_cmd(), lim).await {
        Ok(o) if o.ok() => {
            let ingest_dir = containerd::ingest_dir_from_config(&o.stdout);
            match containerd::snapshotter_from_config(&o.stdout) {
                Ok(snapshotter) => (
                    NodeConfig {
                        snapshotter,
                        ingest_dir,
                    },
                    None,
                ),
                Err(e) => (
                    NodeConfig {
                        snapshotter: "overlayfs".into(),
                        ingest_dir,
                    },
                    Some(format!("{e}; using overlayfs")),
                ),
            }
        }
        Ok(o) => fallback(format!(
            "`containerd config dump` failed ({}); using overlayfs",
            o.message()
        )),
        Err(e) => fallback(format!(
            "`containerd config dump` failed ({e}); using overlayfs"
        )),
    }
}

/// Node configs read so far, per node (shared by the import tasks of one run).
type ConfigCache = Arc<tokio::sync::Mutex<HashMap<String, NodeConfig>>>;

/// The node's config, read once per run.
async fn node_config(
    docker: &Docker,
    node: &str,
    cache: &ConfigCache,
    rep: &Reporter,
    lim: &Limits,
) -> NodeConfig {
    // Not held across the exec: the nodes read theirs at the same time.
    if let Some(c) = cache.lock().await.get(node) {
        return c.clone();
    }
    let (c, warning) = detect_config(docker, node, lim).await;
    if let Some(w) = warning {
        rep.warn(format!("{node}: {w}"));
    }
    rep.detail(format!("{node}: snapshotter {}", c.snapshotter));
    cache.lock().await.insert(node.to_string(), c.clone());
    c
}

/// The blob digests a node's containerd holds (`ctr content ls -q`); empty when unreadable
/// (then everything is sent).
async fn blobs_held(
    docker: &Docker,
    node: &str,
    lim: &Limits,
) -> std::collections::HashSet<String> {
    match exec::run(docker, node, &containerd::content_digests_cmd(), lim).await {
        Ok(o) if o.ok() => o.stdout.lines().map(|l| l.trim().to_string()).collect(),
        _ => Default::default(),
    }
}

/// Unique per run on this host (process ID and start time): names holders and ingests.
fn run_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{:x}", std::process::id(), nanos)
}

/// Loads everything `opts` names into the cluster's nodes. Per-node failures are rows of the
/// report (the caller exits 1 on them); setup problems (no nodes, image not in the engine)
/// are errors.
pub async fn load(
    engine: &Engine,
    opts: &LoadOptions,
    rep: &Reporter,
) -> Result<LoadReport, CliError> {
    let (names, archives) = items_from(opts)?;
    let docker = &engine.client;
    let started = Instant::now();
    let lim = Limits::new(opts.io_timeout, opts.timeout, Some(rep.clone()));
    let lim = &lim;
    let all_nodes = find_nodes(engine, &opts.cluster, &opts.nodes).await?;
    rep.detail(format!(
        "found {} node(s) in {:.0} ms",
        all_nodes.len(),
        started.elapsed().as_secs_f64() * 1e3
    ));
    // Nothing can be loaded when no node runs: say so, instead of a row per node.
    if all_nodes.iter().all(|n| n.state != "running") {
        let why: Vec<String> = all_nodes.iter().map(not_running).collect();
        return Err(CliError::failure(format!(
            "no node of cluster `{}` is running, so nothing was loaded: {}",
            opts.cluster,
            why.join("; ")
        )));
    }

    // Images must exist in the engine; name every missing one at once.
    let ids = join_all(
        names
            .iter()
            .map(|n| source::engine_image(docker, &n.engine)),
    )
    .await;
    let mut items = Vec::new();
    let mut missing = Vec::new();
    for (n, id) in names.iter().zip(ids) {
        match id {
            Ok(Some(img)) => items.push(Item {
                label: n.given.clone(),
                wants: vec![(n.node.clone(), img.id.clone())],
                expected: std::iter::once(img.id)
                    .chain(img.layers.iter().cloned())
                    .collect(),
                diff_ids: img.layers,
                layer_digests: HashMap::new(),
                source: ItemSource::Engine(n.engine.clone()),
            }),
            Ok(None) => missing.push(n.given.clone()),
            Err(e) => {
                return Err(CliError::failure(format!(
                    "asking {} for image `{}` failed: {e}",
                    describe(engine),
                    n.given
                )))
            }
        }
    }
    if !missing.is_empty() {
        let sub = missing
            .iter()
            .any(|m| matches!(m.as_str(), "images" | "load" | "completions"));
        return Err(CliError::failure(format!(
            "image {} not in the engine ({}); build it with image-build (or check the name and tag; \
             `{} images` lists what it has){}",
            nodes::list_quoted(missing.iter().map(String::as_str)),
            describe(engine),
            engine.flavor,
            if sub {
                ". Subcommands come first: `kind-load images --cluster NAME ...`"
            } else {
                ""
            }
        )));
    }
    for (path, toc) in archives {
        items.push(Item {
            label: path.display().to_string(),
            wants: toc
                .images
                .iter()
                .flat_map(|i| i.names.iter().map(|n| (n.clone(), i.id.clone())))
                .collect(),
            expected: toc.digests,
            diff_ids: Vec::new(),
            layer_digests: toc.layer_digests,
            source: ItemSource::File(path),
        });
    }

    let mut report = LoadReport {
        cluster: opts.cluster.clone(),
        engine: describe(engine),
        nodes: all_nodes.iter().map(|n| n.name.clone()).collect(),
        results: Vec::new(),
    };

    // What each node holds now: names first (one exec per node, all nodes at once); only
    // where a name alone does not settle it, the content labels too.
    let t0 = Instant::now();
    let items_ref = &items;
    let states = join_all(all_nodes.iter().map(|n| async move {
        let mut st = node_images(docker, n, false, lim).await;
        if let Ok(s) = &mut st {
            let needs: Vec<Need> = items_ref.iter().map(|it| need(s, it, opts.force)).collect();
            // A name alone settles "present" and "re-tag"; "import" only when the node's CRI
            // plugin names images by ID (or the node holds none). Else read the content.
            if !opts.force && !s.settles_absence() && needs.contains(&Need::Import) {
                complete(docker, &n.name, s, lim).await?;
            }
        }
        st
    }))
    .await;
    let query_secs = t0.elapsed().as_secs_f64();
    rep.detail(format!(
        "read the nodes' images in {:.0} ms",
        query_secs * 1e3
    ));
    let mut state: BTreeMap<String, Result<NodeImages, String>> = BTreeMap::new();
    for (n, st) in all_nodes.iter().zip(states) {
        if let Err(e) = &st {
            rep.warn(format!("{}: cannot read its images: {e}", n.name));
        }
        state.insert(n.name.clone(), st);
    }
    if state.values().all(Result::is_err) {
        let why: Vec<String> = all_nodes
            .iter()
            .filter_map(|n| match &state[&n.name] {
                Err(e) => Some(format!("node `{}`: {e}", n.name)),
                Ok(_) => None,
            })
            .collect();
        return Err(CliError::failure(format!(
            "cannot read the images of any node of cluster `{}`, so nothing was loaded: {}",
            opts.cluster,
            why.join("; ")
        )));
    }
    // The snapshotter is read once per node, while the first export is being prepared.
    let configs: ConfigCache = Default::default();
    let token = run_token();

    for (item_no, item) in items.iter().enumerate() {
        let first_row = report.results.len();
        let names: Vec<String> = item.wants.iter().map(|(n, _)| n.clone()).collect();
        let row = |node: &str, action, bytes, seconds, error| NodeResult {
            node: node.to_string(),
            image: item.label.clone(),
            names: names.clone(),
            action,
            bytes,
            sent_bytes: 0,
            reused_bytes: 0,
            seconds,
            error,
        };
        let mut import_nodes: Vec<&Node> = Vec::new();
        let mut retag_nodes: Vec<(&Node, Vec<(String, String)>)> = Vec::new();
        for node in &all_nodes {
            match &state[&node.name] {
                Err(e) => report.results.push(row(
                    &node.name,
                    Action::Failed,
                    0,
                    query_secs,
                    Some(e.clone()),
                )),
                Ok(s) => match need(s, item, opts.force) {
                    Need::Nothing => report.results.push(row(
                        &node.name,
                        Action::AlreadyPresent,
                        0,
                        query_secs,
                        None,
                    )),
                    Need::Retag(p) => retag_nodes.push((node, p)),
                    Need::Import => import_nodes.push(node),
                },
            }
        }
        if import_nodes.is_empty() && retag_nodes.is_empty() {
            let present = report.results[first_row..]
                .iter()
                .filter(|r| r.action == Action::AlreadyPresent)
                .count();
            if present == all_nodes.len() {
                rep.info(format!(
                    "{}: already present on all {} node(s); nothing to do",
                    item.label, present
                ));
            } else {
                rep.info(format!(
                    "{}: already present on {present} of {} node(s); the others cannot be read",
                    item.label,
                    all_nodes.len()
                ));
            }
            continue;
        }

        // Re-tags (all nodes at once).
        let retag_results = join_all(retag_nodes.iter().map(|(node, pairs)| async move {
            let t = Instant::now();
            let r = retag(docker, &node.name, pairs, lim).await;
            (node, r, t.elapsed().as_secs_f64())
        }))
        .await;
        // (node, what was done, bytes, seconds, the node's listing when the load printed it)
        let mut touched: Vec<(&Node, Action, u64, f64, Option<String>)> = Vec::new();
        // Per node: (bytes sent, bytes of layers it held and was not sent).
        let mut fed_bytes: HashMap<String, exec::Fed> = HashMap::new();
        for (node, r, secs) in retag_results {
            match r {
                Ok(()) => {
                    rep.info(format!(
                        "{}: {}: re-tagged (image ID already there)",
                        item.label, node.name
                    ));
                    touched.push((node, Action::Retagged, 0, secs, None));
                }
                Err(e) => {
                    // kind falls back to a full load when a re-tag fails; so do we.
                    rep.warn(format!(
                        "{}: {}: {e}; importing instead",
                        item.label, node.name
                    ));
                    import_nodes.push(node);
                }
            }
        }

        // Imports: one export, fanned out.
        if !import_nodes.is_empty() {
            rep.info(format!(
                "{}: importing into {} node(s): {}",
                item.label,
                import_nodes.len(),
                import_nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let stream: ByteStream = match &item.source {
                ItemSource::Engine(name) => {
                    let platform = match &opts.platforms {
                        Platforms::One(p) if exports_one_platform(engine) => Some(p.as_str()),
                        Platforms::One(p) => {
                            rep.detail(format!(
                                "{} API {} exports every platform; `ctr import --platform={p}` keeps one",
                                engine.flavor, engine.api_version
                            ));
                            None
                        }
                        _ => None,
                    };
                    source::export(docker, name, platform)
                }
                ItemSource::File(p) => source::file_stream(p.clone()),
            };
            // The report counts the image's bytes (what the engine or file delivered), not
            // the frames around them.
            let image_bytes = Arc::new(AtomicU64::new(0));
            let counter = image_bytes.clone();
            let stream = stream.inspect(move |c| {
                if let Ok(c) = c {
                    counter.fetch_add(c.len() as u64, Ordering::Relaxed);
                }
            });
            let plan_token = format!("{token}-{item_no}");
            let stream = repack::repack(
                stream,
                repack::Plan {
                    token: plan_token.clone(),
                    expected: item.expected.clone(),
                    diff_ids: item.diff_ids.clone(),
                    layer_digests: item.layer_digests.clone(),
                },
            );
            let (txs, rxs) = fanout::channels(import_nodes.len());
            let t = Instant::now();
            let tasks: Vec<_> = import_nodes
                .iter()
                .zip(rxs)
                .map(|(node, rx)| {
                    let docker = docker.clone();
                    let name = node.name.clone();
                    let fixed = opts.snapshotter.clone();
                    let cache = configs.clone();
                    let platforms = opts.platforms.clone();
                    let rep = rep.clone();
                    let lim = lim.clone();
                    let plan_token = plan_token.clone();
                    tokio::spawn(async move {
                        // Read while the engine prepares the export (its first byte takes
                        // longer than these execs): the snapshotter, and the blobs the node
                        // holds already (the layers among them are not sent).
                        let (config, have) = tokio::join!(
                            node_config(&docker, &name, &cache, &rep, &lim),
                            blobs_held(&docker, &name, &lim)
                        );
                        let snap = fixed.unwrap_or(config.snapshotter);
                        let cmd =
                            frames::load_cmd(&snap, &config.ingest_dir, &plan_token, &platforms);
                        let r =
                            exec::run_with_stdin(&docker, &name, &cmd, Some(rx), have, &lim).await;
                        (r, t.elapsed().as_secs_f64())
                    })
                })
                .collect();
            rep.detail(format!(
                "{}: import started at {:.0} ms",
                item.label,
                started.elapsed().as_secs_f64() * 1e3
            ));
            let fanned = fanout::fan_out(stream, txs, lim).await;
            rep.detail(format!(
                "{}: the source's last byte at {:.0} ms",
                item.label,
                started.elapsed().as_secs_f64() * 1e3
            ));
            let outcomes = join_all(tasks).await;
            for (node, outcome) in import_nodes.iter().zip(outcomes) {
                let (r, secs) = outcome.unwrap_or_else(|e| (Err(format!("task failed: {e}")), 0.0));
                match (r, &fanned.source_error) {
                    // The node's own stall or the deadline: say what it was doing.
                    (Err(e), _) if e.starts_with("no progress") || e.starts_with("timed out") => {
                        report
                            .results
                            .push(row(&node.name, Action::Failed, 0, secs, Some(e)))
                    }
                    (_, Some(src)) => report.results.push(row(
                        &node.name,
                        Action::Failed,
                        0,
                        secs,
                        Some(format!("reading the image from its source failed: {src}")),
                    )),
                    (Ok((o, fed)), None) if o.ok() && fed.written + fed.skipped == fanned.bytes => {
                        let (ctr_out, listing) = frames::split_output(&o.stdout);
                        rep.detail(format!("{}: ctr: {}", node.name, ctr_out.trim()));
                        if fed.skipped > 0 {
                            rep.info(format!(
                                "{}: {}: {} of layers already there, not sent",
                                item.label,
                                node.name,
                                human_bytes(fed.skipped)
                            ));
                        }
                        rep.detail(format!(
                            "{}: {}: sent {} ({} bytes), reused {} ({} bytes) the node held",
                            item.label,
                            node.name,
                            human_bytes(fed.written),
                            fed.written,
                            human_bytes(fed.skipped),
                            fed.skipped
                        ));
                        fed_bytes.insert(node.name.clone(), fed);
                        touched.push((
                            node,
                            Action::Loaded,
                            image_bytes.load(Ordering::Relaxed),
                            secs,
                            listing.map(str::to_string),
                        ));
                    }
                    (Ok((o, fed)), None) => report.results.push(NodeResult {
                        sent_bytes: fed.written,
                        ..row(
                            &node.name,
                            Action::Failed,
                            fed.written,
                            secs,
                            Some(format!(
                                "loading into the node's containerd failed (exit {}): {}",
                                o.exit_code,
                                o.message()
                            )),
                        )
                    }),
                    (Err(e), None) => report.results.push(row(
                        &node.name,
                        Action::Failed,
                        0,
                        secs,
                        Some(format!("`ctr images import` failed: {e}")),
                    )),
                }
            }
            rep.info(format!(
                "{}: streamed {} to {} node(s) in {:.2} s",
                item.label,
                human_bytes(fanned.bytes),
                import_nodes.len(),
                t.elapsed().as_secs_f64()
            ));
        }

        let tv = Instant::now();
        // Verify: every touched node lists every wanted name with the wanted ID; a name that
        // is missing while the ID is there (Podman's short names) is re-tagged.
        let fresh = join_all(touched.iter().map(|(n, _, _, _, listing)| async move {
            // A load printed the node's listing as its last step; a re-tag did not.
            let mut s = match listing {
                Some(l) => Ok(NodeImages::parse_names(l)),
                None => node_images(docker, n, false, lim).await,
            };
            let verdict = match &mut s {
                Err(e) => Err(format!("verifying failed: {e}")),
                Ok(s) => verify(docker, &n.name, s, item, lim).await,
            };
            (s, verdict)
        }))
        .await;
        for ((node, action, bytes, secs, _), (s, verdict)) in touched.into_iter().zip(fresh) {
            match verdict {
                Ok(()) => report.results.push(NodeResult {
                    sent_bytes: fed_bytes.get(&node.name).map_or(0, |f| f.written),
                    reused_bytes: fed_bytes.get(&node.name).map_or(0, |f| f.skipped),
                    ..row(&node.name, action, bytes, secs, None)
                }),
                Err(e) => {
                    report
                        .results
                        .push(row(&node.name, Action::Failed, bytes, secs, Some(e)))
                }
            }
            if let Ok(s) = s {
                state.insert(node.name.clone(), Ok(s));
            }
        }
        if !report.results.is_empty() {
            rep.detail(format!(
                "{}: verified in {:.0} ms (total {:.0} ms)",
                item.label,
                tv.elapsed().as_secs_f64() * 1e3,
                started.elapsed().as_secs_f64() * 1e3
            ));
        }
        // Rows in node order.
        let order = |n: &str| {
            all_nodes
                .iter()
                .position(|x| x.name == n)
                .unwrap_or(usize::MAX)
        };
        report.results[first_row..].sort_by_key(|r| order(&r.node));
        if item.wants.is_empty() {
            rep.warn(format!(
                "{}: the archive names no image (no RepoTags), so the nodes cannot be checked for it",
                item.label
            ));
        }
    }
    Ok(report)
}

async fn verify(
    docker: &Docker,
    node: &str,
    s: &mut NodeImages,
    item: &Item,
    lim: &Limits,
) -> Result<(), String> {
    // Listed with the ID, or listed while the CRI plugin has not yet added its `sha256:<id>`
    // name (it does so a moment after an import): verified. Anything else is looked at with
    // the content labels.
    let fine = |s: &NodeImages, name: &String, id: &String| {
        s.has(name, id) || (s.names.contains_key(name) && !s.names.contains_key(id))
    };
    if item.wants.iter().all(|(name, id)| fine(s, name, id)) {
        return Ok(());
    }
    complete(docker, node, s, lim).await?;
    let mut retags = Vec::new();
    for (name, id) in &item.wants {
        if s.has(name, id) {
            continue;
        }
        if let Some(src) = s.other_name_with(id, name) {
            retags.push((src.to_string(), name.clone()));
        } else if s.names.contains_key(name) {
            return Err(format!(
                "after loading, `{name}` in the node is not image {id} (it is {})",
                s.config_ids(name).join(", ")
            ));
        } else {
            return Err(format!(
                "after loading, the node does not list `{name}` (image {id}); `kind-load images` shows what it holds"
            ));
        }
    }
    if retags.is_empty() {
        return Ok(());
    }
    retag(docker, node, &retags, lim).await?;
    let after = exec::run(docker, node, &containerd::images_ls_cmd(), lim).await?;
    let listed = containerd::parse_images_ls(&after.stdout);
    for (_, dst) in &retags {
        if !listed.contains_key(dst) {
            return Err(format!("after re-tagging, the node does not list `{dst}`"));
        }
    }
    Ok(())
}

/// One node's images, for `kind-load images`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeListing {
    pub node: String,
    pub role: String,
    pub images: Vec<ListedImage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListedImage {
    pub name: String,
    /// The manifest or index digest containerd lists.
    pub digest: String,
    /// Config digest(s): what the engine calls the image ID.
    pub ids: Vec<String>,
}

/// What each node holds.
pub async fn list_images(
    engine: &Engine,
    cluster: &str,
    only: &[String],
) -> Result<Vec<NodeListing>, CliError> {
    let all = find_nodes(engine, cluster, only).await?;
    let lim = Limits::default();
    let states = join_all(
        all.iter()
            .map(|n| node_images(&engine.client, n, true, &lim)),
    )
    .await;
    Ok(all
        .into_iter()
        .zip(states)
        .map(|(n, s)| match s {
            Ok(s) => NodeListing {
                images: s
                    .names
                    .iter()
                    .map(|(name, digest)| ListedImage {
                        name: name.clone(),
                        digest: digest.clone(),
                        ids: s.config_ids(name),
                    })
                    .collect(),
                node: n.name,
                role: n.role,
                error: None,
            },
            Err(e) => NodeListing {
                node: n.name,
                role: n.role,
                images: Vec::new(),
                error: Some(e),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> NodeImages {
        let m = "1".repeat(64);
        NodeImages::parse(
            &format!("REF TYPE DIGEST SIZE PLATFORMS LABELS\nlocalhost/a:1 application/vnd.oci.image.manifest.v1+json sha256:{m} 1.0 KiB linux/amd64 -\n"),
            &format!("sha256:{m}\t1kB\t1 minute\tcontainerd.io/gc.ref.content.config=sha256:{}\n", "a".repeat(64)),
        )
    }

    fn item(wants: &[(&str, &str)]) -> Item {
        Item {
            label: "x".into(),
            wants: wants
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            expected: Vec::new(),
            diff_ids: Vec::new(),
            layer_digests: HashMap::new(),
            source: ItemSource::Engine("x".into()),
        }
    }

    #[test]
    fn decides_skip_retag_or_import() {
        let id = format!("sha256:{}", "a".repeat(64));
        let s = state();
        assert_eq!(
            need(&s, &item(&[("localhost/a:1", &id)]), false),
            Need::Nothing
        );
        assert_eq!(
            need(&s, &item(&[("localhost/a:1", &id)]), true),
            Need::Import
        );
        assert_eq!(
            need(&s, &item(&[("localhost/a:2", &id)]), false),
            Need::Retag(vec![("localhost/a:1".into(), "localhost/a:2".into())])
        );
        assert_eq!(
            need(&s, &item(&[("localhost/a:1", "sha256:other")]), false),
            Need::Import
        );
        assert_eq!(need(&s, &item(&[]), false), Need::Import);
    }

    #[test]
    fn nothing_to_load_is_a_usage_error() {
        let e = items_from(&LoadOptions::default()).unwrap_err();
        assert_eq!(e.code, 2);
        let e = items_from(&LoadOptions {
            images: vec!["Bad:1".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.code, 2);
    }

    #[test]
    fn duplicate_images_are_loaded_once() {
        let (names, _) = items_from(&LoadOptions {
            images: vec!["app:1".into(), "docker.io/library/app:1".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn platform_export_needs_api_1_48() {
        assert!(api_at_least("1.48", 1, 48));
        assert!(api_at_least("1.53", 1, 48));
        assert!(!api_at_least("1.41", 1, 48));
        assert!(!api_at_least("garbage", 1, 48));
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(104_857_600), "104.9 MB");
        assert_eq!(human_bytes(512), "512 B");
    }
}

//! What a node's containerd holds, read with `ctr` only (Kind nodes have `crictl`, the
//! testbed's do not, and `ctr` is all `kind load` itself needs), and the commands we run.
//!
//! Image identity: the engine's image ID is the image's config digest (or, with Docker's
//! containerd store, the index/manifest digest). containerd lists an image's *target*
//! (manifest or index) digest; the config digest of a manifest is in the label
//! `containerd.io/gc.ref.content.config` that containerd puts on the manifest blob, and an
//! index points at its manifests with `containerd.io/gc.ref.content.m.<n>`. So
//! `ctr images ls` + `ctr content ls` (two execs, run together) give every name's image IDs,
//! which is what `crictl inspecti` answers in Kind.

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const NAMESPACE: &str = "k8s.io";
const CONFIG_LABEL: &str = "containerd.io/gc.ref.content.config";
const MANIFEST_LABEL_PREFIX: &str = "containerd.io/gc.ref.content.m.";

/// `ctr -n k8s.io images ls`
pub fn images_ls_cmd() -> Vec<String> {
    args(&["ctr", "--namespace", NAMESPACE, "images", "ls"])
}

/// `ctr -n k8s.io content ls`
pub fn content_ls_cmd() -> Vec<String> {
    args(&["ctr", "--namespace", NAMESPACE, "content", "ls"])
}

/// `ctr -n k8s.io content ls -q`: the digests of the blobs the node holds.
pub fn content_digests_cmd() -> Vec<String> {
    args(&["ctr", "--namespace", NAMESPACE, "content", "ls", "-q"])
}

/// `containerd config dump` (how Kind finds the snapshotter).
pub fn config_dump_cmd() -> Vec<String> {
    args(&["containerd", "config", "dump"])
}

/// `ctr images tag --force SOURCE TARGET`
pub fn tag_cmd(source: &str, target: &str) -> Vec<String> {
    args(&[
        "ctr",
        "--namespace",
        NAMESPACE,
        "images",
        "tag",
        "--force",
        source,
        target,
    ])
}

/// `ctr images rm NAME...` (used by tests and benchmarks through the library).
pub fn rm_cmd(names: &[String]) -> Vec<String> {
    let mut v = args(&["ctr", "--namespace", NAMESPACE, "images", "rm"]);
    v.extend(names.iter().cloned());
    v
}

/// Which platforms `ctr import` keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Platforms {
    /// ctr's default: the node's own platform. Works when the archive holds an index whose
    /// other platforms' blobs are missing (Docker's containerd store).
    #[default]
    Node,
    /// `--all-platforms`, what `kind load` passes.
    All,
    /// `--platform P`: exactly this one.
    One(String),
}

impl Platforms {
    /// The `ctr images import` flags that say it.
    pub fn ctr_flags(&self) -> Vec<String> {
        match self {
            Platforms::Node => Vec::new(),
            Platforms::All => vec!["--all-platforms".into()],
            Platforms::One(p) => vec![format!("--platform={p}")],
        }
    }
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The images of one node: each name with its target digest, and the ID set of each target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeImages {
    /// name -> target (manifest or index) digest
    pub names: BTreeMap<String, String>,
    /// blob digest -> digests it refers to (config for a manifest, manifests for an index)
    refs: HashMap<String, Vec<String>>,
    /// digests that some manifest names as its config
    configs: BTreeSet<String>,
    /// Whether `ctr content ls` was read (else only names and CRI's `sha256:<id>` names,
    /// which answer "same image?" for images the CRI plugin manages).
    pub full: bool,
}

impl NodeImages {
    /// From the outputs of `ctr images ls` and `ctr content ls`.
    pub fn parse(images_ls: &str, content_ls: &str) -> Self {
        let mut n = Self::parse_names(images_ls);
        n.add_content(content_ls);
        n
    }

    /// From `ctr images ls` alone. The CRI plugin names every image it manages also by its
    /// ID (`sha256:<config digest>`), so a name and that ID name with one target are the same
    /// image; anything else needs [`NodeImages::add_content`].
    pub fn parse_names(images_ls: &str) -> Self {
        let names = parse_images_ls(images_ls);
        let mut refs: HashMap<String, Vec<String>> = HashMap::new();
        let mut configs = BTreeSet::new();
        for (name, target) in &names {
            if is_id_name(name) && name != target {
                refs.entry(target.clone()).or_default().push(name.clone());
                configs.insert(name.clone());
            }
        }
        Self {
            names,
            refs,
            configs,
            full: false,
        }
    }

    /// Adds what `ctr content ls` says (manifest -> config, index -> manifests).
    pub fn add_content(&mut self, content_ls: &str) {
        let (refs, configs) = parse_content_ls(content_ls);
        for (k, v) in refs {
            let e = self.refs.entry(k).or_default();
            for c in v {
                if !e.contains(&c) {
                    e.push(c);
                }
            }
        }
        self.configs.extend(configs);
        self.full = true;
    }

    /// Every ID the image `name` answers to: its target digest, the manifests of an index and
    /// each manifest's config digest.
    pub fn ids_of_target(&self, target: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![target.to_string()];
        while let Some(d) = todo.pop() {
            if out.insert(d.clone()) {
                if let Some(children) = self.refs.get(&d) {
                    todo.extend(children.iter().cloned());
                }
            }
        }
        out
    }

    /// The config digest(s) of `name` (what `docker images --no-trunc` calls the image ID).
    pub fn config_ids(&self, name: &str) -> Vec<String> {
        let Some(target) = self.names.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<String> = self
            .ids_of_target(target)
            .into_iter()
            .filter(|d| self.configs.contains(d))
            .collect();
        if out.is_empty() {
            out.push(target.clone());
        }
        out
    }

    /// Whether "not here" from this state can be trusted: the content labels were read, or
    /// the node holds no images at all, or the CRI plugin names images by ID here (then an
    /// ID without its `sha256:<id>` name is not in the node, give or take an import of the
    /// last moments, which only costs a needless import).
    pub fn settles_absence(&self) -> bool {
        self.full || self.names.is_empty() || self.names.keys().any(|n| is_id_name(n))
    }

    /// Whether `name` is listed and answers to `id`.
    pub fn has(&self, name: &str, id: &str) -> bool {
        self.names
            .get(name)
            .is_some_and(|t| self.ids_of_target(t).contains(id))
    }

    /// Another name that answers to `id` (names without a digest first), for a re-tag.
    pub fn other_name_with(&self, id: &str, except: &str) -> Option<&str> {
        let mut found: Vec<&str> = self
            .names
            .iter()
            .filter(|(n, t)| n.as_str() != except && self.ids_of_target(t).contains(id))
            .map(|(n, _)| n.as_str())
            .collect();
        found.sort_by_key(|n| (n.contains('@'), n.starts_with("sha256:"), n.len()));
        found.into_iter().next()
    }
}

/// `sha256:` + 64 hex digits: a name that is an image ID.
fn is_id_name(name: &str) -> bool {
    name.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `REF TYPE DIGEST SIZE PLATFORMS LABELS` (SIZE holds a space): name -> digest.
pub fn parse_images_ls(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?;
            let _type = f.next()?;
            let digest = f.next()?;
            (name != "REF" && digest.starts_with("sha256:"))
                .then(|| (name.to_string(), digest.to_string()))
        })
        .collect()
}

/// `DIGEST SIZE AGE LABELS` (AGE holds spaces, LABELS are `k=v,k=v`): blob -> children that
/// identify an image (config of a manifest, manifests of an index), and the config digests.
pub fn parse_content_ls(out: &str) -> (HashMap<String, Vec<String>>, BTreeSet<String>) {
    let mut map = HashMap::new();
    let mut configs = BTreeSet::new();
    for line in out.lines() {
        let Some(digest) = line.split_whitespace().next() else {
            continue;
        };
        if !digest.starts_with("sha256:") {
            continue;
        }
        let mut children = Vec::new();
        for kv in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| s.contains('='))
        {
            let (k, v) = kv.split_once('=').unwrap_or_default();
            if k == CONFIG_LABEL {
                configs.insert(v.to_string());
                children.push(v.to_string());
            } else if k.starts_with(MANIFEST_LABEL_PREFIX) {
                children.push(v.to_string());
            }
        }
        if !children.is_empty() {
            map.insert(digest.to_string(), children);
        }
    }
    (map, configs)
}

/// The snapshotter CRI unpacks into, from `containerd config dump` (TOML), as Kind reads it:
/// config version 2 `plugins."io.containerd.grpc.v1.cri".containerd.snapshotter`, versions 3
/// and 4 `plugins."io.containerd.cri.v1.images".snapshotter`, version 1 (no `version` key)
/// `plugins.cri.containerd.snapshotter`. `overlayfs` when unset.
pub fn snapshotter_from_config(config: &str) -> Result<String, String> {
    let doc: toml::Table =
        toml::from_str(config).map_err(|e| format!("containerd config is not TOML: {e}"))?;
    let version = doc.get("version").and_then(|v| v.as_integer()).unwrap_or(1);
    let path: &[&str] = match version {
        1 => &["plugins", "cri", "containerd", "snapshotter"],
        2 => &[
            "plugins",
            "io.containerd.grpc.v1.cri",
            "containerd",
            "snapshotter",
        ],
        3 | 4 => &["plugins", "io.containerd.cri.v1.images", "snapshotter"],
        v => return Err(format!("containerd config version {v} is not known")),
    };
    let mut cur: Option<&toml::Value> = None;
    let mut table = &doc;
    for (i, key) in path.iter().enumerate() {
        match table.get(*key) {
            Some(v) if i + 1 == path.len() => cur = Some(v),
            Some(toml::Value::Table(t)) => table = t,
            _ => break,
        }
    }
    Ok(cur
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("overlayfs")
        .to_string())
}

/// The directory where containerd keeps unfinished ingests, under its `root` (from `containerd
/// config dump`; `/var/lib/containerd` when unset or unreadable).
pub fn ingest_dir_from_config(config: &str) -> String {
    let root = toml::from_str::<toml::Table>(config)
        .ok()
        .and_then(|d| d.get("root").and_then(|r| r.as_str()).map(str::to_string))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| DEFAULT_ROOT.to_string());
    ingest_dir(&root)
}

pub const DEFAULT_ROOT: &str = "/var/lib/containerd";

/// `<root>/io.containerd.content.v1.content/ingest`
pub fn ingest_dir(root: &str) -> String {
    format!(
        "{}/io.containerd.content.v1.content/ingest",
        root.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGES_LS: &str = "\
REF                                 TYPE                                                      DIGEST                                                                  SIZE      PLATFORMS   LABELS
docker.io/library/app:1             application/vnd.docker.distribution.manifest.v2+json      sha256:1111111111111111111111111111111111111111111111111111111111111111 750.0 KiB linux/amd64 io.cri-containerd.image=managed
import-2026-11-26@sha256:1111111111111111111111111111111111111111111111111111111111111111 application/vnd.docker.distribution.manifest.v2+json sha256:1111111111111111111111111111111111111111111111111111111111111111 750.0 KiB linux/amd64 io.cri-containerd.image=managed
localhost/multi:2                   application/vnd.oci.image.index.v1+json                   sha256:2222222222222222222222222222222222222222222222222222222222222222 3.1 MiB   linux/amd64,linux/arm64 -
";

    fn content_ls() -> String {
        format!(
            "DIGEST\tSIZE\tAGE\tLABELS\n\
             sha256:{m1}\t1.2kB\t2 minutes\tcontainerd.io/gc.ref.content.config=sha256:{c1},containerd.io/gc.ref.content.l.0=sha256:{l}\n\
             sha256:{c1}\t900B\t2 minutes\t-\n\
             sha256:{idx}\t700B\t1 hour\tcontainerd.io/gc.ref.content.m.0=sha256:{m2},containerd.io/gc.ref.content.m.1=sha256:{m3}\n\
             sha256:{m2}\t1kB\t1 hour\tcontainerd.io/gc.ref.content.config=sha256:{c2}\n",
            m1 = "1".repeat(64),
            c1 = "a".repeat(64),
            l = "b".repeat(64),
            idx = "2".repeat(64),
            m2 = "3".repeat(64),
            m3 = "4".repeat(64),
            c2 = "c".repeat(64),
        )
    }

    #[test]
    fn images_ls_keeps_name_and_target() {
        let m = parse_images_ls(IMAGES_LS);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m["docker.io/library/app:1"],
            format!("sha256:{}", "1".repeat(64))
        );
        assert!(parse_images_ls("REF TYPE DIGEST SIZE PLATFORMS LABELS\n").is_empty());
    }

    #[test]
    fn image_ids_through_manifest_and_index() {
        let n = NodeImages::parse(IMAGES_LS, &content_ls());
        let c1 = format!("sha256:{}", "a".repeat(64));
        let c2 = format!("sha256:{}", "c".repeat(64));
        assert!(n.has("docker.io/library/app:1", &c1));
        // the manifest digest also identifies it (Docker's containerd image store uses it)
        assert!(n.has(
            "docker.io/library/app:1",
            &format!("sha256:{}", "1".repeat(64))
        ));
        assert!(n.has("localhost/multi:2", &c2));
        assert!(!n.has("localhost/multi:2", &c1));
        assert!(!n.has("localhost/other:1", &c1));
        assert_eq!(n.config_ids("docker.io/library/app:1"), vec![c1.clone()]);
        assert_eq!(n.config_ids("localhost/multi:2"), vec![c2]);
        // re-tag source: the plain name before the digest name
        assert_eq!(
            n.other_name_with(&c1, "localhost/new:1"),
            Some("docker.io/library/app:1")
        );
        assert_eq!(
            n.other_name_with(&c1, "docker.io/library/app:1"),
            Some(format!("import-2026-11-26@sha256:{}", "1".repeat(64)).as_str())
        );
        assert_eq!(n.other_name_with("sha256:none", "x"), None);
    }

    #[test]
    fn cri_id_names_answer_without_content() {
        let (m, c) = ("1".repeat(64), "a".repeat(64));
        let ls = format!(
            "REF TYPE DIGEST SIZE PLATFORMS LABELS\n\
             localhost/a:1 application/vnd.docker.distribution.manifest.v2+json sha256:{m} 1.0 KiB linux/amd64 io.cri-containerd.image=managed\n\
             sha256:{c} application/vnd.docker.distribution.manifest.v2+json sha256:{m} 1.0 KiB linux/amd64 io.cri-containerd.image=managed\n"
        );
        let n = NodeImages::parse_names(&ls);
        assert!(!n.full);
        assert!(n.has("localhost/a:1", &format!("sha256:{c}")));
        assert_eq!(n.config_ids("localhost/a:1"), vec![format!("sha256:{c}")]);
        assert_eq!(
            n.other_name_with(&format!("sha256:{c}"), "localhost/a:2"),
            Some("localhost/a:1")
        );
        assert!(!n.has("localhost/a:1", "sha256:other"));
    }

    #[test]
    fn absence_is_settled_by_cri_names_or_content() {
        let empty = NodeImages::parse_names("REF TYPE DIGEST SIZE PLATFORMS LABELS\n");
        assert!(empty.settles_absence());
        let plain = NodeImages::parse_names(&format!(
            "x:1 application/vnd.oci.image.manifest.v1+json sha256:{} 1 KiB linux/amd64 -\n",
            "1".repeat(64)
        ));
        assert!(!plain.settles_absence());
        let mut full = plain.clone();
        full.add_content("");
        assert!(full.settles_absence());
    }

    #[test]
    fn platform_choices_as_ctr_import_flags() {
        assert_eq!(Platforms::All.ctr_flags(), ["--all-platforms"]);
        assert!(Platforms::Node.ctr_flags().is_empty());
        assert_eq!(
            Platforms::One("linux/arm64".into()).ctr_flags(),
            ["--platform=linux/arm64"]
        );
    }

    // Kind's node image configs (kindest/node), trimmed, one per config version.
    const KIND_V2: &str = r#"
version = 2
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    restrict_oom_score_adj = false
    sandbox_image = "registry.k8s.io/pause:3.7"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      discard_unpacked_layers = true
      snapshotter = "overlayfs"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
"#;
    const KIND_V3: &str = r#"
version = 3
[plugins]
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "fuse-overlayfs"
    discard_unpacked_layers = true
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "registry.k8s.io/pause:3.10"
  [plugins."io.containerd.cri.v1.runtime"]
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
"#;
    const KIND_V4: &str = r#"
version = 4
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "native"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
"#;

    #[test]
    fn snapshotter_from_kind_config_versions_2_3_4() {
        assert_eq!(snapshotter_from_config(KIND_V2).unwrap(), "overlayfs");
        assert_eq!(snapshotter_from_config(KIND_V3).unwrap(), "fuse-overlayfs");
        assert_eq!(snapshotter_from_config(KIND_V4).unwrap(), "native");
        // the testbed's own fixture config (version 2)
        let testbed = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n";
        assert_eq!(snapshotter_from_config(testbed).unwrap(), "overlayfs");
    }

    #[test]
    fn ingest_dir_under_the_configured_root() {
        assert_eq!(
            ingest_dir_from_config("version = 2\nroot = \"/data/ctd\"\n"),
            "/data/ctd/io.containerd.content.v1.content/ingest"
        );
        assert_eq!(
            ingest_dir_from_config("not toml ["),
            "/var/lib/containerd/io.containerd.content.v1.content/ingest"
        );
    }

    #[test]
    fn snapshotter_defaults_and_errors() {
        assert_eq!(
            snapshotter_from_config("version = 3\n").unwrap(),
            "overlayfs"
        );
        assert_eq!(
            snapshotter_from_config("[plugins.cri.containerd]\nsnapshotter = \"zfs\"\n").unwrap(),
            "zfs"
        );
        assert!(snapshotter_from_config("version = 9\n")
            .unwrap_err()
            .contains("version 9"));
        assert!(snapshotter_from_config("not toml [")
            .unwrap_err()
            .contains("not TOML"));
    }
}

//! Re-packs an image archive stream (`docker save`/`podman save`, or an OCI layout tar) into
//! the frames the node script of [`crate::frames`] reads, on the fly and in bounded memory:
//!
//! - every big blob (a layer) goes into containerd's content store as it streams past
//!   (`ctr content ingest`): containerd hashes it once while storing it, where `ctr images
//!   import` would also hash it in the `ctr` process and copy it through a tar reader first;
//! - the small rest (configs, manifests, index) plus, for Docker archives, the OCI index and
//!   manifests `ctr import` itself would have written for them (byte for byte, so the node
//!   lists the same manifest digest as after `kind load`) goes into one final
//!   `ctr images import`, which names the images and unpacks them from the blobs already there.
//!
//! The first frame imports a tiny "holder" image whose manifest references the blobs about to
//! arrive (the image ID and diff IDs the engine reported, or the digests an archive names), so
//! containerd's GC cannot take a committed layer before the image that uses it exists; the
//! node script removes the holder when it is done or fails.

use crate::exec::Piece;
use crate::frames::{self, blob_path};
use crate::names;
use crate::source;
use crate::tarfmt::{cstr, header_name, pax_records, tar_size, TarWriter};
use bytes::{Bytes, BytesMut};
use e2e_core::path::clean;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Entries up to this size are kept for the final import (layers above it are ingested).
pub const SMALL: u64 = 1024 * 1024;
/// Most bytes kept in memory for the final import; past it, small layers are ingested too.
const SMALL_TOTAL: u64 = 32 * 1024 * 1024;
/// Metadata files (configs, manifests) are always kept, up to this size each.
const META_MAX: u64 = 16 * 1024 * 1024;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// What the re-packing needs besides the archive bytes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Unique per run: names the holder and the ingests, so parallel loads do not collide.
    pub token: String,
    /// Digests known before the archive is read (the image ID and its layers' diff IDs),
    /// protected from the first byte on.
    pub expected: Vec<String>,
    /// The image's layer diff IDs in order (what the engine reports), so the layer
    /// directories of a Docker < 25 `docker save`, named by v1 IDs, can be told apart.
    pub diff_ids: Vec<String>,
    /// Archive path -> digest of layers known up front (an archive file's `manifest.json`
    /// layers by position against its config's diff IDs).
    pub layer_digests: HashMap<String, String>,
}

impl Plan {
    pub fn new(token: String, expected: Vec<String>) -> Self {
        Plan {
            token,
            expected,
            diff_ids: Vec::new(),
            layer_digests: HashMap::new(),
        }
    }
}

/// Re-packs `source` into frames; an archive the final import could not read ends the
/// stream with an error (the nodes then get no import frame and keep nothing).
pub fn repack<S>(source: S, plan: Plan) -> impl Stream<Item = Result<Piece, String>> + Send
where
    S: Stream<Item = Result<Bytes, String>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Result<Piece, String>>(4);
    tokio::spawn(async move {
        let mut r = Repacker::new(plan);
        let holder = Piece::labelled(
            r.holder_frame(),
            "the holder image (`ctr images import --no-unpack`)",
        );
        let _ = tx.send(Ok(holder)).await;
        let mut source = std::pin::pin!(source);
        while let Some(item) = source.next().await {
            let out = match item {
                Ok(chunk) => r.feed(chunk),
                Err(e) => Err(e),
            };
            match out {
                Ok(frames) => {
                    for f in frames {
                        if tx.send(Ok(f)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
        let last = r.finish().map(|f| {
            Piece::labelled(
                f,
                "the final `ctr images import` (names the image, unpacks its layers)",
            )
        });
        let _ = tx.send(last).await;
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
}

/// Where the current entry's bytes go.
enum Sink {
    /// Streamed to the nodes as a blob frame and hashed on the way.
    Ingest {
        name: String,
        size: u64,
        hasher: Sha256,
        head: Vec<u8>,
        /// The digest its name says (OCI layouts, Podman archives) or its position in the
        /// image (Docker < 25): nodes holding it skip it.
        named: Option<Arc<str>>,
        /// Whether `named` came from the position (then a mismatch says so).
        mapped: bool,
    },
    /// Kept for the final import.
    Keep {
        name: String,
        data: Vec<u8>,
    },
    /// A GNU long name or PAX header: parsed, applies to the next entry.
    Extension {
        kind: u8,
        data: Vec<u8>,
    },
    Skip,
}

struct Entry {
    remaining: u64,
    padding: u64,
    sink: Sink,
}

/// A blob seen in the archive.
#[derive(Debug, Clone)]
struct Blob {
    digest: String,
    size: u64,
    /// The first bytes, for the compression of a layer.
    head: Vec<u8>,
}

struct Repacker {
    plan: Plan,
    pending: BytesMut,
    entry: Option<Entry>,
    long_name: Option<String>,
    pax_path: Option<String>,
    pax_size: Option<u64>,
    kept: BTreeMap<String, Vec<u8>>,
    kept_bytes: u64,
    blobs: HashMap<String, Blob>,
    symlinks: Vec<(String, String)>,
    refs: BTreeSet<String>,
    ingests: usize,
    ended: bool,
    /// Chain IDs of the image's layers (same order as `plan.diff_ids`).
    chains: Vec<String>,
    /// v1 layer directory -> diff ID, proven from the directory's `json` (Docker < 25).
    v1: HashMap<String, String>,
}

impl Repacker {
    fn new(plan: Plan) -> Self {
        let refs = plan.expected.iter().cloned().collect();
        let chains = chain_ids(&plan.diff_ids);
        Repacker {
            chains,
            v1: HashMap::new(),
            plan,
            pending: BytesMut::new(),
            entry: None,
            long_name: None,
            pax_path: None,
            pax_size: None,
            kept: BTreeMap::new(),
            kept_bytes: 0,
            blobs: HashMap::new(),
            symlinks: Vec::new(),
            refs,
            ingests: 0,
            ended: false,
        }
    }

    fn holder_frame(&self) -> Bytes {
        frames::hold(&self.plan.token, &self.plan.expected)
    }

    /// Consumes one chunk of the archive; returns the frames it completes.
    fn feed(&mut self, mut chunk: Bytes) -> Result<Vec<Piece>, String> {
        let mut out = Vec::new();
        while !chunk.is_empty() {
            if self.ended {
                // Zero blocks after the end marker: ignore.
                break;
            }
            match &mut self.entry {
                Some(e) if e.remaining > 0 => {
                    let n = (e.remaining.min(chunk.len() as u64)) as usize;
                    let part = chunk.split_to(n);
                    e.remaining -= n as u64;
                    match &mut e.sink {
                        Sink::Ingest {
                            hasher,
                            head,
                            named,
                            ..
                        } => {
                            hasher.update(&part);
                            if head.len() < 16 {
                                let k = (16 - head.len()).min(part.len());
                                head.extend_from_slice(&part[..k]);
                            }
                            out.push(Piece {
                                bytes: part,
                                blob: named.clone(),
                                what: None,
                            });
                        }
                        Sink::Keep { data, .. } | Sink::Extension { data, .. } => {
                            data.extend_from_slice(&part)
                        }
                        Sink::Skip => {}
                    }
                    if e.remaining == 0 && e.padding == 0 {
                        self.close_entry(&mut out)?;
                    }
                }
                Some(e) => {
                    let n = (e.padding.min(chunk.len() as u64)) as usize;
                    let _ = chunk.split_to(n);
                    e.padding -= n as u64;
                    if e.padding == 0 {
                        self.close_entry(&mut out)?;
                    }
                }
                None => {
                    let need = 512 - self.pending.len();
                    let n = need.min(chunk.len());
                    self.pending.extend_from_slice(&chunk.split_to(n));
                    if self.pending.len() == 512 {
                        let header = self.pending.split();
                        self.start_entry(&header, &mut out)?;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Reads one 512-byte header and decides where the entry's bytes go.
    fn start_entry(&mut self, h: &[u8], out: &mut Vec<Piece>) -> Result<(), String> {
        if h.iter().all(|&b| b == 0) {
            self.ended = true;
            return Ok(());
        }
        let header_size =
            tar_size(&h[124..136]).ok_or("not a tar archive (bad size field in a header)")?;
        let kind = h[156];
        let name = match (self.pax_path.take(), self.long_name.take()) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => header_name(h),
        };
        let name = clean(&name);
        let size = self.pax_size.take().unwrap_or(header_size);
        let sink = match kind {
            b'L' | b'x' => Sink::Extension {
                kind,
                data: Vec::new(),
            },
            b'0' | 0 | b'7' => self.sink_for(name, size, out),
            b'2' => {
                let target = cstr(&h[157..257]);
                let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                let resolved = clean(&join(dir, &target));
                self.symlinks.push((name, resolved));
                Sink::Skip
            }
            _ => Sink::Skip,
        };
        self.entry = Some(Entry {
            remaining: size,
            padding: size.div_ceil(512) * 512 - size,
            sink,
        });
        if size == 0 {
            self.close_entry(out)?;
        }
        Ok(())
    }

    fn sink_for(&mut self, name: String, size: u64, out: &mut Vec<Piece>) -> Sink {
        let meta = name.ends_with(".json") || name == "oci-layout" || name == "repositories";
        let keep =
            (meta && size <= META_MAX) || (size <= SMALL && self.kept_bytes + size <= SMALL_TOTAL);
        if keep {
            self.kept_bytes += size;
            return Sink::Keep {
                name,
                data: Vec::with_capacity(size as usize),
            };
        }
        // A name that is a digest (OCI layouts, Podman), or a Docker < 25 layer whose digest
        // its position in the image gives, is referenced before its bytes go, and lets a node
        // that holds the blob skip the frame. The bytes are hashed on the way all the same: a
        // blob that is not what was assumed fails the load.
        let by_name = source::named_digest(&name);
        let mapped = by_name.is_none();
        let named = by_name.or_else(|| self.mapped_digest(&name));
        if let Some(d) = &named {
            if self.refs.insert(d.clone()) {
                out.push(frames::reference(self.refs.len(), d).into());
            }
        }
        let what = match &named {
            Some(d) => format!("layer {} ({})", short(d), human(size)),
            None => format!("layer {name} ({})", human(size)),
        };
        let named: Option<Arc<str>> = named.map(Arc::from);
        self.ingests += 1;
        let reference = format!(
            "{}{}",
            frames::ingest_prefix(&self.plan.token),
            self.ingests
        );
        out.push(Piece {
            bytes: frames::blob(size, &reference),
            blob: named.clone(),
            what: Some(Arc::from(what)),
        });
        Sink::Ingest {
            name,
            size,
            hasher: Sha256::new(),
            head: Vec::new(),
            mapped: mapped && named.is_some(),
            named,
        }
    }

    fn close_entry(&mut self, out: &mut Vec<Piece>) -> Result<(), String> {
        let Some(e) = self.entry.take() else {
            return Ok(());
        };
        match e.sink {
            Sink::Ingest {
                name,
                size,
                hasher,
                head,
                named,
                mapped,
            } => {
                let digest = format!("sha256:{:x}", hasher.finalize());
                if let Some(n) = named {
                    if *n != *digest && mapped {
                        return Err(format!(
                            "archive entry {name} is not the layer its position in the image says \
                             (its digest is {digest}, the image config says {n}); nothing was imported"
                        ));
                    }
                    if *n != *digest {
                        return Err(format!(
                            "archive entry {name} is not what its name says (its digest is {digest})"
                        ));
                    }
                }
                if self.refs.insert(digest.clone()) {
                    // Neither announced nor named by its digest (a compressed layer under a
                    // `docker save` v1 name): referenced as soon as it is known.
                    out.push(frames::reference(self.refs.len(), &digest).into());
                }
                self.blobs.insert(name, Blob { digest, size, head });
            }
            Sink::Keep { name, data } => {
                self.learn_v1(&name, &data);
                let digest = format!("sha256:{:x}", Sha256::digest(&data));
                self.blobs.insert(
                    name.clone(),
                    Blob {
                        digest,
                        size: data.len() as u64,
                        head: data.iter().take(16).copied().collect(),
                    },
                );
                self.kept.insert(name, data);
            }
            Sink::Extension { kind: b'L', data } => self.long_name = Some(cstr(&data)),
            Sink::Extension { data, .. } => {
                for (k, v) in pax_records(&data) {
                    match k.as_str() {
                        "path" => self.pax_path = Some(v),
                        "size" => self.pax_size = v.parse().ok(),
                        _ => {}
                    }
                }
            }
            Sink::Skip => {}
        }
        Ok(())
    }

    /// The digest a layer entry without a digest name is known to have: from the plan (an
    /// archive file's table of contents), or, for `<v1 ID>/layer.tar`, from the directory's
    /// `json` seen before it (Docker writes `json` before `layer.tar` in every directory).
    /// Only `layer.tar` entries: Docker before 25 writes them uncompressed, so their digest is
    /// the diff ID.
    fn mapped_digest(&self, name: &str) -> Option<String> {
        let dir = name.strip_suffix("/layer.tar")?;
        self.plan
            .layer_digests
            .get(name)
            .or_else(|| self.v1.get(dir))
            .cloned()
    }

    /// Records which layer a `<v1 ID>/json` describes, when its hash proves it.
    fn learn_v1(&mut self, name: &str, json: &[u8]) {
        let Some(dir) = name.strip_suffix("/json") else {
            return;
        };
        if self.chains.is_empty() || !is_hex64(dir) {
            return;
        }
        if let Some(i) = v1_layer(dir, json, &self.chains) {
            self.v1
                .insert(dir.to_string(), self.plan.diff_ids[i].clone());
        }
    }

    /// The final frame: the import of everything kept (and synthesised).
    fn finish(&mut self) -> Result<Bytes, String> {
        if self.entry.is_some() || !self.pending.is_empty() {
            return Err(
                "the image archive is truncated: it ended in the middle of an entry (cut off?)"
                    .into(),
            );
        }
        // An archive cut off between two entries lacks its end marker (two zero blocks,
        // which every archive writer puts there) and usually its manifest.json (written last).
        let tar = self.final_tar().map_err(|e| {
            if self.ended {
                e
            } else {
                format!("the image archive is truncated: it ends without the tar end marker ({e})")
            }
        })?;
        Ok(frames::import(tar))
    }

    fn final_tar(&mut self) -> Result<Vec<u8>, String> {
        for (name, target) in std::mem::take(&mut self.symlinks) {
            if let Some(b) = self.blobs.get(&target).cloned() {
                self.blobs.insert(name, b);
            }
        }
        let mut t = TarWriter::default();
        if self.kept.contains_key("oci-layout") {
            // An OCI layout: `ctr import` reads it as is; big blobs are already in the store.
            if !self.kept.contains_key("index.json") {
                return Err("OCI layout without index.json".into());
            }
            for (name, data) in &self.kept {
                t.add(name, data);
            }
            return Ok(t.finish());
        }
        let Some(manifest) = self.kept.get("manifest.json") else {
            return Err(
                "unrecognised image archive: neither an OCI layout (oci-layout, index.json) \
                 nor a docker/podman save archive (manifest.json)"
                    .into(),
            );
        };
        let entries: Vec<SaveManifest> = serde_json::from_slice(manifest)
            .map_err(|e| format!("bad manifest.json in the image archive: {e}"))?;
        let mut index = Index {
            schema_version: 2,
            manifests: Vec::new(),
        };
        let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for m in &entries {
            let config = self
                .blobs
                .get(&m.config)
                .ok_or_else(|| format!("image config {} is not in the archive", m.config))?;
            let mut layers = Vec::new();
            for l in &m.layers {
                let b = self
                    .blobs
                    .get(l)
                    .ok_or_else(|| format!("layer {l} is not in the archive"))?;
                layers.push(Descriptor::new(
                    layer_media_type(&b.head),
                    &b.digest,
                    b.size,
                ));
                if let Some(data) = self.kept.get(l) {
                    files.insert(blob_path(&b.digest), data.clone());
                }
            }
            let manifest = Manifest {
                schema_version: 2,
                media_type: DOCKER_MANIFEST,
                config: Descriptor::new(DOCKER_CONFIG, &config.digest, config.size),
                layers,
            };
            let bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
            let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
            let platform = self.kept.get(&m.config).and_then(|c| platform_of(c));
            if let Some(c) = self.kept.get(&m.config) {
                files.insert(blob_path(&config.digest), c.clone());
            }
            let desc = IndexEntry {
                media_type: DOCKER_MANIFEST,
                digest: digest.clone(),
                size: bytes.len() as u64,
                annotations: None,
                platform,
            };
            files.insert(blob_path(&digest), bytes);
            let tags = m.repo_tags.clone().unwrap_or_default();
            if tags.is_empty() {
                index.manifests.push(desc.clone());
            }
            for tag in tags {
                let name = names::normalize_full(&tag);
                let mut d = desc.clone();
                let mut a = BTreeMap::new();
                a.insert("io.containerd.image.name", name.clone());
                a.insert("org.opencontainers.image.ref.name", ref_name(&name));
                d.annotations = Some(a);
                index.manifests.push(d);
            }
        }
        t.add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        for (name, data) in &files {
            t.add(name, data);
        }
        let index = serde_json::to_vec(&index).map_err(|e| e.to_string())?;
        t.add("index.json", &index);
        Ok(t.finish())
    }
}

/// The chain IDs of a layer stack: the first diff ID, then `sha256(parent chain + " " + diff)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = match out.last() {
            None => d.clone(),
            Some(p) => format!("sha256:{:x}", Sha256::digest(format!("{p} {d}").as_bytes())),
        };
        out.push(c);
    }
    out
}

/// Which layer (index into `chains`) the v1 directory `dir` holds. Docker before 25 names a
/// `docker save` layer directory by a v1 ID: the SHA-256 of the JSON in its `json` file without
/// `id`, with `layer_id` = the layer's chain ID and `parent` as a digest, keys sorted, values
/// as written; for every layer but the top one without `os` too (Docker sets it after making
/// the ID). Only a matching hash counts, so a format this does not know maps nothing.
pub fn v1_layer(dir: &str, json: &[u8], chains: &[String]) -> Option<usize> {
    let mut members: BTreeMap<String, String> = top_members(json)?.into_iter().collect();
    members.remove("id");
    if let Some(p) = members.get("parent").cloned() {
        let hex: String = serde_json::from_str(&p).ok()?;
        members.insert(
            "parent".into(),
            serde_json::to_string(&format!("sha256:{hex}")).ok()?,
        );
    }
    for (i, chain) in chains.iter().enumerate() {
        for drop_os in [false, true] {
            let mut m = members.clone();
            if drop_os && m.remove("os").is_none() {
                continue;
            }
            m.insert("layer_id".into(), serde_json::to_string(chain).ok()?);
            let body: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap_or_default()))
                .collect();
            let text = format!("{{{}}}", body.join(","));
            if format!("{:x}", Sha256::digest(text.as_bytes())) == dir {
                return Some(i);
            }
        }
    }
    None
}

/// The members of a JSON object as (key, raw value text), values exactly as written.
fn top_members(json: &[u8]) -> Option<Vec<(String, String)>> {
    let s = std::str::from_utf8(json).ok()?.trim();
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let b = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    // End (exclusive) of the string starting at `start` (a `"`).
    let string_end = |start: usize| -> Option<usize> {
        let mut j = start + 1;
        while j < b.len() {
            match b[j] {
                b'\\' => j += 2,
                b'"' => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        if b[i] != b'"' {
            return None;
        }
        let kend = string_end(i)?;
        let key: String = serde_json::from_str(&inner[i..kend]).ok()?;
        i = kend;
        skip_ws(&mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let start = i;
        let mut depth = 0i32;
        while i < b.len() {
            match b[i] {
                b'"' => {
                    i = string_end(i)?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        out.push((key, inner[start..i].trim_end().to_string()));
        if i < b.len() {
            i += 1;
        }
    }
    Some(out)
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// `sha256:0123456789ab` (12 hex digits, as people recognise image IDs).
pub fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

fn human(n: u64) -> String {
    e2e_core::size::human_bytes(n)
}

fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') || dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

/// containerd's media type for a layer of a Docker archive, from its first bytes.
fn layer_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        DOCKER_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        OCI_LAYER_ZSTD
    } else {
        DOCKER_LAYER
    }
}

/// The OCI reference name ctr puts next to the full name: the tag.
fn ref_name(full: &str) -> String {
    let last = full.rsplit('/').next().unwrap_or(full);
    last.rsplit_once(':')
        .map(|(_, t)| t.to_string())
        .unwrap_or_default()
}

/// The platform of an image config, normalised the way containerd does for the common cases.
fn platform_of(config: &[u8]) -> Option<Platform> {
    #[derive(Deserialize)]
    struct C {
        #[serde(default)]
        architecture: String,
        #[serde(default)]
        os: String,
        #[serde(default)]
        variant: Option<String>,
    }
    let c: C = serde_json::from_slice(config).ok()?;
    if c.os.is_empty() || c.architecture.is_empty() {
        return None;
    }
    let (arch, variant) = match (c.architecture.to_ascii_lowercase().as_str(), c.variant) {
        ("x86_64" | "x86-64" | "amd64", _) => ("amd64".to_string(), None),
        ("aarch64" | "arm64", v) => (
            "arm64".to_string(),
            v.filter(|v| v != "v8" && !v.is_empty()),
        ),
        ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
        ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
        (a, v) => (a.to_string(), v.filter(|v| !v.is_empty())),
    };
    Some(Platform {
        architecture: arch,
        os: c.os.to_ascii_lowercase(),
        variant,
    })
}

/// One entry of a Docker archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Field order as Go's `ocispec.Descriptor`, so the manifest bytes equal ctr's.
#[derive(Serialize, Clone)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    digest: String,
    size: u64,
}

impl Descriptor {
    fn new(media_type: &'static str, digest: &str, size: u64) -> Self {
        Descriptor {
            media_type,
            digest: digest.to_string(),
            size,
        }
    }
}

#[derive(Serialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize, Clone)]
struct Platform {
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

#[derive(Serialize, Clone)]
struct IndexEntry {
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<&'static str, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
}

#[derive(Serialize)]
struct Index {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    manifests: Vec<IndexEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar entry (USTAR; `kind` b'0' file, b'2' symlink with `data` as the target).
    fn entry(out: &mut Vec<u8>, name: &str, kind: u8, data: &[u8]) {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        let size = if kind == b'2' { 0 } else { data.len() };
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = kind;
        if kind == b'2' {
            h[157..157 + data.len()].copy_from_slice(data);
        }
        h[257..262].copy_from_slice(b"ustar");
        out.extend_from_slice(&h);
        if kind != b'2' {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }

    fn pax(out: &mut Vec<u8>, path: &str) {
        let rec = |k: &str, v: &str| {
            let body = format!(" {k}={v}\n");
            let mut n = body.len() + 1;
            while (n.to_string().len() + body.len()) != n {
                n = n.to_string().len() + body.len();
            }
            format!("{n}{body}")
        };
        entry(out, "PaxHeader", b'x', rec("path", path).as_bytes());
    }

    fn sha(b: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(b))
    }

    /// Runs the repacker over `tar` in pieces of `step` bytes; returns the frames as
    /// (line, payload) pairs, or the error.
    fn run(tar: &[u8], step: usize, expected: &[String]) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut r = Repacker::new(Plan::new("t".into(), expected.to_vec()));
        let mut bytes = r.holder_frame().to_vec();
        for piece in tar.chunks(step) {
            for f in r.feed(Bytes::copy_from_slice(piece))? {
                bytes.extend_from_slice(&f.bytes);
            }
        }
        bytes.extend_from_slice(&r.finish()?);
        // Parse the frames back the way the node script reads them.
        let mut frames = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let nl = rest.iter().position(|&b| b == b'\n').unwrap();
            let line = String::from_utf8(rest[..nl].to_vec()).unwrap();
            rest = &rest[nl + 1..];
            let f: Vec<&str> = line.split(' ').collect();
            let len = match f[0] {
                "hold" => f[2].parse().unwrap(),
                "blob" | "import" => f[1].parse().unwrap(),
                _ => 0usize,
            };
            frames.push((line.clone(), rest[..len].to_vec()));
            rest = &rest[len..];
        }
        Ok(frames)
    }

    fn files(tar: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (name, data)
            })
            .collect()
    }

    /// A `docker save` (Docker 20.10 layout) of one image with a big and a small layer, the
    /// big one stored once more through a symlink, as Docker does for a repeated layer.
    fn docker_save() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let big: Vec<u8> = (0..(SMALL as usize + 70_000))
            .map(|i| (i % 251) as u8)
            .collect();
        let small = vec![3u8; 2000];
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}","{}","{}"]}}}}"#,
            sha(&big),
            sha(&small),
            sha(&big)
        )
        .into_bytes();
        let cid = sha(&config)[7..].to_string();
        let (a, b, c) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let manifest = format!(
            r#"[{{"Config":"{cid}.json","RepoTags":["localhost/app:1","app:2"],"Layers":["{a}/layer.tar","{b}/layer.tar","{c}/layer.tar"]}}]"#
        );
        let mut t = Vec::new();
        entry(&mut t, &format!("{cid}.json"), b'0', &config);
        entry(&mut t, &format!("{a}/layer.tar"), b'0', &big);
        entry(&mut t, &format!("{b}/layer.tar"), b'0', &small);
        entry(
            &mut t,
            &format!("{c}/layer.tar"),
            b'2',
            format!("../{a}/layer.tar").as_bytes(),
        );
        entry(&mut t, "manifest.json", b'0', manifest.as_bytes());
        t.extend_from_slice(&[0u8; 1024]);
        (t, big, small, config)
    }

    /// The frames' operations, in order.
    fn ops(frames: &[(String, Vec<u8>)]) -> Vec<&str> {
        frames
            .iter()
            .map(|(l, _)| l.split(' ').next().unwrap())
            .collect()
    }

    /// The digests the holder frame's manifest lists.
    fn holder_layers(frame: &(String, Vec<u8>)) -> Vec<String> {
        let manifest = frame.0.split(' ').nth(3).unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&files(&frame.1)[&blob_path(manifest)]).unwrap();
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_docker_archive_becomes_ingests_and_the_index_ctr_would_write() {
        let (tar, big, small, config) = docker_save();
        let expected = vec![sha(&config), sha(&big), sha(&small)];
        for step in [1, 511, 4096, 1 << 20, tar.len()] {
            let frames = run(&tar, step, &expected).unwrap();
            // The big layer is ingested once; the small one rides in the final import.
            assert_eq!(ops(&frames), ["hold", "blob", "import"], "step {step}");
            assert_eq!(holder_layers(&frames[0]), expected);
            assert_eq!(frames[1].1, big);
            let out = files(&frames[2].1);
            assert_eq!(out["oci-layout"], br#"{"imageLayoutVersion":"1.0.0"}"#);
            assert_eq!(out[&blob_path(&sha(&config))], config);
            assert_eq!(out[&blob_path(&sha(&small))], small);
            // The manifest: byte for byte what `ctr import` writes for a Docker archive.
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{DOCKER_LAYER}","digest":"{}","size":{}}},{{"mediaType":"{DOCKER_LAYER}","digest":"{}","size":{}}},{{"mediaType":"{DOCKER_LAYER}","digest":"{}","size":{}}}]}}"#,
                sha(&config),
                config.len(),
                sha(&big),
                big.len(),
                sha(&small),
                small.len(),
                sha(&big),
                big.len()
            );
            assert_eq!(
                out[&blob_path(&sha(manifest.as_bytes()))],
                manifest.as_bytes()
            );
            let index: serde_json::Value = serde_json::from_slice(&out["index.json"]).unwrap();
            let m = index["manifests"].as_array().unwrap();
            assert_eq!(m.len(), 2);
            assert_eq!(m[0]["digest"], sha(manifest.as_bytes()));
            assert_eq!(
                m[0]["annotations"]["io.containerd.image.name"],
                "localhost/app:1"
            );
            assert_eq!(
                m[0]["annotations"]["org.opencontainers.image.ref.name"],
                "1"
            );
            assert_eq!(
                m[1]["annotations"]["io.containerd.image.name"],
                "docker.io/library/app:2"
            );
            assert_eq!(m[0]["platform"]["architecture"], "amd64");
        }
    }

    #[test]
    fn blobs_not_announced_up_front_get_a_reference_frame() {
        let (tar, big, ..) = docker_save();
        let frames = run(&tar, 65536, &[]).unwrap();
        assert_eq!(ops(&frames), ["hold", "blob", "ref", "import"]);
        assert!(
            frames[2].0.ends_with(&format!("={}", sha(&big))),
            "{}",
            frames[2].0
        );
    }

    #[test]
    fn an_oci_layout_passes_through_with_its_big_blobs_ingested() {
        let big = vec![9u8; SMALL as usize + 1];
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let mut t = Vec::new();
        entry(
            &mut t,
            "oci-layout",
            b'0',
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        let long = format!("blobs/sha256/{}", &sha(&big)[7..]);
        pax(&mut t, &long);
        entry(&mut t, "ignored-short-name", b'0', &big);
        entry(&mut t, "index.json", b'0', index);
        let frames = run(&t, 1000, &[sha(&big)]).unwrap();
        assert_eq!(ops(&frames), ["hold", "blob", "import"]);
        // Not announced: the name says the digest, so it is referenced before its bytes go.
        let unannounced = run(&t, 1000, &[]).unwrap();
        assert_eq!(ops(&unannounced), ["hold", "ref", "blob", "import"]);
        assert!(unannounced[1].0.ends_with(&sha(&big)));
        let out = files(&frames[2].1);
        assert_eq!(out.keys().collect::<Vec<_>>(), ["index.json", "oci-layout"]);
        assert_eq!(out["index.json"], index);
    }

    #[test]
    fn cut_off_and_foreign_archives_are_errors() {
        let (tar, ..) = docker_save();
        let e = run(&tar[..700_000], 4096, &[]).unwrap_err();
        assert!(e.contains("ended in the middle"), "{e}");
        let mut t = Vec::new();
        entry(&mut t, "hello.txt", b'0', b"hi");
        t.extend_from_slice(&[0u8; 1024]);
        let e = run(&t, 4096, &[]).unwrap_err();
        assert!(e.contains("unrecognised image archive"), "{e}");
        let e = run(&[1u8; 512], 512, &[]).unwrap_err();
        assert!(e.contains("not a tar archive"), "{e}");
    }

    // What Docker 20.10.24's `docker save` wrote for an image of three layers (the testbed's
    // base image + two COPY layers + ENV): the image's diff IDs, and per layer the v1 directory
    // name and its `json`.
    const DIFF_IDS: [&str; 3] = [
        "sha256:6d079b277f67064f13e2d4a1f213acb224bda28e58f30e11710bc09be16b36e0",
        "sha256:2033b608311ffe6146c885c61cee8f486233778d97d0262570ddf9fea2a87853",
        "sha256:1c216f6c4ff378e0585ea0a9121170afb9a0a6f7ab3fa0f51f9f8cd9b7483128",
    ];
    const V1_BASE: (&str, &str) = (
        "2a500b0668912b573e74c7e6580cdbd6e051d2c0795ce4f43f3947c6426af672",
        r#"{"id":"2a500b0668912b573e74c7e6580cdbd6e051d2c0795ce4f43f3947c6426af672","created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"os":"linux"}"#,
    );
    const V1_MID: (&str, &str) = (
        "bb9a37417d69786c28b36514a32c4df2b2112006d3bb1564f88ef90174ce879b",
        r#"{"id":"bb9a37417d69786c28b36514a32c4df2b2112006d3bb1564f88ef90174ce879b","parent":"2a500b0668912b573e74c7e6580cdbd6e051d2c0795ce4f43f3947c6426af672","created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"os":"linux"}"#,
    );
    const V1_TOP: (&str, &str) = (
        "8303b3a1af33bddac11c45ffaabc8eebf2e8fa936915c64b84072c56275c4e35",
        r##"{"id":"8303b3a1af33bddac11c45ffaabc8eebf2e8fa936915c64b84072c56275c4e35","parent":"bb9a37417d69786c28b36514a32c4df2b2112006d3bb1564f88ef90174ce879b","created":"2026-11-30T23:32:25.234479536Z","container":"47e1e40b535fde0d11ca670b2e4fd40cbed71e3629ab32e5e40d9bbc72870a50","container_config":{"Hostname":"47e1e40b535f","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","X=1"],"Cmd":["/bin/sh","-c","#(nop) ","ENV X=1"],"Image":"sha256:e12a0d50b859eaac9ae59642a8bd9fb8faeae85eab950c924cef03123c7f90c4","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"e2e-testbed.recipe":"base-eff4d00f3312"}},"docker_version":"20.10.24+dfsg1","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","X=1"],"Cmd":["bash"],"Image":"sha256:e12a0d50b859eaac9ae59642a8bd9fb8faeae85eab950c924cef03123c7f90c4","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"e2e-testbed.recipe":"base-eff4d00f3312"}},"architecture":"amd64","os":"linux"}"##,
    );

    #[test]
    fn docker_v1_layer_directories_map_to_their_diff_ids() {
        let diffs: Vec<String> = DIFF_IDS.iter().map(|s| s.to_string()).collect();
        let chains = chain_ids(&diffs);
        assert_eq!(chains[0], diffs[0]);
        for (i, (dir, json)) in [V1_BASE, V1_MID, V1_TOP].into_iter().enumerate() {
            assert_eq!(v1_layer(dir, json.as_bytes(), &chains), Some(i), "{dir}");
        }
        // Only the proven layer: another stack, an edited json or another name map nothing.
        let mut other = diffs.clone();
        other[0] = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            v1_layer(V1_MID.0, V1_MID.1.as_bytes(), &chain_ids(&other)),
            None
        );
        let edited = V1_TOP.1.replace("X=1", "X=2");
        assert_eq!(v1_layer(V1_TOP.0, edited.as_bytes(), &chains), None);
        assert_eq!(v1_layer(V1_BASE.0, b"not json", &chains), None);
    }

    /// A Docker < 25 `docker save` whose layers are named by v1 IDs: each layer's frames carry
    /// its diff ID (so a node holding it is spared them), and a layer whose bytes are not that
    /// diff ID fails the load.
    #[test]
    fn v1_named_layers_are_tagged_with_their_diff_ids_and_checked() {
        let big: Vec<u8> = (0..(SMALL as usize + 5000))
            .map(|i| (i % 253) as u8)
            .collect();
        let top: Vec<u8> = (0..(SMALL as usize + 7000))
            .map(|i| (i % 241) as u8)
            .collect();
        let diffs = vec![sha(&big), sha(&top)];
        let chains = chain_ids(&diffs);
        // v1 IDs made the way Docker makes them, from the json files this archive carries.
        let base_json = r#"{"created":"1970-01-01T00:00:00Z","os":"linux"}"#;
        let base_id = format!(
            "{:x}",
            Sha256::digest(
                format!(
                    r#"{{"created":"1970-01-01T00:00:00Z","layer_id":"{}"}}"#,
                    chains[0]
                )
                .as_bytes()
            )
        );
        let top_body =
            format!(r#""created":"2026-01-01T00:00:00Z","os":"linux","parent":"{base_id}""#);
        let top_id = format!(
            "{:x}",
            Sha256::digest(format!(r#"{{"created":"2026-01-01T00:00:00Z","layer_id":"{}","os":"linux","parent":"sha256:{base_id}"}}"#, chains[1]).as_bytes())
        );
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
            diffs[0], diffs[1]
        );
        let cid = sha(config.as_bytes())[7..].to_string();
        let build = |top_bytes: &[u8]| {
            let mut t = Vec::new();
            let mut dirs = [
                (base_id.clone(), base_json.to_string(), big.clone()),
                (
                    top_id.clone(),
                    format!("{{{top_body}}}"),
                    top_bytes.to_vec(),
                ),
            ];
            dirs.sort();
            for (id, json, data) in &dirs {
                entry(&mut t, &format!("{id}/json"), b'0', json.as_bytes());
                entry(&mut t, &format!("{id}/layer.tar"), b'0', data);
            }
            entry(&mut t, &format!("{cid}.json"), b'0', config.as_bytes());
            let manifest = format!(
                r#"[{{"Config":"{cid}.json","RepoTags":["localhost/v1:1"],"Layers":["{base_id}/layer.tar","{top_id}/layer.tar"]}}]"#
            );
            entry(&mut t, "manifest.json", b'0', manifest.as_bytes());
            t.extend_from_slice(&[0u8; 1024]);
            t
        };
        let tar = build(&top);
        let mut plan = Plan::new("t".into(), diffs.clone());
        plan.diff_ids = diffs.clone();
        let mut r = Repacker::new(plan.clone());
        let mut tagged: BTreeMap<String, u64> = BTreeMap::new();
        for piece in tar.chunks(300_000) {
            for f in r.feed(Bytes::copy_from_slice(piece)).unwrap() {
                if let Some(b) = &f.blob {
                    *tagged.entry(b.to_string()).or_default() += f.bytes.len() as u64;
                }
            }
        }
        r.finish().unwrap();
        // Every byte of each layer (and its frame line) carries the layer's diff ID.
        assert_eq!(tagged.len(), 2, "{tagged:?}");
        assert!(tagged[&diffs[0]] > big.len() as u64);
        assert!(tagged[&diffs[1]] > top.len() as u64);

        // The top layer's bytes changed under the same v1 name: the load fails, naming it.
        let mut bad = top.clone();
        bad[10] ^= 1;
        let mut r = Repacker::new(plan);
        let mut err = None;
        for piece in build(&bad).chunks(300_000) {
            if let Err(e) = r.feed(Bytes::copy_from_slice(piece)) {
                err = Some(e);
                break;
            }
        }
        let e = err.expect("a layer that is not its diff ID must fail");
        assert!(
            e.contains(&format!("{top_id}/layer.tar")) && e.contains("position"),
            "{e}"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(clean("./a//b/../c"), "a/c");
        assert_eq!(clean(&join("x", "../y/layer.tar")), "y/layer.tar");
        assert_eq!(ref_name("localhost:5000/team/app:v1"), "v1");
        assert_eq!(layer_media_type(&[0x1f, 0x8b, 8]), DOCKER_LAYER_GZIP);
        let p = platform_of(br#"{"architecture":"aarch64","os":"Linux","variant":"v8"}"#).unwrap();
        assert_eq!(
            (p.architecture.as_str(), p.os.as_str(), p.variant),
            ("arm64", "linux", None)
        );
        assert!(platform_of(b"{}").is_none());
    }
}

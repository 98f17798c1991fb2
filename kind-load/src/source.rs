//! Where image bytes come from: the engine's export (`docker save` format, streamed) or an
//! existing archive file (streamed from disk). Neither touches a temporary file.

use crate::names;
use crate::tarfmt::{cstr, header_name, tar_size};
use bollard::Docker;
use bytes::{Bytes, BytesMut};
use e2e_core::size::STREAM_CHUNK;
use e2e_core::CliError;
use e2e_engine::error_text;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

/// A byte stream of an image archive.
pub type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// What the engine says about an image before it is exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineImage {
    /// The image ID (config digest).
    pub id: String,
    /// The layers' diff IDs: the digests of the uncompressed layer tars an export holds.
    pub layers: Vec<String>,
}

/// The engine's image `name`, or None when the engine does not have it.
pub async fn engine_image(docker: &Docker, name: &str) -> Result<Option<EngineImage>, String> {
    match docker.inspect_image(name).await {
        Ok(i) => Ok(i.id.map(|id| EngineImage {
            id,
            layers: i.root_fs.and_then(|r| r.layers).unwrap_or_default(),
        })),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(error_text(&e)),
    }
}

/// `GET /images/{name}/get`, optionally for one platform (Docker API 1.48+ only; older
/// engines ignore the parameter, and `ctr import --platform` filters instead).
pub fn export(docker: &Docker, name: &str, platform: Option<&str>) -> ByteStream {
    let docker = match platform.and_then(platform_query) {
        Some(q) => docker.clone().with_request_modifier(move |mut req| {
            let uri = req.uri().to_string();
            if uri.contains("/images/") && uri.contains("/get") {
                let sep = if uri.contains('?') { '&' } else { '?' };
                if let Ok(u) = format!("{uri}{sep}platform={q}").parse() {
                    *req.uri_mut() = u;
                }
            }
            req
        }),
        None => docker.clone(),
    };
    let name = name.to_string();
    let s = docker
        .export_image(&name)
        .map(|r| r.map_err(|e| error_text(&e)));
    coalesce(s)
}

/// `linux/arm64/v8` -> URL-encoded JSON `{"os":"linux","architecture":"arm64","variant":"v8"}`.
pub fn platform_query(p: &str) -> Option<String> {
    let mut parts = p.split('/');
    let os = parts.next().filter(|s| !s.is_empty())?;
    let arch = parts.next().filter(|s| !s.is_empty())?;
    let mut json = serde_json::json!({"os": os, "architecture": arch});
    if let Some(v) = parts.next().filter(|s| !s.is_empty()) {
        json["variant"] = v.into();
    }
    let text = json.to_string();
    let mut enc = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    Some(enc)
}

/// Joins small chunks into ones of at least [`STREAM_CHUNK`] bytes (engines send 4-32 KiB pieces).
pub fn coalesce<S>(s: S) -> ByteStream
where
    S: Stream<Item = Result<Bytes, String>> + Send + 'static,
{
    let s = Box::pin(s);
    Box::pin(futures_util::stream::unfold(
        (s, BytesMut::new(), false),
        |(mut s, mut buf, done)| async move {
            if done {
                return None;
            }
            loop {
                match s.next().await {
                    Some(Ok(b)) => {
                        if buf.is_empty() && b.len() >= STREAM_CHUNK {
                            return Some((Ok(b), (s, buf, false)));
                        }
                        buf.extend_from_slice(&b);
                        if buf.len() >= STREAM_CHUNK {
                            let out = buf.split().freeze();
                            return Some((Ok(out), (s, buf, false)));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (s, buf, true))),
                    None => {
                        if buf.is_empty() {
                            return None;
                        }
                        let out = buf.split().freeze();
                        return Some((Ok(out), (s, buf, true)));
                    }
                }
            }
        },
    ))
}

/// Streams a file in [`STREAM_CHUNK`]-sized pieces.
pub fn file_stream(path: PathBuf) -> ByteStream {
    Box::pin(futures_util::stream::unfold(
        (None::<tokio::fs::File>, path, false),
        |(file, path, done)| async move {
            if done {
                return None;
            }
            let mut file = match file {
                Some(f) => f,
                None => match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => {
                        return Some((Err(format!("{}: {e}", path.display())), (None, path, true)))
                    }
                },
            };
            let mut buf = BytesMut::with_capacity(STREAM_CHUNK);
            while buf.len() < STREAM_CHUNK {
                match file.read_buf(&mut buf).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        return Some((Err(format!("{}: {e}", path.display())), (None, path, true)))
                    }
                }
            }
            if buf.is_empty() {
                None
            } else {
                Some((Ok(buf.freeze()), (Some(file), path, false)))
            }
        },
    ))
}

/// An image inside an archive: its containerd name(s) and ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveImage {
    pub names: Vec<String>,
    pub id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciDescriptor {
    digest: String,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

/// What an archive holds, read before it is streamed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchiveToc {
    pub images: Vec<ArchiveImage>,
    /// Every blob digest the archive names (OCI `blobs/sha256/...`, Podman's `<hex>.tar`,
    /// configs, and the layers' diff IDs from the configs of a Docker archive).
    pub digests: Vec<String>,
    /// Whether layers are named by their digest (OCI layouts, Podman archives), so a node
    /// that holds one can be spared it.
    pub names_layers: bool,
    /// Layer path -> diff ID for `docker save` archives that name layers by v1 IDs (Docker
    /// before 25): `manifest.json`'s layers by position against the config's `diff_ids`.
    pub layer_digests: HashMap<String, String>,
}

/// Reads an archive's table of contents (`manifest.json` of `docker save`/`podman save`, or an
/// OCI layout's `index.json`, and the blob digests it names) by walking the tar headers and
/// seeking over the contents.
pub fn archive_toc(path: &Path) -> Result<ArchiveToc, CliError> {
    let fail = |why: String| {
        CliError::failure(format!(
            "archive {}: {why}; expected a `docker save`/`podman save` tar or an OCI layout tar",
            path.display()
        ))
    };
    let mut f = std::fs::File::open(path)
        .map_err(|e| CliError::failure(format!("cannot open archive {}: {e}", path.display())))?;
    let mut json: HashMap<String, Vec<u8>> = HashMap::new();
    let mut digests = BTreeSet::new();
    let mut names_layers = false;
    let end = walk_tar(
        &mut f,
        |name, size| {
            if let Some(d) = named_digest(name) {
                digests.insert(d);
                names_layers |= !name.ends_with(".json");
            }
            name.ends_with(".json") && size <= 4 * 1024 * 1024
        },
        |name, data| {
            json.insert(name.to_string(), data);
        },
    )
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            truncated(path, &e.to_string())
        } else {
            fail(e.to_string())
        }
    })?;
    let images = toc_images(&json).map_err(|e| match end {
        // Cut off between two entries, before the manifest (written last).
        TarEnd::Boundary => truncated(
            path,
            &format!("it ends without the tar end marker, and {e}"),
        ),
        _ => fail(e),
    })?;
    for data in json.values() {
        digests.extend(diff_ids(data));
    }
    Ok(ArchiveToc {
        images,
        digests: digests.into_iter().collect(),
        names_layers,
        layer_digests: layer_digests(&json),
    })
}

fn truncated(path: &Path, why: &str) -> CliError {
    CliError::failure(format!(
        "archive {} is truncated: {why}. It was cut off (an interrupted `docker save` or \
         copy?); save it again",
        path.display()
    ))
}

/// `blobs/sha256/<hex>`, `<hex>.tar`, `<hex>.json` -> `sha256:<hex>`.
pub fn named_digest(name: &str) -> Option<String> {
    let base = name.strip_prefix("blobs/sha256/").or_else(|| {
        let b = name.rsplit('/').next()?;
        b.strip_suffix(".tar").or_else(|| b.strip_suffix(".json"))
    })?;
    (base.len() == 64 && base.bytes().all(|c| c.is_ascii_hexdigit()))
        .then(|| format!("sha256:{base}"))
}

/// The `rootfs.diff_ids` of an image config (nothing for other JSON).
fn diff_ids(config: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    serde_json::from_slice::<Config>(config)
        .map(|c| c.rootfs.diff_ids)
        .unwrap_or_default()
}

/// `manifest.json`'s layer paths mapped by position to their config's diff IDs (where the
/// counts agree).
fn layer_digests(json: &HashMap<String, Vec<u8>>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(entries) = json
        .get("manifest.json")
        .and_then(|m| serde_json::from_slice::<Vec<DockerManifestEntry>>(m).ok())
    else {
        return out;
    };
    for e in entries {
        let Some(config) = json.get(e.config.trim_start_matches("./")) else {
            continue;
        };
        let ids = diff_ids(config);
        if ids.len() != e.layers.len() {
            continue;
        }
        for (path, id) in e.layers.iter().zip(ids) {
            out.insert(path.trim_start_matches("./").to_string(), id);
        }
    }
    out
}

fn toc_images(json: &HashMap<String, Vec<u8>>) -> Result<Vec<ArchiveImage>, String> {
    if let Some(m) = json.get("manifest.json") {
        let entries: Vec<DockerManifestEntry> =
            serde_json::from_slice(m).map_err(|e| format!("bad manifest.json: {e}"))?;
        return Ok(entries
            .into_iter()
            .map(|e| ArchiveImage {
                names: e
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| names::normalize_full(t))
                    .collect(),
                id: config_id(&e.config),
            })
            .collect());
    }
    if let Some(i) = json.get("index.json") {
        let idx: OciIndex =
            serde_json::from_slice(i).map_err(|e| format!("bad index.json: {e}"))?;
        return Ok(idx
            .manifests
            .into_iter()
            .map(|d| ArchiveImage {
                names: d
                    .annotations
                    .get("io.containerd.image.name")
                    .or_else(|| d.annotations.get("org.opencontainers.image.ref.name"))
                    .filter(|n| n.contains('/') || n.contains(':'))
                    .map(|n| vec![names::normalize_full(n)])
                    .unwrap_or_default(),
                id: d.digest,
            })
            .collect());
    }
    Err("no manifest.json or index.json in it".into())
}

/// `blobs/sha256/<hex>` or `<hex>.json` -> `sha256:<hex>`.
fn config_id(config: &str) -> String {
    let base = config.rsplit('/').next().unwrap_or(config);
    let hex = base.strip_suffix(".json").unwrap_or(base);
    format!("sha256:{hex}")
}

/// How a tar walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TarEnd {
    /// At the end marker (zero blocks).
    Marker,
    /// At the end of the file between two entries, without the marker (cut off, or a writer
    /// that omits it).
    Boundary,
    /// Before one whole header: not a tar archive at all.
    Nothing,
}

/// Walks a tar's headers; for each regular file `want(name, size)` accepts, reads its data
/// and passes it to `got`. Other contents are skipped with a seek. A file that ends inside an
/// entry is an `UnexpectedEof` error saying where: the archive is truncated.
fn walk_tar<R: Read + Seek>(
    r: &mut R,
    mut want: impl FnMut(&str, u64) -> bool,
    mut got: impl FnMut(&str, Vec<u8>),
) -> std::io::Result<TarEnd> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let len = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(0))?;
    let truncated = |name: &str, at: u64, need: u64| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "it ends inside entry `{name}` ({len} bytes; that entry needs {need} bytes from \
                 byte {at})"
            ),
        )
    };
    let mut header = [0u8; 512];
    let mut long_name: Option<String> = None;
    let mut pos = 0u64;
    let mut last = String::new();
    loop {
        if pos == len {
            return Ok(if pos == 0 {
                TarEnd::Nothing
            } else {
                TarEnd::Boundary
            });
        }
        if pos + 512 > len {
            if pos == 0 {
                return Ok(TarEnd::Nothing);
            }
            return Err(truncated(&format!("after {last}"), pos, 512));
        }
        r.read_exact(&mut header)?;
        pos += 512;
        if header.iter().all(|&b| b == 0) {
            return Ok(TarEnd::Marker);
        }
        let size = tar_size(&header[124..136]).ok_or_else(|| bad("not a tar file"))?;
        let kind = header[156];
        let mut name = match long_name.take() {
            Some(n) => n,
            None => header_name(&header),
        };
        if let Some(stripped) = name.strip_prefix("./") {
            name = stripped.to_string();
        }
        let padded = size.div_ceil(512) * 512;
        // Readers accept a last entry without its padding; its data must be whole.
        if pos + size > len {
            return Err(truncated(&name, pos, size));
        }
        if kind == b'L' {
            let mut data = vec![0u8; size as usize];
            r.read_exact(&mut data)?;
            long_name = Some(cstr(&data));
        } else if (kind == b'0' || kind == 0) && want(&name, size) {
            let mut data = vec![0u8; size as usize];
            r.read_exact(&mut data)?;
            got(&name, data);
        }
        pos = (pos + padded).min(len);
        r.seek(SeekFrom::Start(pos))?;
        last = name;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_entry(out: &mut Vec<u8>, name: &str, data: &[u8]) {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        let size = format!("{:011o}", data.len());
        h[124..135].copy_from_slice(size.as_bytes());
        h[156] = b'0';
        h[257..262].copy_from_slice(b"ustar");
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    #[test]
    fn reads_docker_save_manifest() {
        let id = "ab".repeat(32);
        let mut t = Vec::new();
        tar_entry(
            &mut t,
            &format!("{}/layer.tar", "c".repeat(64)),
            &[7u8; 3000],
        );
        tar_entry(&mut t, &format!("{id}.json"), b"{}");
        let m = format!(
            r#"[{{"Config":"{id}.json","RepoTags":["localhost/app:1","app:2"],"Layers":["x/layer.tar"]}}]"#
        );
        tar_entry(&mut t, "manifest.json", m.as_bytes());
        t.extend_from_slice(&[0u8; 1024]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar");
        std::fs::write(&p, &t).unwrap();
        let imgs = archive_toc(&p).unwrap().images;
        assert_eq!(
            imgs,
            vec![ArchiveImage {
                names: vec!["localhost/app:1".into(), "docker.io/library/app:2".into()],
                id: format!("sha256:{id}"),
            }]
        );
        // A v1-style layer name says nothing; the config's name is its digest.
        let toc = archive_toc(&p).unwrap();
        assert!(!toc.names_layers);
        assert_eq!(toc.digests, vec![format!("sha256:{id}")]);
        assert_eq!(
            named_digest(&format!("blobs/sha256/{id}")),
            Some(format!("sha256:{id}"))
        );
        assert_eq!(
            named_digest(&format!("{id}.tar")),
            Some(format!("sha256:{id}"))
        );
        assert_eq!(named_digest("x/layer.tar"), None);
    }

    #[test]
    fn reads_oci_index_and_rejects_other_files() {
        let mut t = Vec::new();
        let idx = r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:0123","annotations":{"io.containerd.image.name":"localhost:5000/app:v1","org.opencontainers.image.ref.name":"v1"}}]}"#;
        tar_entry(&mut t, "./index.json", idx.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.tar");
        std::fs::write(&p, &t).unwrap();
        let imgs = archive_toc(&p).unwrap().images;
        assert_eq!(imgs[0].names, vec!["localhost:5000/app:v1".to_string()]);
        assert_eq!(imgs[0].id, "sha256:0123");

        let q = dir.path().join("not.tar");
        std::fs::write(&q, b"hello").unwrap();
        let e = archive_toc(&q).unwrap_err();
        assert!(e.message.contains("no manifest.json"), "{}", e.message);
        let e = archive_toc(&dir.path().join("missing.tar")).unwrap_err();
        assert!(e.message.contains("cannot open archive"), "{}", e.message);
    }

    #[test]
    fn platform_query_is_url_encoded_json() {
        assert_eq!(
            platform_query("linux/arm64/v8").unwrap(),
            "%7B%22architecture%22%3A%22arm64%22%2C%22os%22%3A%22linux%22%2C%22variant%22%3A%22v8%22%7D"
        );
        assert!(platform_query("linux").is_none());
    }

    #[tokio::test]
    async fn coalesces_small_chunks_and_streams_files() {
        let small = futures_util::stream::iter(
            (0..100).map(|_| Ok::<_, String>(Bytes::from(vec![1u8; 10 * 1024]))),
        );
        let sizes: Vec<usize> = coalesce(small).map(|c| c.unwrap().len()).collect().await;
        assert_eq!(sizes.iter().sum::<usize>(), 100 * 10 * 1024);
        assert!(sizes[..sizes.len() - 1].iter().all(|&s| s >= STREAM_CHUNK));

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![9u8; STREAM_CHUNK * 2 + 5]).unwrap();
        let sizes: Vec<usize> = file_stream(p).map(|c| c.unwrap().len()).collect().await;
        assert_eq!(sizes, vec![STREAM_CHUNK, STREAM_CHUNK, 5]);
        let e: Vec<_> = file_stream(dir.path().join("nope")).collect().await;
        assert!(e[0].as_ref().unwrap_err().contains("nope"));
    }
}

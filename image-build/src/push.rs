//! `--push`: after a successful build, the image goes to its registry through the engine API
//! (the engine does the registry protocol, so Docker's and Podman's own registry settings,
//! such as plain-HTTP registries, apply), with credentials read the way the docker and podman
//! CLIs read them. The digest the registry stored is recorded, so a deploy can pin exactly what
//! was built.
//!
//! Credentials are never printed: they go into the request header only, and no message or
//! `Debug` output of this module contains them.

use crate::build::{BuildResult, Status};
use crate::progress::Slot;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::PushImageOptions;
use bollard::Docker;
use e2e_engine::error_text;
use e2e_engine::Flavor;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Docker Hub's key in Docker's config (what `docker login` writes).
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Push settings shared by every image of one run.
#[derive(Clone)]
pub struct PushEnv {
    pub client: Docker,
    pub flavor: Flavor,
    /// Per push; `None` = no limit.
    pub timeout: Option<Duration>,
    /// Where credentials are looked up, most specific first.
    pub auth_files: Vec<PathBuf>,
}

// Hand-written so that nothing credential-like can ever reach a log through `{:?}`.
impl std::fmt::Debug for PushEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushEnv")
            .field("flavor", &self.flavor)
            .field("timeout", &self.timeout)
            .field("auth_files", &self.auth_files)
            .finish()
    }
}

impl PushEnv {
    pub fn new(client: Docker, flavor: Flavor, timeout: Option<Duration>) -> Self {
        PushEnv {
            client,
            flavor,
            timeout,
            auth_files: auth_files(flavor, &|k| std::env::var(k).ok()),
        }
    }
}

/// The registry host of a reference as engines see it: the first component when it looks
/// like a host (`.`, `:` or `localhost`), else Docker Hub.
pub fn registry_of(reference: &str) -> String {
    match e2e_core::Reference::parse(reference) {
        Ok(r) => r.registry.unwrap_or_else(|| "docker.io".to_string()),
        Err(_) => "docker.io".to_string(),
    }
}

/// Pushes the image of a successful build and records the digest (or the failure) in `r`.
/// Builds that did not succeed are left as they are.
pub async fn push_built(env: &PushEnv, r: &mut BuildResult, slot: &Slot) {
    if !r.ok() {
        return;
    }
    let start = Instant::now();
    let registry = registry_of(&r.reference);
    slot.event(&format!("pushing to {registry}"));
    let outcome = match env.timeout {
        Some(t) => match tokio::time::timeout(t, push(env, &r.reference, slot)).await {
            Ok(o) => o,
            Err(_) => Err(format!(
                "registry {registry} unreachable: no answer within {} (--push-timeout); the push request was closed",
                humantime::format_duration(t)
            )),
        },
        None => push(env, &r.reference, slot).await,
    };
    let secs = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    r.push_seconds = Some(secs);
    r.seconds = ((r.seconds + secs) * 1000.0).round() / 1000.0;
    match outcome {
        Ok(digest) => r.digest = Some(digest),
        Err(message) => {
            r.status = Status::Failed;
            r.step = Some(format!("push to {registry}"));
            r.error = Some(message);
        }
    }
}

/// `repo@sha256:…` for a reference and a digest (the tag dropped, as a digest pins it).
pub fn digest_reference(reference: &str, digest: &str) -> String {
    match e2e_core::Reference::parse(reference) {
        Ok(r) => format!("{}@{digest}", r.name()),
        Err(_) => format!("{}@{digest}", split_tag(reference).0),
    }
}

/// `name` and `tag` of a reference (`latest` when it has none, as engines assume).
fn split_tag(reference: &str) -> (&str, &str) {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rfind(':') {
        Some(i) if !reference[i + 1..].contains('/') => (&reference[..i], &reference[i + 1..]),
        _ => (reference, "latest"),
    }
}

/// One push: the engine's progress on the slot, the registry's digest back, or a one-line
/// reason naming the registry.
async fn push(env: &PushEnv, reference: &str, slot: &Slot) -> Result<String, String> {
    let registry = registry_of(reference);
    let repo_path = e2e_core::Reference::parse(reference)
        .map(|r| r.repository)
        .unwrap_or_default();
    let creds = credentials(&env.auth_files, &registry, &repo_path, &run_helper)
        .map_err(|e| format!("credentials for registry {registry}: {e}"))?;
    let (name, tag) = split_tag(reference);
    let options = PushImageOptions {
        tag: Some(tag.to_string()),
        ..Default::default()
    };
    let mut stream = env.client.push_image(name, Some(options), creds);
    let mut digest = None;
    let (mut pushed, mut existed) = (0usize, 0usize);
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(explain(&registry, &error, env.flavor))
            }
            Err(e) => return Err(explain(&registry, &error_text(&e), env.flavor)),
        };
        let Some(status) = info.status.as_deref() else {
            continue;
        };
        if let Some(d) = parse_digest(status) {
            digest = Some(d);
        }
        match status {
            "Pushed" => pushed += 1,
            "Layer already exists" => existed += 1,
            _ => {}
        }
        let progress = info
            .progress_detail
            .as_ref()
            .and_then(|p| Some((p.current?, p.total?)));
        match progress {
            // Byte counts change many times a second: the live line only.
            Some((cur, total)) if total > 0 => slot.status(&format!(
                "{status} {} / {}",
                e2e_core::size::human_bytes(cur.max(0) as u64),
                e2e_core::size::human_bytes(total as u64)
            )),
            _ => slot.log(&format!("push: {status}")),
        }
    }
    let digest = match digest {
        Some(d) => d,
        // Not every engine version reports it in the stream: the engine knows it afterwards.
        None => repo_digest(&env.client, reference, name)
            .await
            .ok_or_else(|| {
                format!("registry {registry}: the push ended without a digest from the engine")
            })?,
    };
    slot.event(&format!(
        "pushed {digest} ({pushed} layer(s) sent, {existed} already there)"
    ));
    Ok(digest)
}

/// The digest in the engine's last push message: `TAG: digest: sha256:… size: N`.
pub fn parse_digest(status: &str) -> Option<String> {
    let at = status.find("digest: sha256:")?;
    let hex: String = status[at + "digest: sha256:".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (hex.len() == 64).then(|| format!("sha256:{hex}"))
}

async fn repo_digest(client: &Docker, reference: &str, name: &str) -> Option<String> {
    let img = client.inspect_image(reference).await.ok()?;
    img.repo_digests?
        .into_iter()
        .find_map(|d| d.strip_prefix(&format!("{name}@")).map(str::to_string))
}

/// Sorts a push failure into what people act on: authentication, permission, or a registry
/// that cannot be reached; one line, naming the registry.
pub fn explain(registry: &str, message: &str, flavor: Flavor) -> String {
    let msg = message.trim().replace('\n', " ");
    let low = msg.to_ascii_lowercase();
    let login = match flavor {
        Flavor::Docker => format!("docker login {registry}"),
        Flavor::Podman => format!("podman login {registry}"),
    };
    if low.contains("http response to https client") {
        let fix = match flavor {
            Flavor::Docker => format!(
                "add \"{registry}\" to \"insecure-registries\" in /etc/docker/daemon.json and reload dockerd"
            ),
            Flavor::Podman => format!(
                "add [[registry]] location=\"{registry}\" insecure=true to registries.conf and restart the Podman service"
            ),
        };
        format!("registry {registry} unreachable over HTTPS (it speaks plain HTTP; {fix}): {msg}")
    } else if low.contains("unauthorized")
        || low.contains("authentication required")
        || low.contains("no basic auth credentials")
        || low.contains(" 401")
    {
        format!(
            "registry {registry} refused the credentials (authentication; run `{login}`): {msg}"
        )
    } else if low.contains("denied") || low.contains("forbidden") || low.contains(" 403") {
        format!("registry {registry} denied the push (no permission for this repository): {msg}")
    } else if [
        "connection refused",
        "no such host",
        "dial tcp",
        "i/o timeout",
        "network is unreachable",
        "connection reset",
        "timeout",
        "x509",
        "tls:",
        "eof",
    ]
    .iter()
    .any(|k| low.contains(k))
    {
        format!("registry {registry} unreachable: {msg}")
    } else {
        format!("push to registry {registry} failed: {msg}")
    }
}

// ---------------------------------------------------------------------------- credentials

/// The files credentials are read from, in the order the engine's own CLI reads them.
/// Docker: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Podman: its auth file
/// (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `~/.config/containers/auth.json`), then Docker's.
pub fn auth_files(flavor: Flavor, var: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let var = |k: &str| var(k).filter(|v| !v.is_empty());
    let home = var("HOME").map(PathBuf::from);
    let mut files = Vec::new();
    if flavor == Flavor::Podman {
        if let Some(f) = var("REGISTRY_AUTH_FILE") {
            files.push(PathBuf::from(f));
        }
        if let Some(x) = var("XDG_RUNTIME_DIR") {
            files.push(PathBuf::from(x).join("containers/auth.json"));
        }
        if let Some(h) = &home {
            files.push(h.join(".config/containers/auth.json"));
        }
    }
    match var("DOCKER_CONFIG") {
        Some(d) => files.push(PathBuf::from(d).join("config.json")),
        None => {
            if let Some(h) = &home {
                files.push(h.join(".docker/config.json"));
            }
        }
    }
    files
}

/// A credential helper's answer, or why there is none (`Ok(None)`: it has nothing for the
/// server).
pub type HelperFn = dyn Fn(&str, &str) -> Result<Option<(String, String)>, String>;

/// Credentials for `registry` (and `repo`, for auth files with per-repository entries) from the
/// first file that has any: a credential helper for the registry (`credHelpers`), the default
/// store (`credsStore`), or an `auths` entry. `None`: push anonymously.
pub fn credentials(
    files: &[PathBuf],
    registry: &str,
    repo: &str,
    helper: &HelperFn,
) -> Result<Option<DockerCredentials>, String> {
    let hub = is_docker_hub(registry);
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let cfg: AuthFile = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not valid JSON ({e})", file.display()))?;
        let server = if hub { DOCKER_HUB_KEY } else { registry };
        let helper_name = cfg
            .cred_helpers
            .iter()
            .find(|(k, _)| same_registry(k, registry))
            .map(|(_, v)| v.clone())
            .or(cfg.creds_store.clone())
            .filter(|h| !h.is_empty());
        if let Some(h) = helper_name {
            match helper(&h, server).map_err(|e| {
                format!(
                    "credential helper docker-credential-{h} (named in {}): {e}",
                    file.display()
                )
            })? {
                Some((user, secret)) => return Ok(Some(from_helper(user, secret, server))),
                None => {
                    if cfg
                        .cred_helpers
                        .iter()
                        .any(|(k, _)| same_registry(k, registry))
                    {
                        return Ok(None);
                    }
                }
            }
        }
        // The most specific entry wins: `host/ns/repo`, `host/ns`, then `host`.
        let mut best: Option<(usize, &AuthEntry)> = None;
        for (key, entry) in &cfg.auths {
            if let Some(score) = key_matches(key, registry, repo) {
                if best.is_none_or(|(s, _)| score > s) {
                    best = Some((score, entry));
                }
            }
        }
        if let Some((_, entry)) = best {
            if let Some(c) = entry.credentials(server)? {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

fn from_helper(user: String, secret: String, server: &str) -> DockerCredentials {
    if user == "<token>" {
        DockerCredentials {
            identitytoken: Some(secret),
            serveraddress: Some(server.to_string()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(user),
            password: Some(secret),
            serveraddress: Some(server.to_string()),
            ..Default::default()
        }
    }
}

/// Runs `docker-credential-NAME get` with the server on stdin (the helper protocol).
fn run_helper(name: &str, server: &str) -> Result<Option<(String, String)>, String> {
    let program = format!("docker-credential-{name}");
    let out = duct::cmd(&program, ["get"])
        .stdin_bytes(server.as_bytes().to_vec())
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helpers' wording for "nothing stored for this server".
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "{program} get failed ({}): {}",
            out.status,
            stdout.trim().lines().next().unwrap_or("")
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let a: Answer = serde_json::from_str(&stdout)
        .map_err(|_| format!("{program} get did not answer with its JSON"))?;
    Ok((!a.secret.is_empty()).then_some((a.username, a.secret)))
}

#[derive(Default, serde::Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl AuthEntry {
    fn credentials(&self, server: &str) -> Result<Option<DockerCredentials>, String> {
        let some = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
        let (mut user, mut pass) = (some(&self.username), some(&self.password));
        if let Some(a) = some(&self.auth) {
            let decoded = decode_base64(a.trim())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    format!("the `auth` entry for {server} is not base64 of user:password")
                })?;
            let (u, p) = decoded.split_once(':').ok_or_else(|| {
                format!("the `auth` entry for {server} is not base64 of user:password")
            })?;
            user = Some(u.to_string());
            pass = Some(p.to_string());
        }
        let c = DockerCredentials {
            username: user,
            password: pass,
            identitytoken: some(&self.identitytoken),
            registrytoken: some(&self.registrytoken),
            serveraddress: Some(server.to_string()),
            ..Default::default()
        };
        let any = c.username.is_some() || c.identitytoken.is_some() || c.registrytoken.is_some();
        Ok(any.then_some(c))
    }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// A config key reduced to `host[/path]`: scheme, trailing `/` and a `/v1` or `/v2` suffix
/// dropped (keys are written as URLs by some tools).
fn normalize_key(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    let (host, rest) = k.split_once('/').map_or((k, ""), |(h, r)| (h, r));
    let host = if is_docker_hub(host) {
        "docker.io"
    } else {
        host
    };
    if rest.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{rest}")
    }
}

fn same_registry(key: &str, registry: &str) -> bool {
    let reg = if is_docker_hub(registry) {
        "docker.io"
    } else {
        registry
    };
    normalize_key(key) == reg
}

/// How well a key matches: `Some(0)` for the registry, more for each repository component it
/// also names; `None` when it is another registry or repository.
fn key_matches(key: &str, registry: &str, repo: &str) -> Option<usize> {
    let reg = if is_docker_hub(registry) {
        "docker.io"
    } else {
        registry
    };
    let k = normalize_key(key);
    if k == reg {
        return Some(0);
    }
    let path = k.strip_prefix(reg)?.strip_prefix('/')?;
    (repo == path || repo.starts_with(&format!("{path}/"))).then(|| path.split('/').count())
}

/// Standard base64 (with or without padding), as the `auth` field holds it.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().take_while(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn no_helper(_: &str, _: &str) -> Result<Option<(String, String)>, String> {
        panic!("no helper expected")
    }

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        p
    }

    #[test]
    fn digests_are_read_from_docker_and_podman_messages() {
        let hex = "ad8e4becdbec80aaec31fa50ad26826ab9ef8428f1be9c66d9244851201246f2";
        assert_eq!(
            parse_digest(&format!("t1: digest: sha256:{hex} size: 529")).as_deref(),
            Some(format!("sha256:{hex}").as_str())
        );
        assert_eq!(parse_digest("Pushed"), None);
        assert_eq!(parse_digest("x: digest: sha256:abc size: 1"), None);
    }

    #[test]
    fn references_split_and_pin() {
        assert_eq!(
            split_tag("localhost:5000/team/app:v1"),
            ("localhost:5000/team/app", "v1")
        );
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", "latest")
        );
        assert_eq!(
            digest_reference("localhost:5000/team/app:v1", "sha256:ab"),
            "localhost:5000/team/app@sha256:ab"
        );
        assert_eq!(registry_of("localhost:5000/team/app:v1"), "localhost:5000");
        assert_eq!(registry_of("app:1"), "docker.io");
    }

    #[test]
    fn auth_entries_decode_and_the_most_specific_wins() {
        let dir = tempfile::tempdir().unwrap();
        // base64("alice:s3cret") and base64("bob:other")
        let f = file(
            &dir,
            "config.json",
            r#"{"auths": {
                "https://reg.example:5000/v2/": {"auth": "YWxpY2U6czNjcmV0"},
                "reg.example:5000/team": {"auth": "Ym9iOm90aGVy"},
                "https://index.docker.io/v1/": {"username": "hub", "password": "pw"}
            }}"#,
        );
        let c = credentials(
            std::slice::from_ref(&f),
            "reg.example:5000",
            "app",
            &no_helper,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("s3cret"));
        let c = credentials(
            std::slice::from_ref(&f),
            "reg.example:5000",
            "team/app",
            &no_helper,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.username.as_deref(), Some("bob"));
        let c = credentials(
            std::slice::from_ref(&f),
            "docker.io",
            "library/x",
            &no_helper,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.username.as_deref(), Some("hub"));
        assert_eq!(c.serveraddress.as_deref(), Some(DOCKER_HUB_KEY));
        assert!(credentials(&[f], "other:5000", "app", &no_helper)
            .unwrap()
            .is_none());
    }

    #[test]
    fn helpers_come_first_and_tokens_become_identity_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(
            &dir,
            "config.json",
            r#"{"auths": {"reg.example": {"auth": "YWxpY2U6czNjcmV0"}},
                "credHelpers": {"reg.example": "pass"}}"#,
        );
        let helper = |name: &str, server: &str| {
            assert_eq!((name, server), ("pass", "reg.example"));
            Ok(Some(("<token>".to_string(), "tok".to_string())))
        };
        let c = credentials(std::slice::from_ref(&f), "reg.example", "app", &helper)
            .unwrap()
            .unwrap();
        assert_eq!(c.identitytoken.as_deref(), Some("tok"));
        assert!(c.username.is_none());
        let broken = |_: &str, _: &str| Err("not installed".to_string());
        let e = credentials(&[f], "reg.example", "app", &broken).unwrap_err();
        assert!(e.contains("docker-credential-pass"), "{e}");
        assert!(!e.contains("s3cret") && !e.contains("YWxp"), "{e}");
    }

    #[test]
    fn podman_reads_its_auth_file_before_dockers() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_string()),
            "DOCKER_CONFIG" => Some("/etc/dc".to_string()),
            _ => None,
        };
        assert_eq!(
            auth_files(Flavor::Podman, &env),
            vec![
                PathBuf::from("/run/user/1000/containers/auth.json"),
                PathBuf::from("/home/u/.config/containers/auth.json"),
                PathBuf::from("/etc/dc/config.json"),
            ]
        );
        assert_eq!(
            auth_files(Flavor::Docker, &|k| (k == "HOME").then(|| "/h".to_string())),
            vec![PathBuf::from("/h/.docker/config.json")]
        );
    }

    #[test]
    fn a_bad_auth_entry_is_named_without_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(
            &dir,
            "a.json",
            r#"{"auths": {"r.io": {"auth": "!!notb64"}}}"#,
        );
        let e = credentials(&[f], "r.io", "x", &no_helper).unwrap_err();
        assert!(e.contains("r.io") && !e.contains("notb64"), "{e}");
    }

    #[test]
    fn failures_say_which_kind() {
        let d = Flavor::Docker;
        let e = explain(
            "localhost:5999",
            "Get \"http://localhost:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused",
            d,
        );
        assert!(e.starts_with("registry localhost:5999 unreachable"), "{e}");
        let e = explain("r.io", "unauthorized: authentication required", d);
        assert!(
            e.contains("authentication") && e.contains("docker login r.io"),
            "{e}"
        );
        let e = explain(
            "r.io",
            "denied: requested access to the resource is denied",
            Flavor::Podman,
        );
        assert!(e.contains("denied the push"), "{e}");
        let e = explain(
            "localhost:5000",
            "pinging container registry localhost:5000: Get \"https://localhost:5000/v2/\": http: server gave HTTP response to HTTPS client",
            Flavor::Podman,
        );
        assert!(
            e.contains("plain HTTP") && e.contains("insecure=true"),
            "{e}"
        );
    }

    #[test]
    fn base64_decodes() {
        assert_eq!(decode_base64("YWxpY2U6czNjcmV0").unwrap(), b"alice:s3cret");
        assert_eq!(decode_base64("YQ==").unwrap(), b"a");
        assert!(decode_base64("a b").is_none());
    }
}

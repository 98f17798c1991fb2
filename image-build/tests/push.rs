//! `image-build --push` against the testbed's real registry (`E2E_REGISTRY`), through the real
//! dockerd and Podman API: the digest image-build reports is the one the registry serves, a
//! registry that is down or silent fails the push with one line naming it, and a registry
//! with authentication gets the credentials of Docker's config without them being printed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};

mod common;
use common::image_build;

/// The manifest types a registry may hold for what Docker 20.10 and Podman push.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.index.v1+json";

/// A small image context with content of its own, so every test pushes a new layer.
fn context(dir: &Path) {
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY data /data\n").unwrap();
    let mut data = vec![0u8; 64 * 1024];
    getrandom_fill(&mut data);
    std::fs::write(dir.join("data"), data).unwrap();
}

fn getrandom_fill(buf: &mut [u8]) {
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .unwrap();
}

/// One plain HTTP/1.1 request to `addr` (`host:port`); returns the status and the headers
/// (lower-cased names).
fn http(addr: &str, method: &str, path: &str, accept: &str) -> (u16, Vec<(String, String)>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

/// The digest the registry serves for `repo:tag`.
fn registry_digest(registry: &str, repo: &str, tag: &str) -> Option<String> {
    let (status, headers) = http(
        registry,
        "HEAD",
        &format!("/v2/{repo}/manifests/{tag}"),
        MANIFEST_TYPES,
    );
    assert_eq!(status, 200, "HEAD /v2/{repo}/manifests/{tag} on {registry}");
    headers
        .into_iter()
        .find(|(k, _)| k == "docker-content-digest")
        .map(|(_, v)| v)
}

fn delete_manifest(registry: &str, repo: &str, digest: &str) {
    let _ = http(
        registry,
        "DELETE",
        &format!("/v2/{repo}/manifests/{digest}"),
        "*/*",
    );
}

fn rmi(host: &str, reference: &str) {
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", reference])
        .env("DOCKER_HOST", host)
        .output();
}

/// Builds and pushes `repo:tag` under `registry` through the engine at `host`; checks the
/// report and the registry agree on the digest, and that --print-digest prints it.
fn push_and_compare(host: &str, registry: &str) {
    let dir = tempfile::tempdir().unwrap();
    context(dir.path());
    let repo = format!("e2e-test/{}", e2e_testbed::unique_name("push"));
    let reference = format!("{registry}/{repo}:t1");
    let out = image_build(host)
        .args(["--push", "--json", "-q", "--consumer", "push-test", "-t"])
        .arg(&reference)
        .arg("-c")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "push failed: {stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = doc
        .get("results")
        .and_then(|r| r.as_array())
        .or_else(|| doc.as_array())
        .cloned()
        .unwrap();
    let item = &items[0];
    let reported = item["digest"]
        .as_str()
        .expect("digest in --json")
        .to_string();
    assert!(reported.starts_with("sha256:"), "{item}");
    let served = registry_digest(registry, &repo, "t1");
    assert_eq!(
        served.as_deref(),
        Some(reported.as_str()),
        "registry and report disagree"
    );

    // Again with --print-digest: the image exists (skip it), the push is a no-op upload, and
    // stdout pins the same digest.
    let out = image_build(host)
        .args(["--push", "--print-digest", "--skip-existing", "-q", "-t"])
        .arg(&reference)
        .arg("-c")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed.trim(),
        format!("{registry}/{repo}@{reported}"),
        "--print-digest"
    );
    delete_manifest(registry, &repo, &reported);
    rmi(host, &reference);
}

#[test]
fn docker_push_reports_the_digest_the_registry_serves() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_REGISTRY"]) else {
        return;
    };
    push_and_compare(tb.get("DOCKER_HOST"), tb.get("E2E_REGISTRY"));
}

#[test]
fn podman_push_reports_the_digest_the_registry_serves() {
    let Some(tb) = e2e_testbed::require(&["E2E_PODMAN_HOST", "E2E_REGISTRY"]) else {
        return;
    };
    push_and_compare(tb.get("E2E_PODMAN_HOST"), tb.get("E2E_REGISTRY"));
}

/// A port nobody listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a push of a fresh image to `reference`; returns (exit code, stderr).
fn push_expecting_failure(host: &str, reference: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    context(dir.path());
    // An empty Docker config: no credentials of the machine's user take part.
    let cfg = tempfile::tempdir().unwrap();
    let out = image_build(host)
        .env("DOCKER_CONFIG", cfg.path())
        .args(["--push", "-q", "--consumer", "push-test", "-t", reference])
        .args(extra)
        .arg("-c")
        .arg(dir.path())
        .output()
        .unwrap();
    rmi(host, reference);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_registry_that_is_down_fails_the_push_with_one_line_naming_it() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_REGISTRY"]) else {
        return;
    };
    let registry = format!("localhost:{}", free_port());
    let (code, stderr) = push_expecting_failure(
        tb.get("DOCKER_HOST"),
        &format!("{registry}/e2e-test/down:t1"),
        &["--push-timeout", "60s"],
    );
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(&format!("registry {registry} unreachable")))
        .collect();
    assert_eq!(lines.len(), 1, "one line names the registry: {stderr}");
    assert!(lines[0].contains("connection refused"), "{stderr}");
}

#[test]
fn a_registry_that_never_answers_fails_the_push_at_the_timeout() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_REGISTRY"]) else {
        return;
    };
    // Accepts connections (the kernel completes them) but never answers a request.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let registry = format!("localhost:{}", silent.local_addr().unwrap().port());
    let (code, stderr) = push_expecting_failure(
        tb.get("DOCKER_HOST"),
        &format!("{registry}/e2e-test/silent:t1"),
        &["--push-timeout", "3s"],
    );
    drop(silent);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "registry {registry} unreachable: no answer within 3s"
        )),
        "{stderr}"
    );
}

/// A second registry from the same package, with htpasswd authentication (user `e2e`,
/// password `e2e-pw`), on its own port; stopped when dropped.
struct AuthRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl AuthRegistry {
    fn start() -> AuthRegistry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // bcrypt (cost 4) of `e2e-pw`.
        std::fs::write(
            dir.path().join("htpasswd"),
            "e2e:$2b$04$ErJrRe.AHb0IfIemvbIC4OOVMRM36htyAUcuUM/nkB0UXL1krG5RS\n",
        )
        .unwrap();
        let cfg = format!(
            "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {d}/data}}}}\n\
             http: {{addr: 127.0.0.1:{port}}}\nauth: {{htpasswd: {{realm: e2e, path: {d}/htpasswd}}}}\n",
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian's docker-registry package) runs");
        let addr = format!("127.0.0.1:{port}");
        let mut up = false;
        for _ in 0..100 {
            if TcpStream::connect(&addr).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(up, "the auth registry did not listen on {addr}");
        AuthRegistry {
            child,
            addr: format!("localhost:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn credentials_come_from_docker_config_and_are_never_printed() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_REGISTRY"]) else {
        return;
    };
    let host = tb.get("DOCKER_HOST");
    let reg = AuthRegistry::start();
    let reference = format!("{}/e2e-test/auth:t1", reg.addr);

    // No credentials: the registry says unauthorized, and the message says so.
    let (code, stderr) = push_expecting_failure(host, &reference, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("registry {} refused the credentials", reg.addr)),
        "{stderr}"
    );

    // Docker's config (DOCKER_CONFIG) with base64("e2e:e2e-pw"): the push goes through.
    let cfg = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "ZTJlOmUyZS1wdw=="}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    context(dir.path());
    let out = image_build(host)
        .env("DOCKER_CONFIG", cfg.path())
        .args(["--push", "--json", "-vv", "--consumer", "push-test", "-t"])
        .arg(&reference)
        .arg("-c")
        .arg(dir.path())
        .output()
        .unwrap();
    rmi(host, &reference);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(all.contains("\"digest\": \"sha256:"), "{all}");
    for secret in ["e2e-pw", "ZTJlOmUyZS1wdw"] {
        assert!(!all.contains(secret), "a credential was printed: {all}");
    }
}

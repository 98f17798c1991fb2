//! Helpers for the integration tests: test images built through the real engines, node
//! inspection with `ctr` through `docker exec` (independent of the code under test), and
//! cleanup that also runs when a test panics.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the docker CLI against `host`; panics with its stderr on failure.
pub fn docker(host: &str, args: &[&str]) -> String {
    let o = docker_raw(host, args);
    assert!(
        o.status.success(),
        "docker -H {host} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn docker_raw(host: &str, args: &[&str]) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker CLI")
}

/// Builds `FROM scratch` + `size` random bytes as `name` in the engine at `host`.
pub fn build_image(host: &str, name: &str, size: usize) {
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("blob"), size);
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY blob /blob\n",
    )
    .unwrap();
    docker(
        host,
        &["build", "-q", "-t", name, dir.path().to_str().unwrap()],
    );
}

/// `size` bytes that do not compress and differ per call (xorshift seeded from the clock).
pub fn write_random(path: &Path, size: usize) {
    use std::io::Write;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        ^ (std::process::id() as u64) << 32
        | 1;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut buf = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = seed.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
}

/// The engine's image ID of `name`.
pub fn image_id(host: &str, name: &str) -> String {
    docker(host, &["image", "inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// `ctr -n k8s.io images ls` in a node: (name, target digest) pairs.
pub fn node_images(host: &str, node: &str) -> Vec<(String, String)> {
    let out = docker(host, &["exec", node, "ctr", "-n", "k8s.io", "images", "ls"]);
    out.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| (f[0].to_string(), f[2].to_string()))
        })
        .collect()
}

pub fn node_names(host: &str, node: &str) -> BTreeSet<String> {
    node_images(host, node)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// The cluster's node container names (by label, as Kind does), sorted.
pub fn cluster_nodes(host: &str, cluster: &str) -> Vec<String> {
    let out = docker(
        host,
        &[
            "ps",
            "--filter",
            &format!("label=io.x-k8s.kind.cluster={cluster}"),
            "--format",
            "{{.Names}}",
        ],
    );
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// Removes what a test put into nodes and engines, when dropped (also on panic).
pub struct Cleanup {
    pub host: String,
    pub nodes: Vec<String>,
    /// Names loaded into the nodes; every other name with the same target (ctr's
    /// `import-...@sha256:` and CRI's `sha256:<id>` names) goes too.
    pub node_names: Vec<String>,
    /// (engine host, image) to `rmi`.
    pub engine_images: Vec<(String, String)>,
    /// Containers to remove.
    pub containers: Vec<(String, String)>,
}

impl Cleanup {
    pub fn new(host: &str, nodes: &[String]) -> Self {
        Self {
            host: host.to_string(),
            nodes: nodes.to_vec(),
            node_names: Vec::new(),
            engine_images: Vec::new(),
            containers: Vec::new(),
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for node in &self.nodes {
            let Ok(imgs) = std::panic::catch_unwind(|| node_images(&self.host, node)) else {
                continue;
            };
            let targets: BTreeSet<&String> = imgs
                .iter()
                .filter(|(n, _)| self.node_names.contains(n))
                .map(|(_, t)| t)
                .collect();
            let doomed: Vec<&str> = imgs
                .iter()
                .filter(|(n, t)| self.node_names.contains(n) || targets.contains(t))
                .map(|(n, _)| n.as_str())
                .collect();
            if !doomed.is_empty() {
                let mut args = vec!["exec", node, "ctr", "-n", "k8s.io", "images", "rm"];
                args.extend(doomed);
                let _ = docker_raw(&self.host, &args);
            }
        }
        for (host, img) in &self.engine_images {
            let _ = docker_raw(host, &["rmi", "-f", img]);
        }
        for (host, c) in &self.containers {
            let _ = docker_raw(host, &["rm", "-f", "-v", c]);
        }
    }
}

/// Lowercase unique name part for images (`kl-<pid>-<n>-<hex>`).
pub fn unique(prefix: &str) -> String {
    e2e_testbed::unique_name(prefix)
}

/// stdout rows `NODE IMAGE RESULT BYTES SECONDS` for `image`.
pub fn rows<'a>(stdout: &'a str, image: &str) -> Vec<Vec<&'a str>> {
    stdout
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() == 5 && f[1] == image)
        .collect()
}

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

/// Builds `FROM scratch` + one `COPY` layer of random bytes per entry of `sizes`.
pub fn build_layers(host: &str, name: &str, sizes: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    let mut dockerfile = String::from("FROM scratch\n");
    for (i, size) in sizes.iter().enumerate() {
        write_random(&dir.path().join(format!("l{i}")), *size);
        dockerfile.push_str(&format!("COPY l{i} /l{i}\n"));
    }
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    docker(
        host,
        &["build", "-q", "-t", name, dir.path().to_str().unwrap()],
    );
}

/// Builds `FROM base` + one `COPY` layer of `size` random bytes as `name`.
pub fn build_on(host: &str, name: &str, base: &str, size: usize) {
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("top"), size);
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY top /top\n"),
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

/// The `ctr images check` line of `name` in a node (status `complete (N/N)` when every blob
/// is there); panics when the node does not list it.
pub fn check_line(host: &str, node: &str, name: &str) -> String {
    let check = docker(
        host,
        &["exec", node, "ctr", "-n", "k8s.io", "images", "check"],
    );
    check
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{node} does not list {name}:\n{check}"))
        .to_string()
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

/// Removes `name` and every other name of the same image from a node (`--sync`: content too).
pub fn remove_from_node(host: &str, node: &str, name: &str) {
    let imgs = node_images(host, node);
    let Some(target) = imgs.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone()) else {
        return;
    };
    let mut args = vec![
        "exec", node, "ctr", "-n", "k8s.io", "images", "rm", "--sync",
    ];
    args.extend(
        imgs.iter()
            .filter(|(_, t)| *t == target)
            .map(|(n, _)| n.as_str()),
    );
    docker(host, &args);
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
    /// Builds `name` from `size` random bytes in this cleanup's engine; at the end it goes from
    /// the engine and from the nodes.
    pub fn build(&mut self, name: &str, size: usize) {
        build_image(&self.host, name, size);
        self.engine_images
            .push((self.host.clone(), name.to_string()));
        self.node_names.push(name.to_string());
    }

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
        // containerd's CRI plugin adds a `sha256:<image ID>` name a moment after an import,
        // so that name is removed by ID too, and the sweep repeats until nothing is left.
        let ids: BTreeSet<String> = self
            .engine_images
            .iter()
            .filter_map(|(host, img)| {
                let o = docker_raw(host, &["image", "inspect", "--format", "{{.Id}}", img]);
                o.status
                    .success()
                    .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
            })
            .collect();
        for node in &self.nodes {
            for round in 0..4 {
                let Ok(imgs) = std::panic::catch_unwind(|| node_images(&self.host, node)) else {
                    break;
                };
                let targets: BTreeSet<&String> = imgs
                    .iter()
                    .filter(|(n, _)| self.node_names.contains(n) || ids.contains(n))
                    .map(|(_, t)| t)
                    .collect();
                let doomed: Vec<&str> = imgs
                    .iter()
                    .filter(|(n, t)| {
                        self.node_names.contains(n) || ids.contains(n) || targets.contains(t)
                    })
                    .map(|(n, _)| n.as_str())
                    .collect();
                if doomed.is_empty() {
                    break;
                }
                let mut args = vec!["exec", node, "ctr", "-n", "k8s.io", "images", "rm"];
                args.extend(doomed);
                let _ = docker_raw(&self.host, &args);
                if round < 3 {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
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

/// Appends one regular file to a tar being built in memory.
pub fn tar_file(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// An OCI layout tar of a two-platform image named `name` whose linux/amd64 manifest and
/// blobs are present while the linux/arm64 manifest is missing: what `docker save` writes with
/// Docker's containerd image store. Returns (tar, index digest).
pub fn oci_partial_multiarch(name: &str) -> (Vec<u8>, String) {
    let mut layer = Vec::new();
    tar_file(
        &mut layer,
        "hello.txt",
        format!("hello from {name}\n").as_bytes(),
    );
    layer.extend_from_slice(&[0u8; 1024]);
    let layer_d = sha(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{layer_d}"]}}}}"#
    );
    let config_d = sha(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_d}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_d}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let manifest_d = sha(manifest.as_bytes());
    let missing_d = sha(format!("arm64 manifest of {name}, not in the archive").as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_d}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}},{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{missing_d}","size":512,"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
        manifest.len()
    );
    let index_d = sha(index.as_bytes());
    let tag = name.rsplit(':').next().unwrap();
    let top = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{index_d}","size":{},"annotations":{{"io.containerd.image.name":"{name}","org.opencontainers.image.ref.name":"{tag}"}}}}]}}"#,
        index.len()
    );
    let mut t = Vec::new();
    tar_file(&mut t, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    tar_file(&mut t, "index.json", top.as_bytes());
    for (d, data) in [
        (&index_d, index.as_bytes()),
        (&manifest_d, manifest.as_bytes()),
        (&config_d, config.as_bytes()),
        (&layer_d, &layer[..]),
    ] {
        tar_file(&mut t, &format!("blobs/sha256/{}", &d[7..]), data);
    }
    t.extend_from_slice(&[0u8; 1024]);
    (t, index_d)
}

/// A throwaway Kind-like cluster in the Docker engine at `host`, made of the fixture's node
/// image (a real containerd per node), for tests that pause, stop or break nodes without
/// disturbing the shared fixture cluster. Removed (unpaused first) when dropped, also on panic.
pub struct Throwaway {
    pub host: String,
    pub cluster: String,
    pub nodes: Vec<String>,
}

impl Throwaway {
    /// `workers` workers besides the control plane, containerd up in each.
    pub fn new(host: &str, fixture_node: &str, prefix: &str, workers: usize) -> Self {
        Self::with_stopped_workers(host, fixture_node, prefix, workers, 0)
    }

    /// As `new`, but the last `stopped` workers run `sleep` instead of containerd: nodes whose
    /// `ctr` cannot reach containerd.
    pub fn with_stopped_workers(
        host: &str,
        fixture_node: &str,
        prefix: &str,
        workers: usize,
        stopped: usize,
    ) -> Self {
        let image = docker(
            host,
            &["inspect", "--format", "{{.Config.Image}}", fixture_node],
        )
        .trim()
        .to_string();
        let caps = docker(
            host,
            &[
                "inspect",
                "--format",
                "{{range .HostConfig.CapAdd}}{{.}} {{end}}",
                fixture_node,
            ],
        );
        let cluster = unique(prefix);
        let mut t = Throwaway {
            host: host.to_string(),
            cluster: cluster.clone(),
            nodes: Vec::new(),
        };
        for i in 0..=workers {
            let (name, role) = match i {
                0 => (format!("{cluster}-control-plane"), "control-plane"),
                1 => (format!("{cluster}-worker"), "worker"),
                n => (format!("{cluster}-worker{n}"), "worker"),
            };
            let mut args: Vec<String> = [
                "run",
                "-d",
                "--name",
                &name,
                "--hostname",
                &name,
                "--label",
                &format!("io.x-k8s.kind.cluster={cluster}"),
                "--label",
                &format!("io.x-k8s.kind.role={role}"),
                "--tmpfs",
                "/run",
                "--tmpfs",
                "/tmp",
                "-v",
                "/var/lib/containerd",
                "--security-opt",
                "seccomp=unconfined",
                "--security-opt",
                "apparmor=unconfined",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(caps.split_whitespace().map(|c| format!("--cap-add={c}")));
            let sleeping = i + stopped > workers;
            if sleeping {
                args.extend(["--entrypoint".into(), "sleep".into()]);
            }
            args.push(image.clone());
            if sleeping {
                args.push("infinity".into());
            }
            t.nodes.push(name);
            docker(host, &args.iter().map(String::as_str).collect::<Vec<_>>());
        }
        for n in &t.nodes[..t.nodes.len() - stopped] {
            let up = (0..150).any(|_| {
                let ok = docker_raw(host, &["exec", n, "ctr", "version"])
                    .status
                    .success();
                if !ok {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                ok
            });
            assert!(up, "containerd did not start in {n}");
        }
        t
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        for n in &self.nodes {
            let _ = docker_raw(&self.host, &["unpause", n]);
            let _ = docker_raw(&self.host, &["rm", "-f", "-v", n]);
        }
    }
}

/// Unpauses a node container when dropped (also on panic).
pub struct Unpause<'a>(pub &'a str, pub &'a str);

impl Drop for Unpause<'_> {
    fn drop(&mut self) {
        let _ = docker_raw(self.0, &["unpause", self.1]);
    }
}

/// The refs of unfinished ingests in a node (`ctr content active`).
pub fn active_ingests(host: &str, node: &str) -> Vec<String> {
    docker(
        host,
        &["exec", node, "ctr", "-n", "k8s.io", "content", "active"],
    )
    .lines()
    .skip(1)
    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
    .collect()
}

/// Waits up to `secs` for `ok`, polling every 200 ms; true when it held.
pub fn eventually(secs: u64, mut ok: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if ok() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The SHA-256 (hex) of a file in a node's image rootfs, read through `ctr images mount` (no
/// pod, no container): proves the image unpacks and holds that file.
pub fn file_sha_in_image(host: &str, node: &str, image: &str, path: &str) -> String {
    let dir = format!("/tmp/{}", unique("kl-mnt"));
    let script = format!(
        "set -e; mkdir -p {dir}; ctr -n k8s.io images mount {image} {dir} >/dev/null; \
         sha256sum {dir}{path} | cut -d' ' -f1; ctr -n k8s.io images unmount --rm {dir} >/dev/null"
    );
    docker(host, &["exec", node, "sh", "-c", &script])
        .trim()
        .to_string()
}

/// The SHA-256 (hex) of a local file.
pub fn file_sha(path: &Path) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(std::fs::read(path).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

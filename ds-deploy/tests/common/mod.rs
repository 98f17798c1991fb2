//! What the cluster tests share: the testbed's cluster and images, the example DataStorage image
//! (built once per machine by `make example-images`), running ds-deploy, and a namespace that is
//! torn down however the test ends.

#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::process::Output;

pub struct Env {
    pub kubeconfig: String,
    pub postgres_image: String,
    pub redis_image: String,
    pub base_image: String,
    pub ds_image: String,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The testbed, or `None` (a loud skip; a failure under E2E_REQUIRE=1).
pub fn env() -> Option<Env> {
    let tb = e2e_testbed::require(&[
        "E2E_KUBECONFIG",
        "E2E_POSTGRES_IMAGE",
        "E2E_REDIS_IMAGE",
        "E2E_BASE_IMAGE",
        "DOCKER_HOST",
    ])?;
    Some(Env {
        kubeconfig: tb.get("E2E_KUBECONFIG").to_string(),
        postgres_image: tb.get("E2E_POSTGRES_IMAGE").to_string(),
        redis_image: tb.get("E2E_REDIS_IMAGE").to_string(),
        base_image: tb.get("E2E_BASE_IMAGE").to_string(),
        ds_image: example_image(tb.get("E2E_BASE_IMAGE")),
    })
}

/// The example DataStorage image, built once (under a lock: tests run as parallel processes).
pub fn example_image(base: &str) -> String {
    const REF: &str = "localhost/datastorage-example:ds-deploy-tests";
    let lock_path = root().join("target/example-images.lock");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(&lock_path).unwrap();
    // flock(2) via the flock command keeps this dependency-free.
    let status = std::process::Command::new("flock")
        .arg(&lock_path)
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "docker image inspect {REF} >/dev/null 2>&1 || make -s -C {} example-images DS_IMAGE={REF} EXAMPLE_BASE_IMAGE={base} >&2",
            root().display()
        ))
        .status()
        .expect("run flock");
    drop(lock);
    assert!(status.success(), "make example-images failed");
    REF.to_string()
}

pub fn ds_deploy(env: &Env, args: &[&str]) -> Output {
    let mut cmd = Command::cargo_bin("ds-deploy").unwrap();
    for (k, _) in std::env::vars() {
        if k.starts_with("DS_DEPLOY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("E2E_KUBECONFIG", &env.kubeconfig)
        .env("NO_COLOR", "1")
        .args(args)
        .timeout(std::time::Duration::from_secs(600));
    cmd.output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn kubectl(env: &Env, args: &[&str]) -> Output {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl")
}

/// A namespace for one test; `down --delete-namespace` when dropped.
pub struct Ns<'a> {
    pub env: &'a Env,
    pub name: String,
}

impl<'a> Ns<'a> {
    pub fn new(env: &'a Env, prefix: &str) -> Self {
        let name = e2e_testbed::unique_name(prefix).replace('_', "-");
        Ns { env, name }
    }

    /// `up` arguments for a small bundle with the testbed's images and API-server-picked ports.
    pub fn up_args(&self, migrations: &str) -> Vec<String> {
        [
            "up",
            "-N",
            &self.name,
            "--image",
            &self.env.ds_image,
            "--postgres-image",
            &self.env.postgres_image,
            "--redis-image",
            &self.env.redis_image,
            "--node-port",
            "0",
            "--metrics-node-port",
            "0",
            "--health-node-port",
            "0",
            "--postgres-node-port",
            "0",
            "--resources",
            "none",
            "--migrations-dir",
            migrations,
            "--timeout",
            "5m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }
}

impl Drop for Ns<'_> {
    fn drop(&mut self) {
        let _ = ds_deploy(
            self.env,
            &[
                "down",
                "-N",
                &self.name,
                "--delete-namespace",
                "--timeout",
                "90s",
                "-q",
            ],
        );
    }
}

pub fn examples_migrations() -> String {
    root().join("examples/migrations").display().to_string()
}

/// curl with the given extra arguments; returns (HTTP status, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let body = text(&out.stdout);
    let (body, code) = body.rsplit_once('\n').unwrap_or(("", "0"));
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}{}",
        text(&out.stderr),
        body
    );
    (code.trim().parse().unwrap_or(0), body.to_string())
}

//! Helpers the image-build integration tests share.
#![allow(dead_code)] // each test binary uses a different subset

use assert_cmd::Command;
use std::collections::BTreeMap;
use std::path::Path;

/// The image-build binary against `host`, with the variables a developer's shell may set and
/// that would change what the tests see removed.
pub fn image_build(host: &str) -> Command {
    let mut c = Command::cargo_bin("image-build").unwrap();
    c.env("E2E_ENGINE_HOST", host)
        .env_remove("E2E_CONSUMER")
        .env_remove("E2E_ENGINE")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("IMAGE_BUILD_PUSH")
        .env_remove("IMAGE_BUILD_PRINT_DIGEST");
    c
}

/// Writes `content` to `dir/rel`, creating the directories on the way.
pub fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// Runs the docker CLI against `host` (for checking results the way a user would).
pub fn docker(host: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker CLI runs")
}

/// An image's labels, as the docker CLI shows them.
pub fn labels(host: &str, image: &str) -> BTreeMap<String, String> {
    let out = docker(
        host,
        &[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            image,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

//! Reproducible builds against the testbed's real dockerd (and Podman): an unchanged rebuild
//! is served from the cache and gives the same image ID, leaving no dangling image; the
//! `created` labels come from SOURCE_DATE_EPOCH or the commit, never the clock; prune's age is
//! the engine's creation time.

use serde_json::Value;
use std::path::Path;

mod common;
use common::{docker, image_build, labels, write};

/// Builds `reference` from `dir` with `--json`; the one result.
fn build(host: &str, reference: &str, consumer: &str, dir: &Path, env: &[(&str, &str)]) -> Value {
    let mut c = image_build(host);
    c.args([
        "--json",
        "--tag",
        reference,
        "--consumer",
        consumer,
        "--context",
    ])
    .arg(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["results"][0].clone()
}

/// Images carrying `consumer`'s label, tagged or not: (id, tags).
fn images_of(host: &str, consumer: &str) -> Vec<String> {
    let out = docker(
        host,
        &[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
            "--filter",
            &format!("label=io.kubernaut.e2e.consumer={consumer}"),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn label(host: &str, image: &str, key: &str) -> Option<String> {
    labels(host, image).get(key).cloned()
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_DATE", "2001-09-09T01:46:40Z")
        .env("GIT_COMMITTER_DATE", "2001-09-09T01:46:40Z")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unchanged_rebuild_is_the_same_image_and_leaves_nothing_behind() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    let host = tb.get("DOCKER_HOST");
    let base = tb.get("E2E_BASE_IMAGE");
    let consumer = e2e_testbed::unique_name("c");
    let reference = format!("localhost/{}:t", e2e_testbed::unique_name("ib-repro"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "Dockerfile",
        &format!("FROM {base}\nCOPY app.txt /app/\nRUN wc -c /app/app.txt > /app/size\n"),
    );
    write(d, "app.txt", "v1\n");
    // In a git repository committed at a fixed time: the created labels carry that time.
    git(d, &["init", "-q"]);
    git(d, &["add", "."]);
    git(d, &["commit", "-q", "-m", "v1"]);

    let first = build(host, &reference, &consumer, d, &[]);
    assert_eq!(first["status"], "built");
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(
        label(host, &reference, "io.kubernaut.e2e.created").as_deref(),
        Some("2001-09-09T01:46:40Z")
    );
    assert_eq!(
        label(host, &reference, "org.opencontainers.image.created").as_deref(),
        Some("2001-09-09T01:46:40Z")
    );

    // The same context again: every step from the cache, the same image, nothing dangling.
    let second = build(host, &reference, &consumer, d, &[]);
    assert_eq!(second["status"], "built");
    assert_eq!(second["cached"], true, "{second}");
    assert_eq!(second["id"].as_str(), Some(id.as_str()));
    let dangling = docker(
        host,
        &[
            "images",
            "-q",
            "--filter",
            "dangling=true",
            "--filter",
            &format!("label=io.kubernaut.e2e.consumer={consumer}"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&dangling.stdout).trim(), "");
    let tagged: Vec<String> = images_of(host, &consumer)
        .into_iter()
        .filter(|l| !l.ends_with("<none>:<none>"))
        .collect();
    assert_eq!(tagged, vec![format!("{id} {reference}")]);

    // SOURCE_DATE_EPOCH wins over the commit; a changed file is a new image (not cached).
    let sde = build(
        host,
        &reference,
        &consumer,
        d,
        &[("SOURCE_DATE_EPOCH", "86400")],
    );
    assert_ne!(sde["id"].as_str(), Some(id.as_str()));
    assert_eq!(
        label(host, &reference, "io.kubernaut.e2e.created").as_deref(),
        Some("1970-01-02T00:00:00Z")
    );
    let bad = image_build(host)
        .args(["--tag", &reference, "--consumer", &consumer, "--context"])
        .arg(d)
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("SOURCE_DATE_EPOCH"));
    write(d, "app.txt", "v2\n");
    let changed = build(host, &reference, &consumer, d, &[]);
    assert_eq!(changed["cached"], false);
    assert_ne!(changed["id"].as_str(), Some(id.as_str()));

    // Outside git and without SOURCE_DATE_EPOCH there is no created label (never the clock),
    // and the rebuild is the same image too.
    std::fs::remove_dir_all(d.join(".git")).unwrap();
    let plain = format!("{reference}-plain");
    let a = build(host, &plain, &consumer, d, &[]);
    let b = build(host, &plain, &consumer, d, &[]);
    assert_eq!(label(host, &plain, "io.kubernaut.e2e.created"), None);
    assert_eq!(a["id"], b["id"]);
    assert_eq!(b["cached"], true);

    // Prune's age is the engine's: labels from 2001 do not make a fresh image old.
    let young = image_build(host)
        .args(["prune", "--consumer", &consumer, "--older-than", "1h"])
        .output()
        .unwrap();
    assert!(young.status.success());
    assert_eq!(String::from_utf8_lossy(&young.stdout), "");
    let all = image_build(host)
        .args(["prune", "--consumer", &consumer, "-q"])
        .output()
        .unwrap();
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    assert!(
        images_of(host, &consumer).is_empty(),
        "{:?}",
        images_of(host, &consumer)
    );
}

/// Podman takes the labels through the API: its rebuild of an unchanged context is the same
/// image as well.
#[test]
fn podman_rebuild_is_the_same_image() {
    let Some(tb) = e2e_testbed::require(&["E2E_PODMAN_HOST"]) else {
        return;
    };
    let host = tb.get("E2E_PODMAN_HOST");
    let consumer = e2e_testbed::unique_name("c");
    let reference = format!("localhost/{}:t", e2e_testbed::unique_name("ib-repro-pm"));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", "FROM scratch\nCOPY app.txt /\n");
    write(dir.path(), "app.txt", "v1\n");
    let first = build(host, &reference, &consumer, dir.path(), &[]);
    let second = build(host, &reference, &consumer, dir.path(), &[]);
    let _ = image_build(host)
        .args(["prune", "--consumer", &consumer, "-q"])
        .output();
    assert_eq!(first["id"], second["id"], "{first} {second}");
    assert_eq!(second["cached"], true, "{second}");
}

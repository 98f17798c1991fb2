//! Incremental loads: image B is image A plus one 1 MB layer, both built from the testbed's
//! base image. After A, loading B sends each node only the new layer (the report says so), B is
//! complete in every node and its root filesystem unpacks with the new file, and a node that
//! never had A receives all of B. On Docker 20.10 (whose `docker save` names layers by v1
//! IDs), from an archive file of it, and on Podman. Every check of a node is made with `ctr`
//! through `docker exec`, not with the code under test.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kind-load");
const A_LAYER: usize = 2_000_000;
const B_LAYER: usize = 1_000_000;

fn kind_load(host: &str, args: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("KIND_") || k.starts_with("E2E_ENGINE") {
            c.env_remove(k);
        }
    }
    c.args(args).arg("--host").arg(host).output().unwrap()
}

fn ok(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "kind-load failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// `FROM base` + `COPY file /name` of `size` random bytes, built as `tag`; returns the file.
fn build_from(host: &str, tag: &str, base: &str, name: &str, size: usize, dir: &Path) -> PathBuf {
    let ctx = dir.join(name);
    std::fs::create_dir_all(&ctx).unwrap();
    let file = ctx.join(name);
    write_random(&file, size);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {base}\nCOPY {name} /{name}\n"),
    )
    .unwrap();
    docker(host, &["build", "-q", "-t", tag, ctx.to_str().unwrap()]);
    file
}

/// The report's row for `node`.
fn row<'a>(report: &'a serde_json::Value, node: &str) -> &'a serde_json::Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == node)
        .unwrap_or_else(|| panic!("no row for {node}: {report}"))
}

fn bytes(r: &serde_json::Value, key: &str) -> u64 {
    r[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing: {r}"))
}

/// Every node lists B complete (config + 3 layers) and B's rootfs holds the new file.
fn b_complete_and_unpacks(host: &str, nodes: &[String], b: &str, b_file: &Path) {
    let want = file_sha(b_file);
    for n in nodes {
        let line = check_line(host, n, b);
        assert!(line.contains("complete (4/4)"), "{n}: {line}");
        assert_eq!(file_sha_in_image(host, n, b, "/b"), want, "{n}: /b in {b}");
    }
}

/// The bytes the new layer costs a node holding A: the layer tar (1 MB + headers), B's config
/// and manifests, the frames: about 1 MB, far from the ~80 MB of the whole image.
fn about_one_layer(sent: u64) -> bool {
    (B_LAYER as u64..B_LAYER as u64 + 300_000).contains(&sent)
}

#[test]
fn docker_after_a_only_bs_new_layer_is_sent_and_a_node_without_a_gets_everything() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_KIND_CLUSTER", "E2E_BASE_IMAGE"])
    else {
        return;
    };
    let host = tb.get("DOCKER_HOST").to_string();
    let cluster = tb.get("E2E_KIND_CLUSTER").to_string();
    let base = tb.get("E2E_BASE_IMAGE").to_string();
    let nodes = cluster_nodes(&host, &cluster);
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    let u = unique("kl-incr");
    let (a, b) = (format!("localhost/{u}:a"), format!("localhost/{u}:b"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.engine_images = vec![(host.clone(), b.clone()), (host.clone(), a.clone())];
    clean.node_names = vec![a.clone(), b.clone()];
    let dir = tempfile::tempdir().unwrap();
    build_from(&host, &a, &base, "a", A_LAYER, dir.path());
    let b_file = build_from(&host, &b, &a, "b", B_LAYER, dir.path());

    // A into two nodes; the third never has it.
    let (with_a, without_a) = (&nodes[..2], &nodes[2]);
    ok(&kind_load(
        &host,
        &["-n", &cluster, "--json", "--nodes", &with_a.join(","), &a],
    ));
    let o = kind_load(&host, &["-n", &cluster, "--json", "-v", &b]);
    let report = ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    for n in with_a {
        let r = row(&report, n);
        assert_eq!(r["action"], "loaded", "{r}");
        let (sent, reused) = (bytes(r, "sent_bytes"), bytes(r, "reused_bytes"));
        assert!(about_one_layer(sent), "{n} was sent {sent} bytes: {r}");
        // A's layers (the base image's and A's own) stayed where they were.
        assert!(reused >= A_LAYER as u64 + 10_000_000, "{n}: {r}");
        // -v says it per node too.
        assert!(
            err.contains(&format!("{b}: {n}: sent ")) && err.contains(&format!("({sent} bytes)")),
            "{err}"
        );
    }
    let r = row(&report, without_a);
    assert_eq!(r["action"], "loaded", "{r}");
    // A's layer and B's own went to it; only what it held from elsewhere (at most the base
    // image's layer, if some other load left it there) was reused.
    let base_size: u64 = docker(&host, &["image", "inspect", "--format", "{{.Size}}", &base])
        .trim()
        .parse()
        .unwrap();
    assert!(
        bytes(r, "sent_bytes") >= (A_LAYER + B_LAYER) as u64,
        "{without_a}: {r}"
    );
    assert!(bytes(r, "reused_bytes") <= base_size + 1_000_000, "{r}");
    b_complete_and_unpacks(&host, &nodes, &b, &b_file);

    // The same from a `docker save` file of B (v1 layer names, which the archive's manifest
    // maps to the config's diff IDs). B goes from every node (`--sync`: its own blobs too, and
    // on the node without A everything); A stays on two.
    let tar = dir.path().join("b.tar");
    docker(&host, &["save", "-o", tar.to_str().unwrap(), &b]);
    for n in &nodes {
        remove_from_node(&host, n, &b);
    }
    let report = ok(&kind_load(
        &host,
        &["-n", &cluster, "--json", "--archive", tar.to_str().unwrap()],
    ));
    for n in with_a {
        let r = row(&report, n);
        assert_eq!(r["action"], "loaded", "{r}");
        assert!(about_one_layer(bytes(r, "sent_bytes")), "{n}: {r}");
        assert!(
            bytes(r, "reused_bytes") >= A_LAYER as u64 + 10_000_000,
            "{r}"
        );
    }
    let r = row(&report, without_a);
    assert!(
        bytes(r, "sent_bytes") >= (A_LAYER + B_LAYER) as u64,
        "{without_a}: {r}"
    );
    b_complete_and_unpacks(&host, &nodes, &b, &b_file);
}

#[test]
fn podman_after_a_only_bs_new_layer_is_sent() {
    let Some(tb) = e2e_testbed::require(&[
        "E2E_PODMAN_HOST",
        "E2E_PODMAN_KIND_CLUSTER",
        "E2E_BASE_IMAGE",
    ]) else {
        return;
    };
    let host = tb.get("E2E_PODMAN_HOST").to_string();
    let cluster = tb.get("E2E_PODMAN_KIND_CLUSTER").to_string();
    let base = tb.get("E2E_BASE_IMAGE").to_string();
    let nodes = cluster_nodes(&host, &cluster);
    assert!(!nodes.is_empty());
    let u = unique("kl-pincr");
    let (a, b) = (format!("localhost/{u}:a"), format!("localhost/{u}:b"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.engine_images = vec![(host.clone(), b.clone()), (host.clone(), a.clone())];
    clean.node_names = vec![a.clone(), b.clone()];
    let dir = tempfile::tempdir().unwrap();
    build_from(&host, &a, &base, "a", A_LAYER, dir.path());
    let b_file = build_from(&host, &b, &a, "b", B_LAYER, dir.path());

    let load = |img: &str| {
        ok(&kind_load(
            &host,
            &["--engine", "podman", "-n", &cluster, "--json", img],
        ))
    };
    load(&a);
    let report = load(&b);
    for n in &nodes {
        let r = row(&report, n);
        assert_eq!(r["action"], "loaded", "{r}");
        let sent = bytes(r, "sent_bytes");
        assert!(about_one_layer(sent), "{n} was sent {sent} bytes: {r}");
        assert!(
            bytes(r, "reused_bytes") >= A_LAYER as u64 + 10_000_000,
            "{r}"
        );
    }
    b_complete_and_unpacks(&host, &nodes, &b, &b_file);
}

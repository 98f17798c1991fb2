//! kind-load against the testbed's real fixture clusters (containerd nodes in dockerd and in
//! Podman). Every assertion about a node is made with `ctr` through `docker exec`, not with
//! the code under test.

mod common;

use common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kind-load");

/// Runs the real binary with a clean environment for our variables.
fn kind_load(host: &str, args: &[&str]) -> Output {
    kind_load_pid(host, args).1
}

/// [`kind_load`], also giving the process ID (it names the run's holder images).
fn kind_load_pid(host: &str, args: &[&str]) -> (u32, Output) {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("KIND_") || k.starts_with("E2E_ENGINE") {
            c.env_remove(k);
        }
    }
    let child = c
        .args(args)
        .arg("--host")
        .arg(host)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (child.id(), child.wait_with_output().unwrap())
}

/// The holder images a kind-load process left in a node: named `sha256:<config digest>`, with
/// the label `kind-load.run=<pid in hex>-...` in that config.
fn holders_of(host: &str, node: &str, pid: u32) -> Vec<String> {
    let mark = format!(r#""kind-load.run":"{pid:x}-"#);
    node_names(host, node)
        .into_iter()
        .filter(|n| n.starts_with("sha256:"))
        .filter(|n| {
            let o = docker_raw(
                host,
                &["exec", node, "ctr", "-n", "k8s.io", "content", "get", n],
            );
            String::from_utf8_lossy(&o.stdout).contains(&mark)
        })
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "kind-load failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn fixture() -> Option<(String, String, Vec<String>)> {
    let tb = e2e_testbed::require(&["DOCKER_HOST", "E2E_KIND_CLUSTER"])?;
    let host = tb.get("DOCKER_HOST").to_string();
    let cluster = tb.get("E2E_KIND_CLUSTER").to_string();
    let nodes = cluster_nodes(&host, &cluster);
    assert_eq!(
        nodes.len(),
        3,
        "fixture cluster {cluster} should have 3 nodes: {nodes:?}"
    );
    Some((host, cluster, nodes))
}

/// The Podman fixture cluster: (Podman's API endpoint, cluster name, node names).
fn podman_fixture() -> Option<(String, String, Vec<String>)> {
    let tb = e2e_testbed::require(&["E2E_PODMAN_HOST", "E2E_PODMAN_KIND_CLUSTER"])?;
    let host = tb.get("E2E_PODMAN_HOST").to_string();
    let cluster = tb.get("E2E_PODMAN_KIND_CLUSTER").to_string();
    let nodes = cluster_nodes(&host, &cluster);
    assert!(!nodes.is_empty(), "no Podman fixture nodes for {cluster}");
    Some((host, cluster, nodes))
}

#[test]
fn loads_one_and_then_several_images_into_every_node() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let a = format!("localhost/{}:v1", unique("kl-one"));
    let b = format!("localhost/{}:v1", unique("kl-two"));
    let c = format!("{}:v2", unique("kl-hub"));
    let mut clean = Cleanup::new(&host, &nodes);
    for i in [&a, &b, &c] {
        clean.build(i, 300_000);
    }
    // The nodes know `c` by its normalised name.
    clean.node_names.push(format!("docker.io/library/{c}"));

    // One image.
    let out = ok(&kind_load(&host, &["--cluster", &cluster, &a]));
    let r = rows(&out, &a);
    assert_eq!(r.len(), 3, "{out}");
    for (row, node) in r.iter().zip(&nodes) {
        assert_eq!(row[0], node.as_str());
        assert_eq!(row[2], "loaded", "{out}");
        assert!(row[3].parse::<u64>().unwrap() > 300_000, "{out}");
    }
    for n in &nodes {
        assert!(node_names(&host, n).contains(&a), "{n} lacks {a}");
    }

    // Several in one call: the first is already there, the others are loaded.
    let out = ok(&kind_load(&host, &["-n", &cluster, &a, &b, &c]));
    assert!(
        rows(&out, &a).iter().all(|r| r[2] == "already-present"),
        "{out}"
    );
    assert_eq!(rows(&out, &b).len(), 3);
    assert!(rows(&out, &b).iter().all(|r| r[2] == "loaded"), "{out}");
    assert!(rows(&out, &c).iter().all(|r| r[2] == "loaded"), "{out}");
    for n in &nodes {
        let names = node_names(&host, n);
        assert!(names.contains(&a) && names.contains(&b), "{n}: {names:?}");
        // a Docker Hub style name is stored as containerd normalises it
        assert!(
            names.contains(&format!("docker.io/library/{c}")),
            "{n}: {names:?}"
        );
    }

    // `images` lists what every node holds, with the engine's image ID.
    let out = ok(&kind_load(&host, &["images", "--cluster", &cluster]));
    let id = image_id(&host, &b);
    for n in &nodes {
        assert!(out.contains(&format!("{n} {b} {id}")), "{out}");
    }
}

#[test]
fn second_load_skips_and_a_new_tag_only_retags() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let repo = format!("localhost/{}", unique("kl-skip"));
    let (t1, t2) = (format!("{repo}:t1"), format!("{repo}:t2"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.build(&t1, 200_000);
    clean.node_names.push(t2.clone());
    ok(&kind_load(&host, &["-n", &cluster, &t1]));

    let o = kind_load(&host, &["-n", &cluster, &t1]);
    let out = ok(&o);
    let r = rows(&out, &t1);
    assert_eq!(r.len(), 3);
    assert!(
        r.iter().all(|r| r[2] == "already-present" && r[3] == "0"),
        "{out}"
    );
    assert!(
        text(&o.stderr).contains("already present on all 3 node(s)"),
        "{}",
        text(&o.stderr)
    );

    // Same image ID under a new tag: re-tag only, nothing streamed (JSON report this time).
    docker(&host, &["tag", &t1, &t2]);
    clean.engine_images.push((host.clone(), t2.clone()));
    let out = ok(&kind_load(&host, &["-n", &cluster, "--json", &t2]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{out}");
    for r in results {
        assert_eq!(r["action"], "re-tagged", "{out}");
        assert_eq!(r["bytes"], 0, "{out}");
        assert_eq!(r["names"][0], t2.as_str());
    }
    let id = image_id(&host, &t1);
    for n in &nodes {
        let imgs = node_images(&host, n);
        let target = |name: &str| imgs.iter().find(|(x, _)| x == name).map(|(_, t)| t.clone());
        assert!(target(&t2).is_some(), "{n} lacks {t2}");
        assert_eq!(target(&t1), target(&t2), "{n}: both tags name one image");
    }
    // and the engine's ID is what the node lists for it
    let out = ok(&kind_load(
        &host,
        &["images", "-n", &cluster, "--nodes", &nodes[1]],
    ));
    assert!(out.contains(&format!("{} {t2} {id}", nodes[1])), "{out}");
    assert!(
        !out.contains(&nodes[0]),
        "--nodes restricts the listing: {out}"
    );
}

#[test]
fn localhost_and_registry_port_names_keep_their_names() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let u = unique("kl-names");
    let local = format!("localhost/{u}:e2e");
    let port = format!("localhost:5000/team/{u}:v1.2");
    let mut clean = Cleanup::new(&host, &nodes);
    for i in [&local, &port] {
        clean.build(i, 100_000);
    }
    // Load into one node only (--nodes), then the rest.
    let out = ok(&kind_load(
        &host,
        &["-n", &cluster, "--nodes", &nodes[2], &local, &port],
    ));
    assert_eq!(rows(&out, &local).len(), 1, "{out}");
    assert!(node_names(&host, &nodes[2]).contains(&port));
    assert!(!node_names(&host, &nodes[0]).contains(&port));
    let out = ok(&kind_load(&host, &["-n", &cluster, &local, &port]));
    for n in &nodes {
        let names = node_names(&host, n);
        assert!(names.contains(&local), "{n}: {names:?}");
        assert!(names.contains(&port), "{n}: {names:?}");
        assert!(
            !names
                .iter()
                .any(|x| x.starts_with("docker.io/") && x.contains(&u)),
            "{names:?}"
        );
    }
    assert!(
        rows(&out, &port).iter().any(|r| r[2] == "already-present"),
        "{out}"
    );
}

#[test]
fn podman_localhost_image_loads_into_the_podman_cluster_under_that_name() {
    let Some((host, cluster, nodes)) = podman_fixture() else {
        return;
    };
    let name = format!("localhost/{}:podman", unique("kl-pod"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.build(&name, 200_000);
    // Podman itself lists it under the localhost/ name.
    assert!(docker(&host, &["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains(&name));

    let mut c = Command::new(BIN);
    let o = c
        .env_remove("KIND_CLUSTER_NAME")
        .env("E2E_ENGINE", "podman")
        .env("E2E_ENGINE_HOST", &host)
        .env("KIND_CLUSTER_NAME", &cluster)
        .arg(&name)
        .output()
        .unwrap();
    let out = ok(&o);
    assert!(rows(&out, &name).iter().all(|r| r[2] == "loaded"), "{out}");
    assert_eq!(rows(&out, &name).len(), nodes.len());
    for n in &nodes {
        assert!(node_names(&host, n).contains(&name), "{n} lacks {name}");
    }
    // And the second time it is already there.
    let out = ok(&kind_load(
        &host,
        &["--engine", "podman", "-n", &cluster, &name],
    ));
    assert!(
        rows(&out, &name).iter().all(|r| r[2] == "already-present"),
        "{out}"
    );
}

#[test]
fn archive_files_are_streamed_and_checked_like_images() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let name = format!("localhost/{}:arch", unique("kl-arch"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.build(&name, 150_000);
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    docker(&host, &["save", "-o", tar.to_str().unwrap(), &name]);
    let size = std::fs::metadata(&tar).unwrap().len();

    let out = ok(&kind_load(
        &host,
        &["-n", &cluster, "--archive", tar.to_str().unwrap()],
    ));
    let r = rows(&out, tar.to_str().unwrap());
    assert_eq!(r.len(), 3, "{out}");
    assert!(
        r.iter()
            .all(|r| r[2] == "loaded" && r[3] == size.to_string()),
        "{out}"
    );
    for n in &nodes {
        assert!(node_names(&host, n).contains(&name));
    }
    let out = ok(&kind_load(
        &host,
        &["-n", &cluster, "--archive", tar.to_str().unwrap()],
    ));
    assert!(
        rows(&out, tar.to_str().unwrap())
            .iter()
            .all(|r| r[2] == "already-present"),
        "{out}"
    );
}

#[test]
fn unknown_cluster_lists_the_clusters_that_exist() {
    let Some((host, cluster, _)) = fixture() else {
        return;
    };
    let o = kind_load(&host, &["--cluster", "no-such-cluster", "localhost/x:y"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("no nodes for Kind cluster `no-such-cluster`"),
        "{err}"
    );
    assert!(err.contains(&format!("`{cluster}`")), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn image_missing_from_the_engine_is_named_with_a_hint() {
    let Some((host, cluster, _)) = fixture() else {
        return;
    };
    let missing = format!("localhost/{}:nope", unique("kl-missing"));
    let o = kind_load(&host, &["-n", &cluster, &missing]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("image `{missing}` not in the engine")),
        "{err}"
    );
    assert!(err.contains("image-build"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let o = Command::new(BIN).arg("Bad:Name").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = Command::new(BIN)
        .env_remove("KIND_LOAD_IMAGES")
        .env_remove("KIND_LOAD_ARCHIVE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = Command::new(BIN).arg("--help").output().unwrap();
    let help = text(&o.stdout);
    assert!(
        help.contains("Examples:") && help.contains("KIND_CLUSTER_NAME"),
        "{help}"
    );
}

/// Ctrl-C while the bytes stream: exit 130 with a message saying what to do, no node keeps a
/// partial image (each `ctr import` sees its stream cut off), and the same command re-run loads
/// the image everywhere.
#[test]
fn ctrl_c_mid_import_leaves_no_partial_image_and_a_rerun_loads() {
    use std::io::BufRead;
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let img = format!("localhost/{}:v1", unique("kl-intr"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.build(&img, 200 << 20);
    let id = image_id(&host, &img);

    let mut child = Command::new(BIN)
        .args(["-n", &cluster, &img, "--host", &host])
        .env_remove("KIND_LOAD_IMAGES")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("kind-load never said it started importing");
        if line.contains("importing into") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let t = Instant::now();
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?} to stop",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted") && err.contains("run the same command again"),
        "{err}"
    );

    // The imports in the nodes end on the cut-off stream without creating an image, and
    // remove their holder.
    std::thread::sleep(Duration::from_secs(2));
    for n in &nodes {
        let names = node_names(&host, n);
        assert!(
            !names.contains(&img) && !names.contains(&id),
            "{n} kept a partial {img}: {names:?}"
        );
        assert_eq!(holders_of(&host, n, pid), Vec::<String>::new(), "{n}");
    }

    let out = ok(&kind_load(&host, &["-n", &cluster, &img]));
    let r = rows(&out, &img);
    assert_eq!(r.len(), 3, "{out}");
    assert!(r.iter().all(|row| row[2] == "loaded"), "{out}");
    for n in &nodes {
        assert!(node_names(&host, n).contains(&img), "{n} lacks {img}");
    }
}

/// Completions and man pages come from the same clap definition as the binary; no engine needed.
#[test]
fn completions_and_man_pages_are_generated() {
    let o = Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("complete -F _kind") && text(&o.stdout).contains("kind-load"),
        "{}",
        text(&o.stdout)
    );
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().count(), 5, "{}", text(&o.stdout));
    let page = std::fs::read_to_string(dir.path().join("kind-load-images.1")).unwrap();
    assert!(page.contains(".TH") && page.contains("cluster"), "{page}");
}

/// A throwaway two-node cluster from the fixture's node image: one healthy node, one whose
/// containerd is not running (the container runs `sleep` instead).
#[test]
fn a_node_with_stopped_containerd_fails_with_its_ctr_error_and_the_other_still_loads() {
    let Some((host, fixture_cluster, fixture_nodes)) = fixture() else {
        return;
    };
    let t = Throwaway::with_stopped_workers(&host, &fixture_nodes[0], "kl-broken", 1, 1);
    let (cluster, good, bad) = (t.cluster.clone(), t.nodes[0].clone(), t.nodes[1].clone());
    let mut clean = Cleanup::new(&host, &[]);
    let img = format!("localhost/{}:x", unique("kl-stop"));
    build_image(&host, &img, 100_000);
    clean.engine_images.push((host.clone(), img.clone()));

    let o = kind_load(&host, &["-n", &cluster, &img]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    let r = rows(&out, &img);
    assert_eq!(r.len(), 2, "{out}");
    assert_eq!((r[0][0], r[0][2]), (good.as_str(), "loaded"), "{out}");
    assert_eq!((r[1][0], r[1][2]), (bad.as_str(), "failed"), "{out}");
    assert!(err.contains(&format!("node `{bad}`")), "{err}");
    // ctr's own stderr: it cannot reach containerd's socket
    assert!(err.contains("containerd.sock"), "{err}");
    assert!(node_names(&host, &good).contains(&img));

    // ctr failing during the import itself: an unknown snapshotter.
    let img2 = format!("localhost/{}:y", unique("kl-snap"));
    build_image(&host, &img2, 50_000);
    clean.engine_images.push((host.clone(), img2.clone()));
    let o = kind_load(
        &host,
        &[
            "-n",
            &cluster,
            "--nodes",
            &good,
            "--snapshotter",
            "nosuchsnap",
            &img2,
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("node `{good}`")) && err.contains("ctr images import"),
        "{err}"
    );
    assert!(err.contains("nosuchsnap"), "{err}");
    assert!(!fixture_cluster.is_empty());
}

/// A multi-arch image whose other platforms' blobs are missing. `--all-platforms`
/// (what `kind load` passes) fails with ctr's "not found"; the default (the node's platform)
/// and `--platform linux/amd64` load it.
#[test]
fn partial_multiarch_archive_loads_for_the_node_platform_but_not_with_all_platforms() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let node = nodes[1].clone();
    let name = format!("localhost/{}:multi", unique("kl-multi"));
    let mut clean = Cleanup::new(&host, std::slice::from_ref(&node));
    clean.node_names = vec![name.clone()];
    let (tar, index_digest) = oci_partial_multiarch(&name);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("multi.tar");
    std::fs::write(&file, &tar).unwrap();
    let f = file.to_str().unwrap();

    let o = kind_load(
        &host,
        &[
            "-n",
            &cluster,
            "--nodes",
            &node,
            "--archive",
            f,
            "--all-platforms",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("not found") && err.contains(&format!("node `{node}`")),
        "{err}"
    );

    let out = ok(&kind_load(
        &host,
        &["-n", &cluster, "--nodes", &node, "--archive", f],
    ));
    assert_eq!(rows(&out, f)[0][2], "loaded", "{out}");
    let listed = node_images(&host, &node);
    assert!(
        listed.iter().any(|(n, t)| n == &name && t == &index_digest),
        "{node} should list {name} -> {index_digest}: {listed:?}"
    );
    // again: the index digest is the image's identity here, so it is skipped
    let out = ok(&kind_load(
        &host,
        &["-n", &cluster, "--nodes", &node, "--archive", f],
    ));
    assert_eq!(rows(&out, f)[0][2], "already-present", "{out}");

    // --platform: ctr keeps exactly that platform
    // (every name of the image goes, or the next load would only re-tag)
    remove_from_node(&host, &node, &name);
    let out = ok(&kind_load(
        &host,
        &[
            "-n",
            &cluster,
            "--nodes",
            &node,
            "--platform",
            "linux/amd64",
            "--archive",
            f,
        ],
    ));
    assert_eq!(rows(&out, f)[0][2], "loaded", "{out}");
    assert!(node_names(&host, &node).contains(&name));
}

#[test]
fn platform_flag_loads_an_engine_image() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let name = format!("localhost/{}:plat", unique("kl-plat"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.build(&name, 50_000);
    let out = ok(&kind_load(
        &host,
        &["-n", &cluster, "--platform", "linux/amd64", &name],
    ));
    assert!(rows(&out, &name).iter().all(|r| r[2] == "loaded"), "{out}");
    let o = kind_load(&host, &["-n", &cluster, "--platform", "linux", &name]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}

/// Layers go into containerd with `ctr content ingest` before the final `ctr images import`
/// names the image; until then a holder blob (a GC root) keeps them. With a loop forcing
/// containerd's garbage collection in every node for the whole load (about 30 collections a
/// second), a three-layer image still loads complete, the load leaves nothing of its own
/// behind (holder, ingests), and the node holds the same manifest digest as after
/// `docker save | ctr import` (what `kind load` does).
#[test]
fn layers_survive_forced_gc_and_the_image_equals_ctrs_own_import() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let name = format!("localhost/{}:gc", unique("kl-gc"));
    let mut clean = Cleanup::new(&host, &nodes);
    build_layers(&host, &name, &[3_000_000, 2_500_000, 100_000]);
    clean.engine_images.push((host.clone(), name.clone()));
    clean.node_names.push(name.clone());

    let stop = format!("/tmp/{}", unique("kl-gc-stop"));
    for n in &nodes {
        docker(
            &host,
            &[
                "exec",
                "-d",
                n,
                "sh",
                "-c",
                &format!(
                    "rm -f {stop}; while [ ! -e {stop} ]; do id=$(ctr -n k8s.io leases create) && \
                     ctr -n k8s.io leases rm --sync \"$id\" >/dev/null; done"
                ),
            ],
        );
    }
    let (pid, o) = kind_load_pid(&host, &["-n", &cluster, &name]);
    for n in &nodes {
        docker(&host, &["exec", n, "touch", &stop]);
    }
    let out = ok(&o);
    assert!(rows(&out, &name).iter().all(|r| r[2] == "loaded"), "{out}");
    for n in &nodes {
        // Every blob of the image is there (config + 3 layers).
        let line = check_line(&host, n, &name);
        assert!(line.contains("complete (4/4)"), "{n}: {line}");
        // Nothing of the load's own is left: no holder, no unfinished ingest.
        assert_eq!(holders_of(&host, n, pid), Vec::<String>::new(), "{n}");
        let active = docker(
            &host,
            &["exec", n, "ctr", "-n", "k8s.io", "content", "active"],
        );
        assert!(
            !active.contains(&format!("kind-load-{pid:x}-")),
            "{n}: {active}"
        );
    }
    // The same manifest as ctr's own import of `docker save`.
    let by_kind_load = node_images(&host, &nodes[0])
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1;
    remove_from_node(&host, &nodes[0], &name);
    let pipe = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker -H {host} save {name} | docker -H {host} exec -i {} \
             ctr -n k8s.io images import --digests --snapshotter=overlayfs -",
            nodes[0]
        ))
        .output()
        .unwrap();
    assert!(pipe.status.success(), "{}", text(&pipe.stderr));
    let by_ctr = node_images(&host, &nodes[0])
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1;
    assert_eq!(by_kind_load, by_ctr);
}

/// An archive cut off inside a layer (its JSON files come first, so only its length gives it
/// away): the load fails within seconds saying it is truncated, and the node keeps
/// neither the image nor the load's holder.
#[test]
fn an_archive_cut_off_mid_layer_fails_cleanly() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let node = nodes[2].clone();
    let name = format!("localhost/{}:cut", unique("kl-cut"));
    let mut clean = Cleanup::new(&host, std::slice::from_ref(&node));
    clean.build(&name, 3_000_000);
    let saved = docker_raw(&host, &["save", &name]);
    assert!(saved.status.success());
    // Metadata first, then the layer, cut in its middle.
    let mut entries: Vec<(tar::Header, Vec<u8>)> = tar::Archive::new(&saved.stdout[..])
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (e.header().clone(), data)
        })
        .collect();
    entries.sort_by_key(|(h, _)| !h.path().unwrap().to_string_lossy().ends_with(".json"));
    let mut b = tar::Builder::new(Vec::new());
    for (h, data) in &entries {
        b.append(h, &data[..]).unwrap();
    }
    let mut bytes = b.into_inner().unwrap();
    bytes.truncate(bytes.len() - 1_500_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut.tar");
    std::fs::write(&file, &bytes).unwrap();

    let t = Instant::now();
    let (pid, o) = kind_load_pid(
        &host,
        &[
            "-n",
            &cluster,
            "--nodes",
            &node,
            "--archive",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("is truncated: it ends inside entry"), "{err}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(!node_names(&host, &node).contains(&name));
    assert_eq!(holders_of(&host, &node, pid), Vec::<String>::new());
}

/// Podman's archives name each layer by its digest, so a node that holds a layer already (an
/// image built on one loaded before) is not sent it again: the report says how many bytes were
/// reused, and the new image is complete in the node.
#[test]
fn podman_layers_a_node_holds_are_not_sent_again() {
    let Some((host, cluster, nodes)) = podman_fixture() else {
        return;
    };
    let base = format!("localhost/{}:base", unique("kl-reuse"));
    let top = format!("localhost/{}:top", unique("kl-reuse"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.build(&base, 4_000_000);
    build_on(&host, &top, &base, 300_000);
    clean.engine_images.insert(0, (host.clone(), top.clone()));
    clean.node_names.push(top.clone());

    let load = |img: &str| {
        ok(&kind_load(
            &host,
            &["--engine", "podman", "-n", &cluster, "--json", img],
        ))
    };
    let first: serde_json::Value = serde_json::from_str(&load(&base)).unwrap();
    assert!(first["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["action"] == "loaded"));
    let out = load(&top);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for r in report["results"].as_array().unwrap() {
        assert_eq!(r["action"], "loaded", "{out}");
        let reused = r["reused_bytes"].as_u64().unwrap_or(0);
        assert!(reused >= 4_000_000, "the base layer was sent again: {out}");
        assert!(r["bytes"].as_u64().unwrap() > reused, "{out}");
    }
    for n in &nodes {
        // config + 2 layers
        let line = check_line(&host, n, &top);
        assert!(line.contains("complete (3/3)"), "{n}: {line}");
    }
}

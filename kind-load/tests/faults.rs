//! Faults against real nodes: a node that stops answering mid-load (its container paused), the
//! whole-load time limit, a load killed mid-stream, unfinished ingests an earlier run left, a
//! cluster whose only node is stopped, a truncated `docker save` archive. Nodes that are paused
//! or stopped belong to throwaway clusters made of the fixture's node image, so the shared
//! fixture cluster keeps working for other tests. Each test checks the exit code, the message
//! and that nothing of the load is left in the nodes.

mod common;

use common::*;
use std::io::BufRead;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kind-load");

fn command(host: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("KIND_") || k.starts_with("E2E_ENGINE") {
            c.env_remove(k);
        }
    }
    c.args(args).arg("--host").arg(host);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A running kind-load whose stderr lines arrive on a channel (and are collected).
struct Running {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    stdout: Option<JoinHandle<String>>,
}

impl Running {
    fn start(host: &str, args: &[&str]) -> Self {
        let mut child = command(host, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut s);
            s
        });
        Running {
            child,
            lines,
            stderr: Some(stderr),
            stdout: Some(stdout),
        }
    }

    /// Waits for a stderr line containing `what` (panics after a minute: the load never got there).
    fn wait_for(&self, what: &str) {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let line = self
                .lines
                .recv_timeout(end.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("kind-load never said `{what}`"));
            if line.contains(what) {
                return;
            }
        }
    }

    /// Waits until this load is writing a layer into `node` (its ingest is listed); fails
    /// with what kind-load said when it ends first.
    fn streaming(&mut self, host: &str, node: &str) {
        let ingest = format!("kind-load-{:x}-", self.child.id());
        let mut said = Vec::new();
        let started = eventually(60, || {
            said.extend(self.lines.try_iter());
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "kind-load ended ({status}) before it streamed into {node}:\n{}",
                    said.join("\n")
                );
            }
            active_ingests(host, node)
                .iter()
                .any(|r| r.starts_with(&ingest))
        });
        assert!(
            started,
            "kind-load never started a layer in {node}; its ingests now: {:?}; it said:\n{}",
            active_ingests(host, node),
            said.join("\n")
        );
    }

    /// Exit code, stdout, stderr; a load that does not end within `limit` is killed and the
    /// test fails (kind-load must never wait forever).
    fn finish(mut self, limit: Duration) -> (Option<i32>, String, String) {
        let end = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "kind-load still running after {limit:?}:\n{}",
                    self.stderr.take().unwrap().join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = self.stdout.take().unwrap().join().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        (status.code(), out, err)
    }
}

/// Nothing of kind-load process `pid` is left in `node`: no unfinished ingest of its runs, no
/// holder image (its config names the run), and `image` is not listed. Waits up to 30 s for
/// the node's load script to notice its stdin ended and clean up.
fn nothing_left(host: &str, node: &str, pid: u32, image: &str) {
    let ingest = format!("kind-load-{pid:x}-");
    let mark = format!(r#""kind-load.run":"{pid:x}-"#);
    let clean = || {
        let ingests = active_ingests(host, node);
        let names = node_names(host, node);
        let holders = names.iter().filter(|n| n.starts_with("sha256:")).any(|n| {
            text(
                &docker_raw(
                    host,
                    &["exec", node, "ctr", "-n", "k8s.io", "content", "get", n],
                )
                .stdout,
            )
            .contains(&mark)
        });
        !ingests.iter().any(|r| r.starts_with(&ingest)) && !holders && !names.contains(image)
    };
    assert!(
        eventually(30, clean),
        "{node} kept something of kind-load {pid}: ingests {:?}, names {:?}",
        active_ingests(host, node),
        node_names(host, node)
    );
}

fn fixture() -> Option<(String, String, Vec<String>)> {
    let tb = e2e_testbed::require(&["DOCKER_HOST", "E2E_KIND_CLUSTER"])?;
    let host = tb.get("DOCKER_HOST").to_string();
    let cluster = tb.get("E2E_KIND_CLUSTER").to_string();
    let nodes = cluster_nodes(&host, &cluster);
    assert!(!nodes.is_empty());
    Some((host, cluster, nodes))
}

/// A worker paused mid-stream: after a few seconds a stderr line says it makes no progress;
/// after `--io-timeout` it fails, naming the node and what it was doing, while the control
/// plane finishes; exit 1. Then `--timeout` alone: the whole load stops at the limit. Then
/// SIGKILL mid-stream. After each (the node unpaused), nothing of the load is left in any
/// node.
#[test]
fn paused_node_io_timeout_whole_load_timeout_and_sigkill_leave_nothing_behind() {
    let Some((host, _, fixture_nodes)) = fixture() else {
        return;
    };
    let t = Throwaway::new(&host, &fixture_nodes[0], "kl-pause", 1);
    let (cp, worker) = (t.nodes[0].clone(), t.nodes[1].clone());
    let img = format!("localhost/{}:big", unique("kl-pause"));
    let mut clean = Cleanup::new(&host, &[]);
    clean.build(&img, 150 << 20);

    // 1. --io-timeout: the paused worker fails, the control plane loads.
    let mut run = Running::start(&host, &["-n", &t.cluster, "--io-timeout", "4s", &img]);
    let pid = run.child.id();
    run.wait_for("importing into");
    run.streaming(&host, &worker);
    docker(&host, &["pause", &worker]);
    let unpause = Unpause(&host, &worker);
    let (code, out, err) = run.finish(Duration::from_secs(120));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        out.contains(&format!("{cp} {img} loaded ")),
        "the control plane should finish: {out}\n{err}"
    );
    assert!(out.contains(&format!("{worker} {img} failed ")), "{out}");
    // The notice after a few seconds, then the failure naming node and activity.
    assert!(
        err.contains(&format!(
            "warning: {worker}: no progress for 2 s while streaming"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "node `{worker}`, image `{img}`: no progress for 4 s while streaming layer"
        )),
        "{err}"
    );
    assert!(err.contains("--io-timeout"), "{err}");
    assert!(node_names(&host, &cp).contains(&img));
    drop(unpause);
    nothing_left(&host, &worker, pid, &img);
    remove_from_node(&host, &cp, &img);

    // 2. --timeout (no I/O limit; long enough to get streaming on a busy machine): everything
    // stops at the limit, both nodes named.
    let mut run = Running::start(
        &host,
        &[
            "-n",
            &t.cluster,
            "--io-timeout",
            "0",
            "--timeout",
            "20s",
            &img,
        ],
    );
    let pid = run.child.id();
    run.wait_for("importing into");
    run.streaming(&host, &worker);
    docker(&host, &["pause", &worker]);
    let unpause = Unpause(&host, &worker);
    let (code, out, err) = run.finish(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{err}");
    for n in [&cp, &worker] {
        assert!(out.contains(&format!("{n} {img} failed ")), "{out}");
        // Which of a node's two streams (the source's or the node's) notices the limit first
        // is a race; either way its line names the node, the limit and what was going on.
        let prefix = format!("node `{n}`, image `{img}`: ");
        assert!(
            err.lines().any(|l| l.contains(&prefix)
                && l.contains("timed out: the load's time limit (--timeout 20 s) ran out while")),
            "{err}"
        );
    }
    drop(unpause);
    for n in [&cp, &worker] {
        nothing_left(&host, n, pid, &img);
    }

    // 3. SIGKILL mid-stream: the node scripts see their stdin end and clean up.
    let mut run = Running::start(&host, &["-n", &t.cluster, &img]);
    let pid = run.child.id();
    run.wait_for("importing into");
    run.streaming(&host, &cp);
    run.streaming(&host, &worker);
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (code, _, _) = run.finish(Duration::from_secs(30));
    assert_eq!(code, None, "killed by a signal");
    for n in [&cp, &worker] {
        nothing_left(&host, n, pid, &img);
    }
    // And a load afterwards works.
    let o = command(&host, &["-n", &t.cluster, &img]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// Unfinished ingests an earlier kind-load run left (a node that went away mid-load: the script
/// could not clean up) are removed by the next load once nobody has written to them for 10
/// minutes; a recent one (another load still streaming) is left alone. The leftovers are real
/// cut-off ingests, aged with `touch`.
#[test]
fn stale_kind_load_ingests_are_cleared_by_the_next_load_and_fresh_ones_kept() {
    let Some((host, _, fixture_nodes)) = fixture() else {
        return;
    };
    let t = Throwaway::new(&host, &fixture_nodes[0], "kl-stale", 0);
    let node = t.nodes[0].clone();
    let u = unique("t");
    let (old, fresh) = (
        format!("kind-load-{u}-old-1"),
        format!("kind-load-{u}-fresh-1"),
    );
    let other = format!("someone-else-{u}");
    for r in [&old, &fresh, &other] {
        // 100 kB of an announced 300 kB: ctr fails, the ingest stays.
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "head -c 100000 /dev/urandom | docker -H {host} exec -i {node} \
                 ctr -n k8s.io content ingest --expected-size 300000 {r}"
            ))
            .output()
            .unwrap();
        assert!(!o.status.success());
    }
    let dir = "/var/lib/containerd/io.containerd.content.v1.content/ingest";
    docker(
        &host,
        &[
            "exec",
            &node,
            "sh",
            "-c",
            &format!(
                "for d in {dir}/*; do case $(cat $d/ref) in *{old}|*{other}) \
                 touch -d '20 minutes ago' $d/data;; esac; done"
            ),
        ],
    );
    let before = active_ingests(&host, &node);
    for r in [&old, &fresh, &other] {
        assert!(before.contains(r), "{before:?}");
    }
    let img = format!("localhost/{}:s", unique("kl-stale"));
    let mut clean = Cleanup::new(&host, &[]);
    clean.build(&img, 2_000_000);
    let o = command(&host, &["-n", &t.cluster, &img]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let after = active_ingests(&host, &node);
    assert!(
        !after.contains(&old),
        "the stale kind-load ingest stayed: {after:?}"
    );
    assert!(
        after.contains(&fresh),
        "a recent ingest was removed: {after:?}"
    );
    assert!(
        after.contains(&other),
        "another tool's ingest was removed: {after:?}"
    );
}

/// A cluster whose only node is stopped: one clear error naming the node, its state and what
/// to do, not "already present" or a reference to other nodes' results.
#[test]
fn a_cluster_whose_only_node_is_stopped_is_a_clear_error() {
    let Some((host, _, fixture_nodes)) = fixture() else {
        return;
    };
    let t = Throwaway::new(&host, &fixture_nodes[0], "kl-stopped", 0);
    docker(&host, &["stop", "-t", "2", &t.nodes[0]]);
    let img = format!("localhost/{}:x", unique("kl-stopped"));
    let mut clean = Cleanup::new(&host, &[]);
    clean.build(&img, 10_000);
    let o: Output = command(&host, &["-n", &t.cluster, &img]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("no node of cluster `{}` is running", t.cluster))
            && err.contains(&format!("`{}` is not running (state: exited)", t.nodes[0]))
            && err.contains(&format!("docker start {}", t.nodes[0])),
        "{err}"
    );
    assert!(
        !err.contains("already present") && !err.contains("other nodes"),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "{}", text(&o.stdout));
}

/// A `docker save` archive cut off inside an entry, or between two entries before its
/// manifest: reported as truncated (not as a foreign format), exit 1, nothing loaded.
#[test]
fn a_truncated_docker_save_archive_is_reported_as_truncated() {
    let Some((host, cluster, nodes)) = fixture() else {
        return;
    };
    let img = format!("localhost/{}:t", unique("kl-trunc"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.build(&img, 3_000_000);
    let saved = docker_raw(&host, &["save", &img]);
    assert!(saved.status.success());
    let full = saved.stdout;
    // Where manifest.json's header starts (Docker writes it after the layers and config).
    let manifest_at = {
        let mut a = tar::Archive::new(&full[..]);
        let e = a
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path().unwrap().to_string_lossy() == "manifest.json")
            .unwrap();
        e.raw_header_position() as usize
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, len, says) in [
        ("mid-entry.tar", full.len() / 2, "it ends inside entry"),
        ("boundary.tar", manifest_at, "without the tar end marker"),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, &full[..len]).unwrap();
        let o = command(
            &host,
            &["-n", &cluster, "--archive", file.to_str().unwrap()],
        )
        .output()
        .unwrap();
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("archive {} is truncated", file.display())) && err.contains(says),
            "{name}: {err}"
        );
        assert!(!err.contains("expected a `docker save`"), "{name}: {err}");
        assert!(o.stdout.is_empty());
    }
    for n in &nodes {
        assert!(!node_names(&host, n).contains(&img), "{n}");
    }
}

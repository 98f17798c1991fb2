//! image-build when things go wrong, against the testbed's real dockerd and Podman: Ctrl-C
//! and timeouts stop the build on the engine (Podman's RUN step included) and leave nothing
//! behind, a lost engine connection is one clear failure and the build still stops, a
//! cancelled build says how long it ran, two builds of one tag at once take turns and leave
//! no dangling image, and a spec file's unknown key is named with its line.

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{image_build, write};

/// A CLI against the engine at `host`: `docker` (Docker, or Podman's compat API for images)
/// or `podman --url` (Podman's own view, build containers included).
fn cli(program: &str, host: &str, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(program);
    if program == "podman" {
        c.args(["--url", host]);
    } else {
        c.env("DOCKER_HOST", host).env("DOCKER_BUILDKIT", "0");
    }
    c.args(args).output().expect("the engine's CLI runs")
}

/// image-build as a child process (to be interrupted), its output piped.
fn spawn(host: &str, args: &[&str], context: &Path) -> Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("image-build"))
        .args(args)
        .arg("--context")
        .arg(context)
        .env("E2E_ENGINE_HOST", host)
        .env_remove("E2E_CONSUMER")
        .env_remove("E2E_ENGINE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Whether a process on this host has `needle` in its command line (the engines run here).
fn running(needle: &str) -> bool {
    let out = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains(needle))
}

/// Polls `cond` for up to `secs` seconds; its last answer.
fn wait_until(cond: &dyn Fn() -> bool, secs: u64) -> bool {
    let t = Instant::now();
    while !cond() && t.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

fn sigint(child: &Child) {
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
}

/// The one result of a `--json` document.
fn result(stdout: &[u8]) -> Value {
    let doc: Value = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(stdout)));
    doc["results"][0].clone()
}

/// IDs of every image (tagged or not) carrying `consumer`'s label.
fn images_of(program: &str, host: &str, consumer: &str) -> Vec<String> {
    let filter = format!("label=io.kubernaut.e2e.consumer={consumer}");
    let out = cli(
        program,
        host,
        &["images", "-a", "-q", "--no-trunc", "--filter", &filter],
    );
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    ids.dedup();
    ids
}

fn exists(program: &str, host: &str, image: &str) -> bool {
    cli(program, host, &["image", "inspect", image])
        .status
        .success()
}

/// One test's names on one engine; removes its images and base tag when dropped.
struct Case {
    program: &'static str,
    host: String,
    name: String,
    consumer: String,
    dir: tempfile::TempDir,
    /// A base image tag of its own, so that Podman's build container is named after it
    /// (`<base>-working-container`) and no other test's build is mistaken for this one's.
    base: Option<String>,
}

impl Case {
    fn new(program: &'static str, host: &str, prefix: &str) -> Case {
        Case {
            program,
            host: host.into(),
            name: e2e_testbed::unique_name(prefix),
            consumer: e2e_testbed::unique_name("c"),
            dir: tempfile::tempdir().unwrap(),
            base: None,
        }
    }

    fn reference(&self) -> String {
        format!("localhost/{}:t", self.name)
    }

    /// Tags the testbed's base image under this case's own name.
    fn own_base(&mut self, base: &str) -> String {
        let tag = format!("localhost/{}-base:1", self.name);
        let out = cli(self.program, &self.host, &["tag", base, &tag]);
        assert!(out.status.success(), "{out:?}");
        self.base = Some(tag.clone());
        tag
    }

    /// Podman's build containers of this case still in its store.
    fn build_containers(&self) -> Vec<String> {
        let out = cli(
            "podman",
            &self.host,
            &["ps", "-a", "--external", "--format", "{{.Names}}"],
        );
        let prefix = format!("{}-base-working-container", self.name);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = cli(self.program, &self.host, &["rmi", "-f", &self.reference()]);
        let _ = image_build(&self.host)
            .args(["prune", "--consumer", &self.consumer, "-q"])
            .output();
        if let Some(b) = &self.base {
            let _ = cli(self.program, &self.host, &["rmi", b]);
        }
    }
}

/// Ctrl-C during a Podman RUN step: exit 130 at once, the step's processes killed on the
/// engine (a 10-minute sleep is gone), no build container, no image, and the cancelled
/// result says how long it ran.
#[test]
fn podman_ctrl_c_kills_the_running_run_step_and_leaves_nothing() {
    let Some(tb) = e2e_testbed::require(&["E2E_PODMAN_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    let mut case = Case::new("podman", tb.get("E2E_PODMAN_HOST"), "ibf-pint");
    let base = case.own_base(tb.get("E2E_BASE_IMAGE"));
    let marker = format!("sleep 6{:02}", std::process::id() % 100);
    write(
        case.dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nRUN {marker}\n"),
    );
    let reference = case.reference();
    let t0 = Instant::now();
    let child = spawn(
        &case.host,
        &[
            "--json",
            "--tag",
            &reference,
            "--no-cache",
            "--consumer",
            &case.consumer,
        ],
        case.dir.path(),
    );
    assert!(
        wait_until(&|| running(&marker), 30),
        "the RUN step never started"
    );
    assert_eq!(case.build_containers().len(), 1, "the build container");
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        err.contains("Podman's running RUN step was killed"),
        "{err}"
    );
    // Killed, not left to finish its ten minutes.
    assert!(!running(&marker), "the RUN step kept running: {err}");
    let r = result(&out.stdout);
    assert_eq!(r["status"], "cancelled");
    let secs = r["seconds"].as_f64().unwrap();
    assert!(secs > 0.0 && secs <= wall, "seconds {secs}, wall {wall}");
    // Podman gives the failed build up and removes its container; nothing was committed.
    assert!(
        wait_until(&|| case.build_containers().is_empty(), 20),
        "build container left: {:?}",
        case.build_containers()
    );
    assert!(!exists("podman", &case.host, &reference));
    assert_eq!(
        images_of("podman", &case.host, &case.consumer),
        Vec::<String>::new()
    );
}

/// `--timeout` on Podman kills the RUN step the same way: exit 1, the message says so.
#[test]
fn podman_timeout_kills_the_run_step() {
    let Some(tb) = e2e_testbed::require(&["E2E_PODMAN_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    let mut case = Case::new("podman", tb.get("E2E_PODMAN_HOST"), "ibf-ptmo");
    let base = case.own_base(tb.get("E2E_BASE_IMAGE"));
    let marker = format!("sleep 7{:02}", std::process::id() % 100);
    write(
        case.dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nRUN {marker}\n"),
    );
    let reference = case.reference();
    let out = image_build(&case.host)
        .args([
            "--json",
            "--tag",
            &reference,
            "--timeout",
            "4s",
            "--no-cache",
            "--consumer",
            &case.consumer,
            "--context",
        ])
        .arg(case.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("timed out after 4s"), "{err}");
    assert!(
        err.contains("Podman's running RUN step was killed"),
        "{err}"
    );
    let r = result(&out.stdout);
    assert_eq!(r["status"], "timed-out");
    assert!(!running(&marker), "the RUN step kept running: {err}");
    assert!(
        wait_until(&|| case.build_containers().is_empty(), 20),
        "build container left: {:?}",
        case.build_containers()
    );
    assert!(!exists("podman", &case.host, &reference));
}

/// Ctrl-C on Docker with `--json`: the cancelled result carries its real time, the engine
/// stopped the RUN container, nothing is tagged.
#[test]
fn docker_ctrl_c_reports_the_time_the_build_ran() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    let case = Case::new("docker", tb.get("DOCKER_HOST"), "ibf-dint");
    let marker = format!("sleep 8{:02}", std::process::id() % 100);
    write(
        case.dir.path(),
        "Dockerfile",
        &format!("FROM {}\nRUN {marker}\n", tb.get("E2E_BASE_IMAGE")),
    );
    let reference = case.reference();
    let t0 = Instant::now();
    let child = spawn(
        &case.host,
        &[
            "--json",
            "--tag",
            &reference,
            "--no-cache",
            "--consumer",
            &case.consumer,
        ],
        case.dir.path(),
    );
    assert!(
        wait_until(&|| running(&marker), 30),
        "the RUN step never started"
    );
    let ran_at_least = t0.elapsed().as_secs_f64();
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    let wall = t0.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(130));
    let r = result(&out.stdout);
    assert_eq!(r["status"], "cancelled");
    assert_eq!(r["error"], "cancelled by Ctrl-C");
    let secs = r["seconds"].as_f64().unwrap();
    // From its start to its stop: more than the part seen running before Ctrl-C minus the
    // process start-up, never more than the whole run.
    assert!(
        secs > 0.0 && secs <= wall,
        "seconds {secs}, wall {wall}, RUN seen at {ran_at_least}"
    );
    assert!(
        wait_until(&|| !running(&marker), 20),
        "the build container kept running"
    );
    assert!(!exists("docker", &case.host, &reference));
    assert_eq!(
        images_of("docker", &case.host, &case.consumer),
        Vec::<String>::new()
    );
}

/// Two processes build one tag at once: the second waits (saying for whom), then finds the
/// first one's steps in the cache; both succeed with the same image and nothing dangles.
fn same_tag_builds_take_turns(program: &'static str, host: &str, base: &str) {
    let case = Case::new(program, host, "ibf-same");
    // Three seconds, told apart from other tests' sleeps by its digits.
    let marker = format!("sleep 3.0{:04}", std::process::id() % 10000);
    // The stamp makes every real build a different image: only the cache gives equal ones.
    write(
        case.dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nRUN {marker} && date +%s%N > /stamp\n"),
    );
    let reference = case.reference();
    let args = [
        "--json",
        "--tag",
        reference.as_str(),
        "--consumer",
        case.consumer.as_str(),
    ];
    let first = spawn(&case.host, &args, case.dir.path());
    assert!(
        wait_until(&|| running(&marker), 30),
        "the first build's RUN step never started"
    );
    let second = spawn(&case.host, &args, case.dir.path());
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    let (ea, eb) = (
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr),
    );
    assert_eq!(a.status.code(), Some(0), "{ea}");
    assert_eq!(b.status.code(), Some(0), "{eb}");
    assert!(
        eb.contains("waiting: another image-build (pid ")
            && eb.contains("is building this tag on this engine"),
        "{eb}"
    );
    let (ra, rb) = (result(&a.stdout), result(&b.stdout));
    assert_eq!(ra["status"], "built");
    assert_eq!(rb["status"], "built");
    assert_eq!(ra["id"], rb["id"], "{ea}\n{eb}");
    assert_eq!(rb["cached"], true, "{eb}");
    // Only the final image carries the labels: a second real build would have left its own
    // labelled image behind, untagged.
    let id = ra["id"].as_str().unwrap().to_string();
    assert_eq!(images_of(program, &case.host, &case.consumer), vec![id]);
}

#[test]
fn docker_same_tag_builds_at_once_take_turns_and_leave_no_dangling_image() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    same_tag_builds_take_turns("docker", tb.get("DOCKER_HOST"), tb.get("E2E_BASE_IMAGE"));
}

#[test]
fn podman_same_tag_builds_at_once_take_turns() {
    let Some(tb) = e2e_testbed::require(&["E2E_PODMAN_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    same_tag_builds_take_turns(
        "podman",
        tb.get("E2E_PODMAN_HOST"),
        tb.get("E2E_BASE_IMAGE"),
    );
}

/// A rebuild that gives a new image (`--no-cache`) removes the one it moved the tag from:
/// no dangling image is left, and stderr says so.
#[test]
fn a_rebuild_removes_the_image_it_replaced() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    let case = Case::new("docker", tb.get("DOCKER_HOST"), "ibf-repl");
    write(
        case.dir.path(),
        "Dockerfile",
        &format!(
            "FROM {}\nRUN date +%s%N > /stamp\n",
            tb.get("E2E_BASE_IMAGE")
        ),
    );
    let reference = case.reference();
    let build = || {
        let out = image_build(&case.host)
            .args([
                "--json",
                "--no-cache",
                "--tag",
                &reference,
                "--consumer",
                &case.consumer,
                "--context",
            ])
            .arg(case.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            result(&out.stdout)["id"].as_str().unwrap().to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (first, _) = build();
    let (second, err) = build();
    assert_ne!(first, second);
    assert!(
        err.contains("removed the image this build replaced"),
        "{err}"
    );
    assert!(!exists("docker", &case.host, &first));
    assert_eq!(
        images_of("docker", &case.host, &case.consumer),
        vec![second]
    );
}

/// An unknown key in a spec file: exit 2 naming the key and its line, before any engine is
/// contacted.
#[test]
fn an_unknown_spec_key_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("images.yaml");
    write(
        dir.path(),
        "images.yaml",
        "images:\n  - tag: localhost/a:1\n    context: .\n    colour: red\n",
    );
    let out = image_build("unix:///nonexistent.sock")
        .arg("--spec")
        .arg(&spec)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("image-build: "), "{err}");
    assert!(first.contains("unknown field `colour`"), "{err}");
    assert!(first.contains("line 4"), "{err}");
    assert!(!err.contains("untagged enum"), "{err}");
    assert!(out.stdout.is_empty());
}

/// A unix-socket proxy in front of the engine that can cut every connection at once: a lost
/// engine, since stopping the testbed's shared daemons is not an option (hence "fake").
struct CutProxy {
    url: String,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _dir: tempfile::TempDir,
}

impl CutProxy {
    fn start(target: &str) -> CutProxy {
        use std::os::unix::net::{UnixListener, UnixStream};
        let target = target.trim_start_matches("unix://").to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, k) = (conns.clone(), cut.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if k.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let Ok(up) = UnixStream::connect(&target) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone().unwrap(), up.try_clone().unwrap()),
                    (up.try_clone().unwrap(), client.try_clone().unwrap()),
                ];
                c.lock().unwrap().extend([client, up]);
                for (mut from, mut to) in pairs {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        CutProxy {
            url: format!("unix://{}", path.display()),
            conns,
            cut,
            _dir: dir,
        }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for s in self.conns.lock().unwrap().iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The connection to the engine breaks mid-RUN: exit 1, one error line naming the image and
/// the lost connection, the step stopped on the engine, nothing tagged.
fn lost_connection(program: &'static str, host: &str, base: &str, stopped: &str) {
    let mut case = Case::new(program, host, "ibf-lost");
    let base = if program == "podman" {
        case.own_base(base)
    } else {
        base.to_string()
    };
    let marker = format!("sleep 5{:02}", std::process::id() % 100);
    write(
        case.dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nRUN {marker}\n"),
    );
    let proxy = CutProxy::start(host);
    let reference = case.reference();
    let child = spawn(
        &proxy.url,
        &[
            "--tag",
            &reference,
            "--no-cache",
            "--consumer",
            &case.consumer,
        ],
        case.dir.path(),
    );
    assert!(
        wait_until(&|| running(&marker), 30),
        "the RUN step never started"
    );
    proxy.cut();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("error: ") && l.contains(&reference) && l.contains(" failed at "))
        .unwrap_or_else(|| panic!("no error line naming the image: {err}"));
    assert!(
        line.contains("lost the connection to the engine during the build"),
        "{line}"
    );
    assert!(line.contains(stopped), "{line}");
    assert!(
        wait_until(&|| !running(&marker), 20),
        "the RUN step kept running: {err}"
    );
    if program == "podman" {
        assert!(
            wait_until(&|| case.build_containers().is_empty(), 20),
            "build container left: {:?}",
            case.build_containers()
        );
    }
    assert!(!exists(program, &case.host, &reference));
}

#[test]
fn docker_lost_connection_fake_proxy_fails_in_one_line_and_the_build_stops() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    lost_connection(
        "docker",
        tb.get("DOCKER_HOST"),
        tb.get("E2E_BASE_IMAGE"),
        "re-run to build it",
    );
}

#[test]
fn podman_lost_connection_fake_proxy_kills_the_run_step() {
    let Some(tb) = e2e_testbed::require(&["E2E_PODMAN_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    lost_connection(
        "podman",
        tb.get("E2E_PODMAN_HOST"),
        tb.get("E2E_BASE_IMAGE"),
        "Podman's running RUN step was killed",
    );
}

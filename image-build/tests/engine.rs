//! image-build against the testbed's real dockerd and Podman API: every "must show" of the
//! issue. Each test uses its own image names and consumer, and removes what it built.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{docker, image_build, labels, write};

/// One test's own world on `host`: a unique image name and consumer and a scratch directory.
/// When dropped it removes every reference it handed out and every image of its consumer.
struct Case {
    host: String,
    name: String,
    consumer: String,
    dir: tempfile::TempDir,
    refs: RefCell<Vec<String>>,
}

/// The testbed with `keys` (the first names the engine), and a case on that engine; `None`
/// when the testbed lacks them (a loud skip, or a failure under `E2E_REQUIRE=1`).
fn setup(keys: &[&str], prefix: &str) -> Option<(e2e_testbed::Testbed, Case)> {
    let tb = e2e_testbed::require(keys)?;
    let case = Case::new(tb.get(keys[0]), prefix);
    Some((tb, case))
}

impl Case {
    fn new(host: &str, prefix: &str) -> Case {
        Case {
            host: host.into(),
            name: e2e_testbed::unique_name(prefix),
            consumer: e2e_testbed::unique_name("c"),
            dir: tempfile::tempdir().unwrap(),
            refs: RefCell::new(Vec::new()),
        }
    }

    /// `localhost/<name><suffix>`, removed when the case ends.
    fn image(&self, suffix: &str) -> String {
        let r = format!("localhost/{}{suffix}", self.name);
        self.refs.borrow_mut().push(r.clone());
        r
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        for r in self.refs.borrow().iter() {
            let _ = docker(&self.host, &["rmi", "-f", r]);
        }
        let _ = image_build(&self.host)
            .args(["prune", "--consumer", &self.consumer, "-q"])
            .output();
    }
}

/// Files of an image: path -> (type char, link target), from `docker export` of a created
/// (never started) container.
fn image_files(host: &str, image: &str) -> BTreeMap<String, (char, String)> {
    let out = docker(host, &["create", image, "/nonexistent"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let tar = docker(host, &["export", &id]);
    let _ = docker(host, &["rm", "-f", &id]);
    let mut files = BTreeMap::new();
    let mut a = tar::Archive::new(tar.stdout.as_slice());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let path = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let kind = match e.header().entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            _ => 'f',
        };
        let link = e
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.insert(path, (kind, link));
    }
    files
}

fn under<'a>(files: &'a BTreeMap<String, (char, String)>, prefix: &str) -> Vec<&'a str> {
    files
        .keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter(|k| !k.is_empty())
        .map(|k| k.trim_start_matches('/'))
        .collect()
}

#[test]
fn scratch_and_multi_stage_builds_honour_build_args_and_target() {
    let Some((tb, case)) = setup(&["DOCKER_HOST", "E2E_BASE_IMAGE"], "ib-stages") else {
        return;
    };
    let host = case.host.as_str();
    let base = tb.get("E2E_BASE_IMAGE");
    let (consumer, dir) = (case.consumer.clone(), &case.dir);
    let (dev, fin) = (case.image(":dev"), case.image(":final"));
    write(dir.path(), "a.txt", "a\n");
    write(dir.path(), "b.txt", "b\n");
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM scratch AS files\nARG GREETING=none\nCOPY a.txt /files/a.txt\nLABEL greeting=$GREETING\n\
             FROM files AS dev\nCOPY b.txt /dev-only/b.txt\n\
             FROM {base} AS final\nARG GREETING=none\nRUN echo \"$GREETING from RUN\" > /greeting.txt\nCOPY --from=files /files/a.txt /final/a.txt\n"
        ),
    );
    // The `dev` target: a FROM-scratch chain; the later stages must not be built.
    let out = image_build(host)
        .args([
            "--tag",
            &dev,
            "--target",
            "dev",
            "--build-arg",
            "GREETING=hello",
        ])
        .args(["--consumer", &consumer, "--context"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{dev}\n"));
    let files = image_files(host, &dev);
    assert!(files.contains_key("files/a.txt"), "{files:?}");
    assert!(files.contains_key("dev-only/b.txt"));
    assert!(!files.contains_key("greeting.txt"));
    let l = labels(host, &dev);
    assert_eq!(l["greeting"], "hello");
    assert_eq!(l["io.kubernaut.e2e.tool"], "image-build");
    assert_eq!(l["io.kubernaut.e2e.consumer"], consumer);
    // (The created labels are there only with SOURCE_DATE_EPOCH or a git commit: see
    // tests/reproducible.rs.)
    for k in [
        "io.kubernaut.e2e.git-commit",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.source",
    ] {
        assert!(l.contains_key(k), "label {k} missing: {l:?}");
    }

    // The last stage, from the local base image, with a RUN step that sees the build arg.
    let out = image_build(host)
        .args([
            "--tag",
            &fin,
            "--build-arg",
            "GREETING=hi there",
            "--consumer",
            &consumer,
        ])
        .args(["--label", "team=e2e", "--context"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = docker(
        host,
        &["run", "--rm", &fin, "cat", "/greeting.txt", "/final/a.txt"],
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "hi there from RUN\na\n"
    );
    let l = labels(host, &fin);
    assert_eq!(l["team"], "e2e");
    assert!(
        !l.contains_key("greeting"),
        "the final stage does not inherit it"
    );
}

/// The same context built by image-build and by `docker build` (classic builder): the files
/// that reach the image must be identical.
#[test]
fn dockerignore_matches_the_docker_cli_and_symlinks_stay_symlinks() {
    let Some((_, case)) = setup(&["DOCKER_HOST"], "ib-ignore") else {
        return;
    };
    let host = case.host.as_str();
    let (consumer, d) = (case.consumer.clone(), case.dir.path());
    let (ours, theirs) = (case.image(":ours"), case.image(":cli"));
    for f in [
        "keep.txt",
        "app.log",
        "src/main.rs",
        "src/debug.log",
        "src/deep/x.tmp",
        "x.tmp",
        "build/out.bin",
        "build/keep.txt",
        "build/sub/keep.txt",
        "docs/a.md",
        // `*.log` has no `**`: it only matches at the top, unlike gitignore.
        "src/debug.log",
        "docs/a.html",
        "docs/sub/b.md",
        "docs/sub/b.html",
        "secret",
        "secxet",
        "secxet",
        "abs",
        "sub/abs",
        "node_modules/p/index.js",
        "node_modules/p/LICENSE",
        "ax.txt",
        "dx.txt",
        "a/b/c/deep.txt",
        "a/b/other.txt",
        "Dockerfile.extra",
        "dir with space/f.txt",
    ] {
        write(d, f, f);
    }
    std::os::unix::fs::symlink("keep.txt", d.join("link-in")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("link-out")).unwrap();
    std::os::unix::fs::symlink("../../outside", d.join("src/link-up")).unwrap();
    write(d, "Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    write(
        d,
        ".dockerignore",
        "# comment\n*.log\n**/*.tmp\nbuild\n!build/keep.txt\ndocs/**\n!docs/**/*.md\nsec?et\n/abs\n\
         node_modules/**/LICENSE\n[a-c]x.txt\na/**/deep.txt\n  dir with space  \nDockerfile*\n",
    );
    let out = image_build(host)
        .args(["--tag", &ours, "--consumer", &consumer, "--context"])
        .arg(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &theirs])
        .arg(d)
        .env("DOCKER_HOST", host)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );

    let a = image_files(host, &ours);
    let b = image_files(host, &theirs);
    let ours_list = under(&a, "ctx");
    assert_eq!(
        ours_list,
        under(&b, "ctx"),
        "image-build and docker build differ"
    );
    // And what that means, spelled out:
    for kept in [
        "keep.txt",
        "src/main.rs",
        "build/keep.txt",
        "docs/a.md",
        "sub/abs",
        "node_modules/p/index.js",
        "dx.txt",
        "a/b/other.txt",
        ".dockerignore",
        "link-in",
    ] {
        assert!(
            ours_list.contains(&kept),
            "{kept} should be sent: {ours_list:?}"
        );
    }
    for gone in [
        "app.log",
        "src/deep/x.tmp",
        "x.tmp",
        "build/out.bin",
        // Docker skips `docs/sub` whole: no `!` pattern starts with `docs/sub/`.
        "docs/sub/b.md",
        "build/sub/keep.txt",
        "docs/a.html",
        "docs/sub/b.html",
        "secret",
        "abs",
        "node_modules/p/LICENSE",
        "ax.txt",
        "a/b/c/deep.txt",
        "dir with space/f.txt",
        "Dockerfile",
        "Dockerfile.extra",
    ] {
        assert!(
            !ours_list.contains(&gone),
            "{gone} should be excluded: {ours_list:?}"
        );
    }
    // Symlinks arrive as symlinks with their targets untouched (nothing outside is read).
    assert_eq!(a["ctx/link-in"], ('l', "keep.txt".into()));
    assert_eq!(a["ctx/link-out"], ('l', "/etc/passwd".into()));
    assert_eq!(a["ctx/src/link-up"], ('l', "../../outside".into()));
}

#[test]
fn context_escapes_are_refused_and_an_outside_dockerfile_works() {
    let Some((_, case)) = setup(&["DOCKER_HOST"], "ib-escape") else {
        return;
    };
    let host = case.host.as_str();
    let (consumer, dir) = (case.consumer.clone(), &case.dir);
    let (bad, outside) = (case.image(":bad"), case.image(":outside"));
    write(dir.path(), "secret.txt", "do not send");
    write(dir.path(), "ctx/ok.txt", "ok");
    write(
        dir.path(),
        "ctx/Dockerfile",
        "FROM scratch\nCOPY ok.txt /\nCOPY sub/../../secret.txt /\n",
    );
    let t0 = Instant::now();
    let out = image_build(host)
        .args(["--tag", &bad, "--consumer", &consumer, "--context"])
        .arg(dir.path().join("ctx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&bad), "{err}");
    assert!(err.contains("COPY sub/../../secret.txt"), "{err}");
    assert!(err.contains("outside the build context"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(!docker(host, &["image", "inspect", &bad]).status.success());

    // A Dockerfile outside the context is sent the way the docker CLI sends it, and does not
    // end up in the image.
    write(
        dir.path(),
        "outside.Dockerfile",
        "FROM scratch\nCOPY . /ctx/\n",
    );
    let out = image_build(host)
        .args(["--tag", &outside, "--consumer", &consumer, "--file"])
        .arg(dir.path().join("outside.Dockerfile"))
        .arg("--context")
        .arg(dir.path().join("ctx"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = image_files(host, &outside);
    let listed = under(&files, "ctx");
    assert_eq!(listed, vec!["Dockerfile", "ok.txt"], "{files:?}");
}

#[test]
fn three_images_in_one_call_then_skip_existing() {
    let Some((tb, case)) = setup(&["DOCKER_HOST", "E2E_BASE_IMAGE"], "ib-three") else {
        return;
    };
    let host = case.host.as_str();
    let base = tb.get("E2E_BASE_IMAGE");
    let (consumer, dir) = (case.consumer.clone(), &case.dir);
    let refs: Vec<String> = (1..=3).map(|i| case.image(&format!("-{i}:t"))).collect();
    for i in 1..=3 {
        write(
            dir.path(),
            &format!("s{i}/Dockerfile"),
            &format!("FROM {base}\nARG N\nRUN sleep 1 && echo \"image $N\" > /n.txt\n"),
        );
    }
    let mut cmd = image_build(host);
    cmd.args(["--jobs", "3", "--consumer", &consumer]);
    for (i, r) in refs.iter().enumerate() {
        let ctx = dir.path().join(format!("s{}", i + 1));
        cmd.arg("--image").arg(format!(
            "tag={r},context={},build-arg=N={}",
            ctx.display(),
            i + 1
        ));
    }
    let t0 = Instant::now();
    let out = cmd.output().unwrap();
    let took = t0.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", refs.join("\n"))
    );
    for (i, r) in refs.iter().enumerate() {
        let l = labels(host, r);
        assert_eq!(l["io.kubernaut.e2e.consumer"], consumer);
        assert_eq!(l["io.kubernaut.e2e.tool"], "image-build");
        let run = docker(host, &["run", "--rm", r, "cat", "/n.txt"]);
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            format!("image {}\n", i + 1)
        );
        // Every log line names its image.
        assert!(
            err.contains(&format!("[{r}] Step 3/4 : RUN sleep 1")),
            "{err}"
        );
    }
    eprintln!("three builds took {took:?}");

    // Again with --skip-existing and --json: nothing is built, all reported as cached.
    let mut cmd = image_build(host);
    cmd.args(["--skip-existing", "--json", "--consumer", &consumer]);
    for r in &refs {
        cmd.arg("--image").arg(format!(
            "tag={r},context={}",
            dir.path().join("s1").display()
        ));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    e2e_core::json::check_shape(&doc, "image-build").unwrap();
    let arr = doc["results"].as_array().unwrap();
    assert_eq!(arr.len(), 3);
    for (v, r) in arr.iter().zip(&refs) {
        assert_eq!(v["reference"], r.as_str());
        assert_eq!(v["status"], "skipped");
        assert_eq!(v["cached"], true);
        assert!(v["id"].as_str().unwrap().starts_with("sha256:"));
        assert!(v["size"].as_i64().is_some() && v["seconds"].as_f64().is_some());
    }
}

#[test]
fn prune_by_consumer_and_age_with_dry_run() {
    let Some((_, case)) = setup(&["DOCKER_HOST"], "ib-prune") else {
        return;
    };
    let host = case.host.as_str();
    let dir = &case.dir;
    let (ca, cb) = (
        e2e_testbed::unique_name("ca"),
        e2e_testbed::unique_name("cb"),
    );
    let a: Vec<String> = (1..=2).map(|i| case.image(&format!("-a{i}:t"))).collect();
    let b = case.image("-b:t");
    write(
        dir.path(),
        "Dockerfile",
        "FROM scratch\nCOPY Dockerfile /\n",
    );
    for (r, c) in [(&a[0], &ca), (&a[1], &ca), (&b, &cb)] {
        let out = image_build(host)
            .args(["--tag", r, "--consumer", c, "--context"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let exists = |r: &str| docker(host, &["image", "inspect", r]).status.success();

    let out = image_build(host)
        .args(["prune", "--consumer", &ca, "--dry-run"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n{}\n", a[0], a[1])
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing removed"));
    assert!(exists(&a[0]) && exists(&a[1]) && exists(&b));

    // Too young for --older-than 1h: nothing.
    let out = image_build(host)
        .args(["prune", "--consumer", &ca, "--older-than", "1h"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(exists(&a[0]));

    std::thread::sleep(Duration::from_millis(2100));
    let out = image_build(host)
        .args(["prune", "--consumer", &ca, "--older-than", "2s"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n{}\n", a[0], a[1])
    );
    assert!(!exists(&a[0]) && !exists(&a[1]));
    assert!(exists(&b), "another consumer's image must stay");

    let out = image_build(host)
        .args(["prune", "--consumer", &cb, "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    e2e_core::json::check_shape(&doc, "image-build").unwrap();
    let doc = &doc["results"];
    assert_eq!(doc[0]["references"][0], b.as_str());
    assert_eq!(doc[0]["removed"], true);
    assert_eq!(doc[0]["status"], "removed");
    assert!(!exists(&b));
}

#[test]
fn a_failing_run_step_names_image_and_step_and_others_finish() {
    let Some((tb, case)) = setup(&["DOCKER_HOST", "E2E_BASE_IMAGE"], "ib-fail") else {
        return;
    };
    let host = case.host.as_str();
    let base = tb.get("E2E_BASE_IMAGE");
    let (name, consumer, dir) = (case.name.clone(), case.consumer.clone(), &case.dir);
    let refs: Vec<String> = ["ok1", "bad", "ok2"]
        .iter()
        .map(|s| case.image(&format!("-{s}:t")))
        .collect();
    write(
        dir.path(),
        "ok/Dockerfile",
        &format!("FROM {base}\nRUN sleep 2 && echo fine > /f\n"),
    );
    write(
        dir.path(),
        "bad/Dockerfile",
        &format!("FROM {base}\nRUN echo before-failure-{name}\nRUN echo about-to-fail && exit 3\nRUN echo never\n"),
    );
    let ctx = |s: &str| dir.path().join(s).display().to_string();
    let out = image_build(host)
        .args(["--consumer", &consumer, "--json"])
        .args(["--image", &format!("tag={},context={}", refs[0], ctx("ok"))])
        .args([
            "--image",
            &format!("tag={},context={}", refs[1], ctx("bad")),
        ])
        .args(["--image", &format!("tag={},context={}", refs[2], ctx("ok"))])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "error: {} failed at `Step 3/5 : RUN echo about-to-fail && exit 3`",
            refs[1]
        )),
        "{err}"
    );
    assert!(err.contains("returned a non-zero code: 3"), "{err}");
    assert!(
        err.contains("| about-to-fail"),
        "the log tail is shown: {err}"
    );
    assert!(err.contains("2 built, 1 failed"), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    e2e_core::json::check_shape(&doc, "image-build").unwrap();
    let doc = &doc["results"];
    assert_eq!(doc[0]["status"], "built");
    assert_eq!(doc[1]["status"], "failed");
    assert_eq!(doc[2]["status"], "built");
    assert!(doc[1]["log_tail"].as_array().unwrap().len() <= 30);

    // Plain output lists only the built ones; --fail-fast stops the others right away.
    let t0 = Instant::now();
    write(
        dir.path(),
        "slow/Dockerfile",
        &format!("FROM {base}\nRUN sleep 60\n"),
    );
    let out = image_build(host)
        .args(["--consumer", &consumer, "--fail-fast", "--no-cache"])
        .args([
            "--image",
            &format!("tag={},context={}", refs[0], ctx("slow")),
        ])
        .args([
            "--image",
            &format!("tag={},context={}", refs[1], ctx("bad")),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--fail-fast"), "{err}");
    assert!(err.contains("1 cancelled"), "{err}");
    // A failed classic build leaves its finished steps as untagged images (the engine keeps
    // them as cache, as with `docker build`); remove this test's.
    let ids = docker(
        host,
        &["images", "-a", "-q", "--no-trunc", "-f", "dangling=true"],
    );
    for id in String::from_utf8_lossy(&ids.stdout).lines() {
        let cmd = docker(
            host,
            &["image", "inspect", "-f", "{{.ContainerConfig.Cmd}}", id],
        );
        if String::from_utf8_lossy(&cmd.stdout).contains(&format!("before-failure-{name}")) {
            let _ = docker(host, &["rmi", id]);
        }
    }
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn timeout_and_ctrl_c_stop_builds_promptly() {
    let Some((tb, case)) = setup(&["DOCKER_HOST", "E2E_BASE_IMAGE"], "ib-stop") else {
        return;
    };
    let host = case.host.as_str();
    let base = tb.get("E2E_BASE_IMAGE");
    let (consumer, dir) = (case.consumer.clone(), &case.dir);
    let r = case.image(":t");
    let marker = format!("sleep 4{}", std::process::id() % 1000);
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {base}\nRUN {marker}\n"),
    );

    let t0 = Instant::now();
    let out = image_build(host)
        .args([
            "--tag",
            &r,
            "--timeout",
            "3s",
            "--no-cache",
            "--consumer",
            &consumer,
            "--context",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(t0.elapsed() < Duration::from_secs(15));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 3s"));

    let running = |m: &str| {
        let ps = docker(host, &["ps", "--no-trunc", "--format", "{{.Command}}"]);
        String::from_utf8_lossy(&ps.stdout).contains(m)
    };
    let wait_until = |cond: &dyn Fn() -> bool, secs: u64| {
        let t = Instant::now();
        while !cond() && t.elapsed() < Duration::from_secs(secs) {
            std::thread::sleep(Duration::from_millis(100));
        }
        cond()
    };
    // The engine stopped the timed-out build too.
    assert!(
        wait_until(&|| !running(&marker), 15),
        "the timed-out build kept running"
    );

    // Ctrl-C (SIGINT) while the RUN step sleeps.
    let bin = assert_cmd::cargo::cargo_bin("image-build");
    let child = std::process::Command::new(bin)
        .args([
            "--tag",
            &r,
            "--no-cache",
            "--consumer",
            &consumer,
            "--context",
        ])
        .arg(dir.path())
        .env("E2E_ENGINE_HOST", host)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(&|| running(&marker), 20),
        "the RUN step never started"
    );
    let t0 = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interrupted"), "{err}");
    // The engine stops the build once its request is closed.
    assert!(
        wait_until(&|| !running(&marker), 15),
        "the build container kept running"
    );
}

#[test]
fn podman_builds_land_in_podmans_store_and_prune_there() {
    let Some((_, case)) = setup(&["E2E_PODMAN_HOST"], "ib-podman") else {
        return;
    };
    let host = case.host.as_str();
    let (consumer, dir) = (case.consumer.clone(), &case.dir);
    let stored = case.image(":t");
    let short = stored.trim_start_matches("localhost/").to_string();
    write(
        dir.path(),
        "Dockerfile",
        "FROM scratch\nARG V\nLABEL v=$V\nCOPY f.txt /\n",
    );
    write(dir.path(), "f.txt", "from podman");
    write(dir.path(), ".dockerignore", "*.tmp\n");
    write(dir.path(), "x.tmp", "no");
    let out = image_build(host)
        .args([
            "--engine",
            "podman",
            "--tag",
            &short,
            "--build-arg",
            "V=7",
            "--consumer",
            &consumer,
        ])
        .arg("--context")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{stored}\n"));
    let l = labels(host, &stored);
    assert_eq!(l["v"], "7");
    assert_eq!(l["io.kubernaut.e2e.consumer"], consumer);
    assert_eq!(l["io.kubernaut.e2e.tool"], "image-build");
    assert!(l.contains_key("org.opencontainers.image.revision"));
    let files = image_files(host, &stored);
    assert!(
        files.contains_key("f.txt") && !files.contains_key("x.tmp"),
        "{files:?}"
    );

    let out = image_build(host)
        .args(["prune", "--consumer", &consumer, "--dry-run"])
        .output()
        .unwrap();
    // The reference, then Podman's per-step cache images (untagged, with the build's labels).
    let listed = |out: &std::process::Output| -> Vec<String> {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        assert_eq!(lines[0], stored, "{text}");
        assert!(
            lines[1..].iter().all(|l| l.starts_with("sha256:")),
            "{text}"
        );
        lines
    };
    let would = listed(&out);
    let out = image_build(host)
        .args(["prune", "--consumer", &consumer])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listed(&out), would);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("kept"));
    assert!(!docker(host, &["image", "inspect", &stored])
        .status
        .success());
}

#[test]
fn an_unreachable_engine_fails_fast_listing_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on: a stopped daemon.
    let sock = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    for host in [
        format!("unix://{}", sock.display()),
        "unix:///nonexistent/docker.sock".into(),
    ] {
        let t0 = Instant::now();
        let out = image_build(&host)
            .args(["--tag", "localhost/x:y", "--context", "."])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(t0.elapsed() < Duration::from_secs(5));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot reach") && err.contains(&host), "{err}");
    }
}

//! The conventions every tool shares, on kind-load's command line: the testbed's variables are
//! read (E2E_KIND_CLUSTER), boolean variables take every spelling, a set DOCKER_HOST is the
//! only engine tried, old names warn, clap errors carry the name, --json has the one shape.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_kind-load");
const NOWHERE: &str = "unix:///nonexistent/kind-load-test.sock";

fn kind_load(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("KIND_") || k.starts_with("E2E_") || k == "DOCKER_HOST" {
            c.env_remove(k);
        }
    }
    c.args(args).envs(env.iter().copied()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn an_unreachable_docker_host_is_an_error_naming_it() {
    let o = kind_load(&["localhost/x:1"], &[("DOCKER_HOST", NOWHERE)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(NOWHERE) && err.contains("DOCKER_HOST is set"),
        "{err}"
    );
    assert!(!err.contains("/var/run/docker.sock"), "no fallback: {err}");
}

#[test]
fn boolean_variables_and_durations_reach_the_engine_step() {
    for (word, d) in [("1", "1h30m"), ("yes", "5"), ("ON", "7d"), ("off", "90s")] {
        let o = kind_load(
            &["localhost/x:1"],
            &[
                ("DOCKER_HOST", NOWHERE),
                ("KIND_LOAD_JSON", word),
                ("KIND_LOAD_FORCE", word),
                ("KIND_LOAD_QUIET", word),
                ("KIND_LOAD_VERBOSE", word),
                ("KIND_LOAD_TIMEOUT", d),
                ("KIND_LOAD_IO_TIMEOUT", d),
            ],
        );
        // Exit 1 (the engine), not 2 (a value refused).
        assert_eq!(o.status.code(), Some(1), "{word} {d}: {}", text(&o.stderr));
    }
}

#[test]
fn old_names_warn_and_clap_errors_carry_the_name() {
    let o = kind_load(&["-n", "c", "images"], &[("DOCKER_HOST", NOWHERE)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("kind-load: warning: -n is deprecated; use --cluster"),
        "{err}"
    );
    let o = kind_load(&["--timeout", "soon", "x"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("kind-load: error: invalid value 'soon'"),
        "{err}"
    );
}

#[test]
fn the_testbed_cluster_variable_is_read_and_json_has_the_one_shape() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_KIND_CLUSTER"]) else {
        return;
    };
    let host = tb.get("DOCKER_HOST");
    let cluster = tb.get("E2E_KIND_CLUSTER");
    // As after sourcing the testbed's env file: no --cluster.
    let o = kind_load(
        &["--json", "images"],
        &[("DOCKER_HOST", host), ("E2E_KIND_CLUSTER", cluster)],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    e2e_core::json::check_shape(&doc, "kind-load").unwrap();
    let nodes = doc["results"].as_array().unwrap();
    assert!(!nodes.is_empty());
    for n in nodes {
        assert!(n["node"].as_str().unwrap().starts_with(cluster), "{n}");
        assert_eq!(n["status"], "ok", "{n}");
    }
    // KIND_CLUSTER_NAME is still honoured, without a warning.
    let o = kind_load(
        &["images", "--json"],
        &[("DOCKER_HOST", host), ("KIND_CLUSTER_NAME", cluster)],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        !text(&o.stderr).contains("deprecated"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_load_prints_the_one_json_shape() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_KIND_CLUSTER"]) else {
        return;
    };
    let host = tb.get("DOCKER_HOST");
    let cluster = tb.get("E2E_KIND_CLUSTER");
    let name = format!("localhost/{}:1", e2e_testbed::unique_name("kljson"));
    // A one-file image of its own, loaded into one node and removed again.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "json shape\n").unwrap();
    let tar = Command::new("tar")
        .args(["-C", dir.path().to_str().unwrap(), "-cf", "-", "f"])
        .output()
        .unwrap();
    let mut import = Command::new("docker")
        .args(["-H", host, "import", "-", &name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    import.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(import.wait().unwrap().success());
    let node = format!("{cluster}-control-plane");
    let env = [("DOCKER_HOST", host)];
    let o = kind_load(
        &["--cluster", cluster, "--nodes", &node, "--json", &name],
        &env,
    );
    let again = kind_load(
        &["--cluster", cluster, "--nodes", &node, "--json", &name],
        &env,
    );
    let _ = Command::new("docker")
        .args([
            "-H", host, "exec", &node, "ctr", "-n", "k8s.io", "images", "rm", &name,
        ])
        .output();
    let _ = Command::new("docker")
        .args(["-H", host, "rmi", &name])
        .output();
    assert!(o.status.success(), "{}", text(&o.stderr));
    for (out, want) in [(&o, "loaded"), (&again, "already-present")] {
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        e2e_core::json::check_shape(&doc, "kind-load").unwrap();
        assert_eq!(doc["cluster"], cluster, "{doc}");
        let rows = doc["results"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{doc}");
        assert_eq!(rows[0]["status"], want, "{doc}");
        assert_eq!(rows[0]["node"], node.as_str(), "{doc}");
    }
}

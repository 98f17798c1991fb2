//! ds-deploy against the testbed's real cluster: real pods, real PostgreSQL migrations, the
//! example DataStorage answering over HTTPS with the bundle's CA.

mod common;

use common::*;
use serde_json::Value;
use std::time::Instant;

fn data(name: &str) -> String {
    root()
        .join("ds-deploy/tests/data")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn up_serves_https_then_a_second_up_changes_nothing_and_down_removes_everything() {
    let Some(env) = env() else { return };
    let ns = Ns::new(&env, "dsd-up");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let mut args = ns.up_args(&examples_migrations());
    let (crd, cr) = (data("crd.yaml"), data("cr.yaml"));
    args.extend(
        [
            "--ca-out",
            ca.to_str().unwrap(),
            "--crds",
            &crd,
            "--manifests",
            &cr,
            "--json",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let out = ds_deploy(&env, &args);
    assert!(out.status.success(), "up failed:\n{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    e2e_core::json::check_shape(&doc, "ds-deploy").unwrap();
    assert_eq!(doc["status"], "ready", "{doc}");
    assert_eq!(doc["changed"], true);
    let migrations = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "migrations")
        .expect("a migrations step")
        .clone();
    let files = std::fs::read_dir(examples_migrations())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count();
    assert_eq!(migrations["migrations"].as_array().unwrap().len(), files);

    // The migrations are in the ledger (goose's, as upstream).
    let ledger = kubectl(
        &env,
        &[
            "-n",
            &ns.name,
            "exec",
            "deploy/postgresql",
            "--",
            "psql",
            "-U",
            "slm_user",
            "-d",
            "action_history",
            "-tAc",
            "SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied",
        ],
    );
    assert_eq!(
        text(&ledger.stdout).trim(),
        files.to_string(),
        "{}",
        text(&ledger.stderr)
    );

    // Health through the health NodePort; the audit API over HTTPS, verified with the CA.
    let port = |k: &str| {
        doc["node_ports"][k]
            .as_i64()
            .unwrap_or_else(|| panic!("{k}: {doc}"))
    };
    let (code, body) = curl(&[&format!("http://127.0.0.1:{}/readyz", port("health"))]);
    assert_eq!(code, 200, "{body}");
    let api = format!("https://localhost:{}/api/v1/audit/events", port("api"));
    let correlation = format!("corr-{}", ns.name);
    let event = serde_json::json!({
        "correlation_id": correlation,
        "event_type": "ds-deploy.test",
        "event_data": {"written_by": "ds-deploy tests"}
    })
    .to_string();
    let ca_arg = ca.to_str().unwrap();
    let (code, body) = curl(&[
        "--cacert",
        ca_arg,
        "-H",
        "Content-Type: application/json",
        "-d",
        &event,
        &api,
    ]);
    assert_eq!(code, 201, "{body}");
    let (code, body) = curl(&[
        "--cacert",
        ca_arg,
        &format!("{api}?correlation_id={correlation}"),
    ]);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(&correlation) && body.contains("ds-deploy tests"),
        "{body}"
    );

    // The custom resource went in after its CRD.
    let cr_get = kubectl(
        &env,
        &[
            "-n",
            &ns.name,
            "get",
            "dsdeploytests",
            "sample",
            "-o",
            "name",
        ],
    );
    assert!(cr_get.status.success(), "{}", text(&cr_get.stderr));

    // Again: nothing applied, certificates reused, no migration pending.
    let t = Instant::now();
    let again = ds_deploy(&env, &args);
    let took = t.elapsed();
    assert!(
        again.status.success(),
        "second up failed:\n{}",
        text(&again.stderr)
    );
    let doc2: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(doc2["changed"], false, "{doc2}");
    for s in doc2["results"].as_array().unwrap() {
        assert!(
            ["unchanged", "reused", "ready"].contains(&s["status"].as_str().unwrap()),
            "{s}"
        );
        assert_eq!(s["created"], 0, "{s}");
        assert_eq!(s["configured"], 0, "{s}");
    }
    assert!(
        text(&again.stderr).contains("nothing to do"),
        "{}",
        text(&again.stderr)
    );
    eprintln!("second up took {took:?}");

    // down: nothing of the bundle is left, cluster-scoped objects included.
    let down = ds_deploy(&env, &["down", "-N", &ns.name]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    let left = kubectl(
        &env,
        &[
            "-n",
            &ns.name,
            "get",
            "deploy,svc,cm,secret,sa,pvc,pods,dsdeploytests",
            "-l",
            "app.kubernetes.io/managed-by=ds-deploy",
            "-o",
            "name",
        ],
    );
    assert_eq!(
        text(&left.stdout).trim(),
        "",
        "left behind: {}",
        text(&left.stdout)
    );
    let binding = kubectl(
        &env,
        &[
            "get",
            "clusterrolebinding",
            &format!("data-storage-auth-middleware-{}", ns.name),
        ],
    );
    assert!(
        !binding.status.success(),
        "the ClusterRoleBinding is still there"
    );
}

#[test]
fn render_is_accepted_by_the_api_server_and_shows_no_secret() {
    let Some(env) = env() else { return };
    let ns = Ns::new(&env, "dsd-render");
    let created = kubectl(&env, &["create", "namespace", &ns.name]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let out = ds_deploy(
        &env,
        &[
            "render",
            "-N",
            &ns.name,
            "--image",
            &env.ds_image,
            "--postgres-storage",
            "pvc:2Gi",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(!yaml.contains("PRIVATE KEY"));
    assert!(!yaml.contains("dGVzdF9wYXNzd29yZA")); // base64 of the default password
    assert!(yaml.contains("kind: PersistentVolumeClaim"));

    let mut apply = std::process::Command::new("kubectl")
        .args([
            "--kubeconfig",
            &env.kubeconfig,
            "apply",
            "--dry-run=server",
            "-f",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    apply
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let res = apply.wait_with_output().unwrap();
    assert!(
        res.status.success(),
        "kubectl refused the render:\n{}",
        text(&res.stderr)
    );
    assert!(
        text(&res.stdout).contains("deployment.apps/datastorage"),
        "{}",
        text(&res.stdout)
    );
}

#[test]
fn two_bundles_side_by_side_and_down_of_one_leaves_the_other_ready() {
    let Some(env) = env() else { return };
    let a = Ns::new(&env, "dsd-a");
    let b = Ns::new(&env, "dsd-b");
    let migrations = examples_migrations();
    let (args_a, args_b) = (a.up_args(&migrations), b.up_args(&migrations));
    let (out_a, out_b) = std::thread::scope(|s| {
        let ta =
            s.spawn(|| ds_deploy(&env, &args_a.iter().map(String::as_str).collect::<Vec<_>>()));
        let tb =
            s.spawn(|| ds_deploy(&env, &args_b.iter().map(String::as_str).collect::<Vec<_>>()));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert!(out_a.status.success(), "bundle a:\n{}", text(&out_a.stderr));
    assert!(out_b.status.success(), "bundle b:\n{}", text(&out_b.stderr));

    let down = ds_deploy(&env, &["down", "-N", &a.name]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        text(&down.stderr).contains("kept ClusterRoles"),
        "{}",
        text(&down.stderr)
    );
    let status = ds_deploy(&env, &["status", "-N", &b.name, "--json"]);
    assert!(status.status.success(), "{}", text(&status.stderr));
    let doc: Value = serde_json::from_slice(&status.stdout).unwrap();
    e2e_core::json::check_shape(&doc, "ds-deploy").unwrap();
    for row in doc["results"].as_array().unwrap() {
        assert_eq!(row["status"], "ready", "{doc}");
    }
    // b's DataStorage still has its cluster RBAC.
    let role = kubectl(
        &env,
        &["get", "clusterrole", "data-storage-auth-middleware"],
    );
    assert!(role.status.success(), "{}", text(&role.stderr));
}

#[test]
fn interrupted_up_exits_130_and_up_again_converges() {
    let Some(env) = env() else { return };
    let ns = Ns::new(&env, "dsd-int");
    let args = ns.up_args(&examples_migrations());
    let bin = assert_cmd::cargo::cargo_bin("ds-deploy");
    let child = std::process::Command::new(&bin)
        .args(&args)
        .env("E2E_KUBECONFIG", &env.kubeconfig)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once PostgreSQL's Deployment exists: mid-way through the bundle.
    let start = Instant::now();
    loop {
        let got = kubectl(
            &env,
            &["-n", &ns.name, "get", "deploy", "postgresql", "-o", "name"],
        );
        if got.status.success() || start.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("run the same command again"),
        "{}",
        text(&out.stderr)
    );

    let again = ds_deploy(&env, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(again.status.success(), "{}", text(&again.stderr));
}

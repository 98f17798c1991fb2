//! Every failure a user meets is diagnosed with the right hint, within its timeout, and bad
//! input is refused (exit 2, one line) before anything is applied.

mod common;

use common::*;

fn up(env: &Env, ns: &Ns, migrations: &str, extra: &[&str]) -> std::process::Output {
    let mut args = ns.up_args(migrations);
    args.extend(extra.iter().map(|s| s.to_string()));
    ds_deploy(env, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn stderr(o: &std::process::Output) -> String {
    text(&o.stderr)
}

#[test]
fn an_image_the_node_lacks_is_diagnosed_with_the_kind_load_hint() {
    let Some(env) = env() else { return };
    let ns = Ns::new(&env, "dsd-noimg");
    let out = up(
        &env,
        &ns,
        &examples_migrations(),
        &[
            "--image",
            "localhost/datastorage-not-built:nope",
            "--timeout",
            "3m",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ErrImageNeverPull"), "{err}");
    assert!(err.contains("kind-load --cluster"), "{err}");
    assert!(err.contains("Diagnosis of namespace"), "{err}");
}

/// An image whose process says why it cannot start, then exits 3.
fn crashing_image(env: &Env) -> String {
    const REF: &str = "localhost/datastorage-crashing:ds-deploy-tests";
    let dockerfile = format!(
        "FROM {}\nCMD [\"sh\", \"-c\", \"echo 'datastorage: cannot open the audit store: simulated start-up failure' >&2; exit 3\"]\n",
        env.base_image
    );
    let mut build = std::process::Command::new("docker")
        .args(["build", "-q", "-t", REF, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run docker build");
    use std::io::Write;
    build
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    assert!(
        build.wait().unwrap().success(),
        "docker build of the crashing image failed"
    );
    REF.to_string()
}

#[test]
fn a_datastorage_that_crashes_at_start_shows_its_logs() {
    let Some(env) = env() else { return };
    let ns = Ns::new(&env, "dsd-crash");
    let image = crashing_image(&env);
    let out = up(
        &env,
        &ns,
        &examples_migrations(),
        &["--image", &image, "--timeout", "4m"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("CrashLoopBackOff"), "{err}");
    assert!(err.contains("log lines of datastorage"), "{err}");
    assert!(
        err.contains("simulated start-up failure"),
        "the container's own words: {err}"
    );
    assert!(err.contains("exit code 3"), "{err}");
}

#[test]
fn a_failing_migration_names_the_file_and_deploys_no_datastorage() {
    let Some(env) = env() else { return };
    let ns = Ns::new(&env, "dsd-mig");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("001_ok.sql"),
        "-- +goose Up\nCREATE TABLE ok (id int);\n-- +goose Down\nDROP TABLE ok;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("002_broken.sql"),
        "-- +goose Up\nCREATE TABLE two (id int);\nINSERT INTO missing_table VALUES (1);\n",
    )
    .unwrap();
    let out = up(&env, &ns, dir.path().to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("002_broken.sql"), "{err}");
    assert!(err.contains("missing_table"), "{err}");
    assert!(err.contains("DataStorage was not deployed"), "{err}");
    let ds = kubectl(&env, &["-n", &ns.name, "get", "deploy", "datastorage"]);
    assert!(
        !ds.status.success(),
        "DataStorage was deployed after a failed migration"
    );
}

#[test]
fn a_custom_resource_without_its_crd_says_to_pass_crds() {
    let Some(env) = env() else { return };
    let ns = Ns::new(&env, "dsd-nocrd");
    let cr = root().join("ds-deploy/tests/data/cr-without-crd.yaml");
    let out = up(
        &env,
        &ns,
        &examples_migrations(),
        &["--manifests", cr.to_str().unwrap(), "--skip-migrations"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("NeverInstalled"), "{err}");
    assert!(err.contains("--crds"), "{err}");
}

#[test]
fn a_wrong_kubeconfig_or_context_is_one_line_and_exit_2() {
    let Some(env) = env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.yaml");
    std::fs::write(
        &dead,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n\
         contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\nusers:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    let cases: Vec<Vec<String>> = vec![
        vec!["--kubeconfig".into(), "/nonexistent/kubeconfig".into()],
        vec!["--context".into(), "no-such-context".into()],
        vec!["--kubeconfig".into(), dead.display().to_string()],
    ];
    for extra in cases {
        let mut args = vec!["status".to_string()];
        args.extend(extra.clone());
        let out = ds_deploy(&env, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.starts_with("ds-deploy: error:"), "{err}");
    }
}

#[test]
fn bad_values_are_refused_before_anything_is_applied() {
    let Some(env) = env() else { return };
    let ns = Ns::new(&env, "dsd-bad");
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, "postgres-imag: x\n").unwrap();
    let vals = values.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--values", vals], "postgres-imag"),
        (vec!["--image", "Bad Image:1"], "Bad Image:1"),
        (
            vec!["--migrations-dir", "/nonexistent/migrations"],
            "/nonexistent/migrations",
        ),
        (vec!["--timeout", "soon"], "soon"),
    ];
    for (extra, named) in cases {
        let out = up(&env, &ns, &examples_migrations(), &extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(named),
            "{extra:?} should name `{named}`: {err}"
        );
    }
    let got = kubectl(&env, &["get", "namespace", &ns.name]);
    assert!(
        !got.status.success(),
        "the namespace was created by a refused run"
    );
}

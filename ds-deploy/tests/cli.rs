//! The command line alone (no cluster): the conventions every tool shares.

use std::process::{Command, Output};

fn ds_deploy(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ds-deploy"));
    c.args(args).env_remove("E2E_KUBECONFIG");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn boolean_variables_take_every_spelling() {
    for word in ["1", "yes", "ON", "true"] {
        let out = ds_deploy(
            &["render", "--image", "localhost/ds:e2e"],
            &[("DS_DEPLOY_SHOW_SECRETS", word), ("DS_DEPLOY_QUIET", word)],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{word}: {err}");
        // Secrets are shown only when asked: the variable was read as true.
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("dGVzdF9wYXNzd29yZA=="), // test_password
            "{word}"
        );
    }
    let out = ds_deploy(
        &["render", "--image", "localhost/ds:e2e"],
        &[("DS_DEPLOY_SHOW_SECRETS", "no")],
    );
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("dGVzdF9wYXNzd29yZA=="));
}

#[test]
fn durations_take_the_one_syntax_and_errors_carry_the_tool_name() {
    for d in ["1h30m", "5", "7d"] {
        let out = ds_deploy(
            &[
                "up",
                "--image",
                "x:1",
                "--skip-migrations",
                "--timeout",
                d,
                "--step-timeout",
                d,
            ],
            &[("E2E_KUBECONFIG", "/nonexistent/kubeconfig")],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        // Past parsing: the kubeconfig is what fails.
        assert!(!err.contains("invalid value"), "{d}: {err}");
        assert!(err.contains("/nonexistent/kubeconfig"), "{d}: {err}");
    }
    let out = ds_deploy(&["up", "--timeout", "soon"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("ds-deploy: error: invalid value 'soon'"),
        "{err}"
    );
}

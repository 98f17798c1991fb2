//! The command line itself: help with examples and env vars, usage errors (exit 2).

use assert_cmd::Command;

fn ib() -> Command {
    let mut c = Command::cargo_bin("image-build").unwrap();
    for k in [
        "IMAGE_BUILD_TAG",
        "IMAGE_BUILD_IMAGES",
        "IMAGE_BUILD_SPEC",
        "E2E_ENGINE_HOST",
    ] {
        c.env_remove(k);
    }
    c
}

#[test]
fn help_has_examples_and_every_flag_names_its_env_var() {
    let out = ib().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:"));
    for env in [
        "IMAGE_BUILD_TAG",
        "IMAGE_BUILD_FILE",
        "IMAGE_BUILD_CONTEXT",
        "IMAGE_BUILD_IMAGES",
        "IMAGE_BUILD_SPEC",
        "IMAGE_BUILD_BUILD_ARGS",
        "IMAGE_BUILD_TARGET",
        "IMAGE_BUILD_LABELS",
        "IMAGE_BUILD_NO_CACHE",
        "IMAGE_BUILD_PLATFORM",
        "IMAGE_BUILD_PULL",
        "E2E_CONSUMER",
        "IMAGE_BUILD_JOBS",
        "IMAGE_BUILD_FAIL_FAST",
        "IMAGE_BUILD_TIMEOUT",
        "IMAGE_BUILD_SKIP_EXISTING",
        "IMAGE_BUILD_JSON",
        "E2E_ENGINE",
        "E2E_ENGINE_HOST",
        "IMAGE_BUILD_QUIET",
    ] {
        assert!(
            help.contains(&format!("env: {env}")),
            "{env} missing from --help"
        );
    }
    let out = ib().args(["prune", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for env in [
        "E2E_CONSUMER",
        "IMAGE_BUILD_OLDER_THAN",
        "IMAGE_BUILD_DRY_RUN",
    ] {
        assert!(
            help.contains(&format!("env: {env}")),
            "{env} missing from prune --help"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    let out = ib().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to build"));
    let out = ib()
        .args(["--image", "context=.,tag=Bad:Ref"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("uppercase"));
    let out = ib()
        .args(["--tag", "x:1", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = ib()
        .args(["--tag", "x:1", "--label", "io.kubernaut.e2e.tool=mine"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn env_vars_drive_the_same_flags() {
    // IMAGE_BUILD_IMAGES takes several specs separated by `;` (a bad one proves it is read).
    let out = ib()
        .env("IMAGE_BUILD_IMAGES", "tag=x/a:1;tag=x/a:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listed twice"));
}

/// A context with a Dockerfile, for runs that get as far as the engine.
fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    dir
}

/// An engine address that exists nowhere: the run gets past parsing and fails at the engine.
const NOWHERE: &str = "unix:///nonexistent/image-build-test.sock";

#[test]
fn an_unreachable_docker_host_is_an_error_naming_it() {
    let dir = context();
    let out = ib()
        .env_remove("E2E_ENGINE")
        .env("DOCKER_HOST", NOWHERE)
        .args(["--tag", "localhost/x:1", "--context"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(NOWHERE) && err.contains("DOCKER_HOST is set"),
        "{err}"
    );
    assert!(!err.contains("/var/run/docker.sock"), "no fallback: {err}");
}

#[test]
fn boolean_variables_take_every_spelling_and_durations_one_syntax() {
    let dir = context();
    for (word, timeout) in [("1", "1h30m"), ("yes", "5"), ("ON", "7d"), ("false", "90s")] {
        let out = ib()
            .env("DOCKER_HOST", NOWHERE)
            .env("IMAGE_BUILD_JSON", word)
            .env("IMAGE_BUILD_QUIET", word)
            .env("IMAGE_BUILD_NO_CACHE", word)
            .env("IMAGE_BUILD_VERBOSE", word)
            .env("IMAGE_BUILD_TIMEOUT", timeout)
            .args(["--tag", "localhost/x:1", "--context"])
            .arg(dir.path())
            .output()
            .unwrap();
        // Exit 1 (the engine), not 2 (a value refused).
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{word} {timeout}: {err}");
        let out = ib()
            .env("DOCKER_HOST", NOWHERE)
            .env("IMAGE_BUILD_DRY_RUN", word)
            .env("IMAGE_BUILD_OLDER_THAN", timeout)
            .arg("prune")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "prune {word} {timeout}");
    }
}

#[test]
fn global_flags_go_before_or_after_the_subcommand() {
    for args in [
        &["--json", "-q", "prune"][..],
        &["prune", "--json", "-q"],
        &["--engine", "docker", "prune"],
    ] {
        let out = ib()
            .env("DOCKER_HOST", NOWHERE)
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    }
}

#[test]
fn clap_errors_carry_the_tool_name_and_exit_2() {
    let out = ib()
        .args(["--tag", "x:1", "--timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("image-build: error: invalid value 'soon'"),
        "{err}"
    );
    let out = ib().arg("--no-such-flag").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("image-build: error: "), "{err}");
}

#[test]
fn old_variable_names_still_work_with_a_warning() {
    let dir = context();
    let out = ib()
        .env("DOCKER_HOST", NOWHERE)
        .env("IMAGE_BUILD_ARGS", "A=1")
        .args(["--tag", "localhost/x:1", "--context"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("image-build: warning: environment variable IMAGE_BUILD_ARGS is deprecated; use IMAGE_BUILD_BUILD_ARGS"),
        "{err}"
    );
}

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
        "IMAGE_BUILD_ARGS",
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

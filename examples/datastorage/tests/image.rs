//! The Dockerfile makes an image that runs: built on the testbed's base image with the test
//! build's binary, run with the upstream mounts (config at /etc/datastorage, secrets, certs at
//! /etc/tls) as the non-root user, ready against the testbed's PostgreSQL and Redis.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// The docker CLI against the testbed's engine.
fn docker(args: &[&str]) -> std::process::Output {
    let host = e2e_testbed::Testbed::load().get("DOCKER_HOST").to_string();
    Command::new("docker")
        .env("DOCKER_HOST", host)
        .args(args)
        .output()
        .expect("run the docker CLI")
}

/// Removes the test's container and image even when an assertion fails.
struct Cleanup {
    container: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.container]);
        let _ = docker(&["rmi", "-f", &self.image]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_runs_as_non_root_with_the_upstream_mounts() {
    let Some(tb) = e2e_testbed::require(&[
        "DOCKER_HOST",
        "E2E_BASE_IMAGE",
        "E2E_DATABASE_URL",
        "E2E_REDIS_URL",
    ]) else {
        return;
    };
    let db = TestDb::create(tb.get("E2E_DATABASE_URL")).await;
    db.migrate_up().await;
    let setup = Setup::new(&db, tb.get("E2E_REDIS_URL"));
    let certs = TestCerts::write(&setup.cert_dir(), KeyForm::Sec1);
    let config = setup.write();
    // Inside the container the files sit at the upstream paths; ports fixed, host network.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (api, health, metrics) = (free(), free(), free());
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("port: 0", &format!("port: {api}"))
        .replace("healthPort: 0", &format!("healthPort: {health}"))
        .replace("metricsPort: 0", &format!("metricsPort: {metrics}"))
        .replace(&setup.cert_dir().display().to_string(), "/etc/tls")
        .replace(
            &setup.dir.path().display().to_string(),
            "/etc/datastorage/secrets",
        );
    let etc = setup.dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(etc.join("config.yaml"), text).unwrap();
    // The mount point of the secrets inside the config mount, as the kubelet would make it.
    std::fs::create_dir(etc.join("secrets")).unwrap();
    // The tempdir is 0700; the container's user 65532 must be able to enter it.
    chmod_tree(setup.dir.path());

    let context = tempfile::tempdir().unwrap();
    std::fs::copy(BIN, context.path().join("datastorage-example")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"),
        context.path().join("Dockerfile"),
    )
    .unwrap();
    let name = e2e_testbed::unique_name("dsx-image");
    let cleanup = Cleanup {
        container: name.clone(),
        image: format!("localhost/{name}:test"),
    };
    let build = docker(&[
        "build",
        "-q",
        "--build-arg",
        &format!("BASE_IMAGE={}", tb.get("E2E_BASE_IMAGE")),
        "-t",
        &cleanup.image,
        &context.path().display().to_string(),
    ]);
    assert!(
        build.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&build.stderr)
    );

    let d = setup.dir.path().display().to_string();
    let run = docker(&[
        "run",
        "-d",
        "--name",
        &cleanup.container,
        "--network",
        "host",
        "-e",
        "POD_NAMESPACE=dsx-image",
        "-v",
        &format!("{d}/etc:/etc/datastorage:ro"),
        "-v",
        &format!("{d}:/etc/datastorage/secrets:ro"),
        "-v",
        &format!("{}:/etc/tls:ro", setup.cert_dir().display()),
        &cleanup.image,
    ]);
    assert!(
        run.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    let ready = std::panic::catch_unwind(|| {
        wait_for_status(
            &format!("http://127.0.0.1:{health}/readyz"),
            200,
            Duration::from_secs(20),
        )
    });
    let logs = docker(&["logs", &cleanup.container]);
    let logs = String::from_utf8_lossy(&logs.stdout).to_string();
    assert!(ready.is_ok(), "not ready; container log:\n{logs}");
    assert!(logs.contains("API serves HTTPS"), "{logs}");
    let r = request(
        "POST",
        &format!("https://localhost:{api}/api/v1/audit/events"),
        Some(r#"{"correlation_id":"image","event_type":"t","event_data":{}}"#),
        Some(&certs.ca_pem),
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);

    let user = docker(&["exec", &cleanup.container, "id", "-u"]);
    assert_eq!(String::from_utf8_lossy(&user.stdout).trim(), "65532");
    let stop = docker(&["stop", "-t", "10", &cleanup.container]);
    assert!(stop.status.success());
    let code = docker(&["inspect", "-f", "{{.State.ExitCode}}", &cleanup.container]);
    assert_eq!(
        String::from_utf8_lossy(&code.stdout).trim(),
        "0",
        "exit after SIGTERM"
    );
}

fn chmod_tree(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            chmod_tree(&path);
        } else {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

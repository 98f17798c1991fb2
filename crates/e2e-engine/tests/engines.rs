//! Engine discovery against the testbed's real dockerd and Podman API service.

use e2e_engine::{connect, EngineChoice, Flavor};

#[tokio::test]
async fn finds_docker_and_negotiates_its_api() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST"]) else {
        return;
    };
    let e = connect(EngineChoice::Docker, Some(tb.get("DOCKER_HOST")))
        .await
        .unwrap();
    assert_eq!(e.flavor, Flavor::Docker);
    // Debian's dockerd 20.10 speaks API 1.41; bollard's default (1.53) must have been lowered.
    assert_eq!(e.api_version, "1.41");
    e.client.ping().await.unwrap();
}

#[tokio::test]
async fn finds_podman_by_flavour() {
    let Some(tb) = e2e_testbed::require(&["E2E_PODMAN_HOST"]) else {
        return;
    };
    let e = connect(EngineChoice::Podman, Some(tb.get("E2E_PODMAN_HOST")))
        .await
        .unwrap();
    assert_eq!(e.flavor, Flavor::Podman);
    assert!(e.to_string().starts_with("podman "), "{e}");
}

#[tokio::test]
async fn a_docker_socket_is_not_taken_for_podman() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST"]) else {
        return;
    };
    let err = connect(EngineChoice::Podman, Some(tb.get("DOCKER_HOST")))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("answered, but it is docker"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_stopped_daemon_is_reported_quickly() {
    // A socket file nobody listens on is what a killed daemon leaves behind.
    let dir = std::env::temp_dir().join(e2e_testbed::unique_name("dead-engine"));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let url = format!("unix://{}", sock.display());
    let start = std::time::Instant::now();
    let err = connect(EngineChoice::Auto, Some(&url)).await.unwrap_err();
    assert!(start.elapsed().as_secs() < 5);
    assert!(
        err.message
            .contains("connection refused (is the daemon running?)"),
        "{}",
        err.message
    );
    assert!(err.message.contains(&url));
    std::fs::remove_dir_all(dir).unwrap();
}

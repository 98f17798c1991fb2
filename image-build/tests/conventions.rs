//! Stderr as the conventions say, on a real engine: `-q` prints nothing on success (no
//! summary), and a terminal with `TERM=dumb` gets plain progress lines instead of live ones.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_image-build");

struct Built {
    host: String,
    consumer: String,
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args([
                "prune",
                "-q",
                "--consumer",
                &self.consumer,
                "--host",
                &self.host,
            ])
            .output();
    }
}

fn context(base: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo conventions-step-output\n"),
    )
    .unwrap();
    dir
}

#[test]
fn quiet_prints_nothing_and_a_dumb_terminal_gets_plain_lines() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_BASE_IMAGE"]) else {
        return;
    };
    let built = Built {
        host: tb.get("DOCKER_HOST").to_string(),
        consumer: e2e_testbed::unique_name("ibq"),
    };
    let dir = context(tb.get("E2E_BASE_IMAGE"));
    let tag = format!("localhost/{}:1", built.consumer);
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args([
                "--host",
                &built.host,
                "--consumer",
                &built.consumer,
                "--no-cache",
            ])
            .args(["--tag", &tag, "--context"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["-q"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{tag}\n"));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "-q prints nothing on success"
    );
    // Without -q the summary is there, so the check above can fail.
    let out = run(&[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 image(s) in"));

    // A real terminal (script(1) gives the run a pty) that cannot redraw: plain lines, each
    // build output line prefixed with its image.
    let mut line = format!(
        "{BIN} --host {} --consumer {} --no-cache --tag {tag} --context {}",
        built.host,
        built.consumer,
        dir.path().display()
    );
    line.push_str(" 2>&1");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "dumb")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("[{tag}]")) && text.contains("conventions-step-output"),
        "TERM=dumb shows the build's lines: {text}"
    );
}

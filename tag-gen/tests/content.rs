//! `tag-gen content` through the real binary: what changes the tag and what does not, the
//! output formats, several images from image-build's spec file and `--image` specs.

use assert_cmd::Command;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn tag_gen() -> Command {
    let mut c = Command::cargo_bin("tag-gen").unwrap();
    for (k, _) in std::env::vars() {
        if k.starts_with("TAG_GEN_") || k == "E2E_CONSUMER" || k == "E2E_REGISTRY" {
            c.env_remove(k);
        }
    }
    c
}

fn write(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// The example context: a Dockerfile with a build arg and two stages, a .dockerignore.
fn context(d: &Path) {
    write(
        d,
        "Dockerfile",
        "FROM scratch AS build\nARG V\nCOPY . /src/\nFROM scratch AS prod\nCOPY --from=build /src /\n",
    );
    write(d, ".dockerignore", "*.log\ntmp\n");
    write(d, "src/main.rs", "fn main() {}\n");
    write(d, "README", "read me\n");
    write(d, "app.log", "noise\n");
    write(d, "tmp/cache", "cache\n");
    std::os::unix::fs::symlink("src/main.rs", d.join("main")).unwrap();
    // Modes fixed, not left to the umask: the golden tag below depends on them.
    for (f, m) in [
        ("Dockerfile", 0o644),
        (".dockerignore", 0o644),
        ("src", 0o755),
        ("src/main.rs", 0o644),
        ("README", 0o644),
    ] {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(m)).unwrap();
    }
}

fn out(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn content_tag(d: &Path, extra: &[&str]) -> String {
    out(tag_gen()
        .args([
            "content",
            "datastorage",
            "--consumer",
            "aianalysis",
            "--context",
        ])
        .arg(d)
        .args(extra))
    .trim()
    .to_string()
}

#[test]
fn the_tag_follows_exactly_what_the_build_sends() {
    let a = tempfile::tempdir().unwrap();
    let d = a.path();
    context(d);
    let t0 = content_tag(d, &[]);
    let hex = t0
        .strip_prefix("localhost/datastorage:aianalysis-")
        .unwrap_or_else(|| panic!("{t0}"));
    assert_eq!(hex.len(), 12);
    assert!(hex
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // The same inputs give this very tag on any machine, path and day: nothing in it comes from
    // the clock, the checkout path, owners or modification times.
    assert_eq!(t0, "localhost/datastorage:aianalysis-525733cf7815");

    // Files .dockerignore excludes, and modification times, do not count.
    write(d, "app.log", "other noise\n");
    write(d, "tmp/cache", "other cache\n");
    write(d, "new.log", "more\n");
    std::fs::File::options()
        .write(true)
        .open(d.join("README"))
        .unwrap()
        .set_modified(std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    assert_eq!(content_tag(d, &[]), t0);

    // Another checkout path.
    let b = tempfile::tempdir().unwrap();
    context(b.path());
    assert_eq!(content_tag(b.path(), &[]), t0);

    // Each of these changes it, and each to a tag not seen before.
    let mut seen = vec![t0.clone()];
    let mut changed = |what: &str, t: String| {
        assert!(!seen.contains(&t), "{what}: {t} seen before");
        seen.push(t);
    };
    write(d, "README", "read me!\n");
    changed("a sent file's content", content_tag(d, &[]));
    std::fs::set_permissions(d.join("README"), std::fs::Permissions::from_mode(0o600)).unwrap();
    changed("its mode", content_tag(d, &[]));
    std::fs::remove_file(d.join("main")).unwrap();
    std::os::unix::fs::symlink("README", d.join("main")).unwrap();
    changed("a link target", content_tag(d, &[]));
    write(d, "src/new.rs", "\n");
    changed("a new file", content_tag(d, &[]));
    let with_arg = content_tag(d, &["--build-arg", "V=1"]);
    changed("a build arg", with_arg.clone());
    changed("its value", content_tag(d, &["--build-arg", "V=2"]));
    changed("the target", content_tag(d, &["--target", "build"]));
    changed(
        "the platform",
        content_tag(d, &["--platform", "linux/arm64"]),
    );
    let before_df = content_tag(d, &[]);
    write(
        d,
        "Dockerfile",
        "FROM scratch AS build\nARG V\nCOPY . /src/\nFROM scratch AS prod\nCOPY --from=build /src /app/\n",
    );
    let after_df = content_tag(d, &[]);
    assert_ne!(before_df, after_df, "the Dockerfile");
    // A Dockerfile given with --file from outside the context counts by its text.
    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        "x.Dockerfile",
        &std::fs::read_to_string(d.join("Dockerfile")).unwrap(),
    );
    let via_file = content_tag(
        d,
        &[
            "--file",
            outside.path().join("x.Dockerfile").to_str().unwrap(),
        ],
    );
    assert!(via_file.starts_with("localhost/datastorage:aianalysis-"));
    write(outside.path(), "x.Dockerfile", "FROM scratch\n");
    assert_ne!(
        content_tag(
            d,
            &[
                "--file",
                outside.path().join("x.Dockerfile").to_str().unwrap()
            ]
        ),
        via_file
    );
}

#[test]
fn formats_and_several_images_from_spec_files_and_image_flags() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    context(&r.join("ds"));
    write(r, "mock/Dockerfile", "FROM scratch\nCOPY . /\n");
    write(r, "mock/x", "x");
    let ds = content_tag(&r.join("ds"), &[]);

    // image-build's spec file: paths relative to the file, its references' tags replaced.
    write(
        r,
        "images.yaml",
        "images:\n  - tag: localhost/datastorage:dev\n    context: ds\n  - tag: mock-llm\n    context: mock\n    build-args: {A: '1'}\n",
    );
    let env = out(tag_gen()
        .args(["content", "--consumer", "aianalysis", "-o", "env", "--spec"])
        .arg(r.join("images.yaml")));
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(lines.len(), 2, "{env}");
    assert_eq!(lines[0], format!("DATASTORAGE_IMAGE={ds}"));
    let mock = lines[1].strip_prefix("MOCK_LLM_IMAGE=").unwrap();
    assert!(mock.starts_with("localhost/mock-llm:aianalysis-"), "{mock}");

    // The same images as --image specs (the pipeline's form) give the same references.
    let flags = out(tag_gen()
        .current_dir(r)
        .args(["content", "--consumer", "aianalysis", "-o", "env"])
        .args([
            "-i",
            "tag=datastorage,context=ds",
            "-i",
            "tag=mock-llm,context=mock,build-arg=A=1",
        ]));
    assert_eq!(flags, env);
    // A build arg from the flags applies to every image; a spec's own wins.
    let merged = out(tag_gen()
        .current_dir(r)
        .args(["content", "--consumer", "aianalysis", "--build-arg", "A=1"])
        .args(["-i", "tag=mock-llm,context=mock"]));
    assert_eq!(merged.trim(), mock);

    // JSON carries the full digest and what was hashed.
    let json = out(tag_gen()
        .args([
            "content",
            "datastorage",
            "--consumer",
            "aianalysis",
            "--json",
            "--context",
        ])
        .arg(r.join("ds")));
    assert!(json.contains(&format!("\"{ds}\"")), "{json}");
    assert!(json.contains("\"digest\""), "{json}");
    let hex = ds.rsplit('-').next().unwrap();
    assert!(json.contains(&format!("\"{hex}")), "{json}");
    // Environment variables work as flags do.
    let via_env = out(tag_gen()
        .args(["content", "datastorage"])
        .env("TAG_GEN_CONSUMER", "aianalysis")
        .env("TAG_GEN_CONTEXT", r.join("ds")));
    assert_eq!(via_env.trim(), ds);
    let tag_only = out(tag_gen()
        .args([
            "content",
            "datastorage",
            "--consumer",
            "aianalysis",
            "-o",
            "tag",
            "--context",
        ])
        .arg(r.join("ds")));
    assert_eq!(tag_only.trim(), ds.split(':').nth(1).unwrap());
}

#[test]
fn bad_inputs_are_usage_errors_naming_them() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let run = |args: &[&str]| {
        let o = tag_gen().current_dir(r).args(args).output().unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8(o.stderr).unwrap(),
            o.stdout,
        )
    };
    let (code, err, stdout) = run(&["content", "x", "--consumer", "a", "--context", "missing"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("missing") && err.starts_with("tag-gen: "),
        "{err}"
    );
    assert!(stdout.is_empty());
    write(r, "ctx/f", "no Dockerfile here");
    let (code, err, _) = run(&["content", "x", "--consumer", "a", "--context", "ctx"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Dockerfile"), "{err}");
    write(r, "ctx/Dockerfile", "FROM scratch\n");
    write(r, "ctx/.dockerignore", "[\n");
    let (code, err, _) = run(&["content", "x", "--consumer", "a", "--context", "ctx"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(".dockerignore"), "{err}");
    std::fs::remove_file(r.join("ctx/.dockerignore")).unwrap();
    let (code, err, _) = run(&["content", "--consumer", "a"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no image"), "{err}");
    let (code, err, _) = run(&[
        "content",
        "x",
        "--consumer",
        "a",
        "--context",
        "ctx",
        "--count",
        "2",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, err, _) = run(&[
        "content",
        "x",
        "--consumer",
        "a",
        "--context",
        "ctx",
        "--claim-dir",
        "c",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--claim-dir"), "{err}");
    write(r, "bad.yaml", "- tag: a\n  colour: red\n");
    let (code, err, _) = run(&["content", "--consumer", "a", "--spec", "bad.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.yaml"), "{err}");
    // A file the walk found but that cannot be read: exit 1, naming it.
    write(r, "ctx/secret", "s");
    std::fs::set_permissions(r.join("ctx/secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(r.join("ctx/secret")).is_err() {
        let (code, err, _) = run(&["content", "x", "--consumer", "a", "--context", "ctx"]);
        assert_ne!(code, 0, "{err}");
        assert!(err.contains("secret"), "{err}");
    }
}

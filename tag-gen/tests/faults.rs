//! The faults found by injecting absurd inputs into tag-gen: long references with
//! `--claim-dir`, unbounded `--count`, `-o env` names that map to one variable.

use assert_cmd::Command;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

fn tag_gen() -> Command {
    let mut c = Command::cargo_bin("tag-gen").unwrap();
    for (k, _) in std::env::vars() {
        if k.starts_with("TAG_GEN_") {
            c.env_remove(k);
        }
    }
    c
}

/// A valid reference far longer than a file name may be: 200-character repository path, a
/// 128-character tag. It is claimed (by its hash), a second claim of it is refused, and the
/// claim file names it inside.
#[test]
fn claim_dir_takes_references_longer_than_a_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}/app", "team-".repeat(39)).replace("-/", "/");
    let tag = "t".repeat(128);
    let run = || {
        tag_gen()
            .args([
                "infra",
                &name,
                "--consumer",
                "c",
                "--tag",
                &tag,
                "--claim-dir",
            ])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let first = run();
    let err = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{err}");
    let reference = String::from_utf8(first.stdout).unwrap().trim().to_string();
    assert!(reference.len() > 255, "{reference}");
    assert!(reference.ends_with(&tag));
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&files[0]).unwrap().trim(),
        reference
    );
    // The same pinned reference again: already claimed, exit 1 naming it.
    let second = run();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&reference) && err.contains("already claimed"),
        "{err}"
    );
    assert!(second.stdout.is_empty());

    // Random long references are claimed too, each distinct.
    let many = tag_gen()
        .args([
            "infra",
            &name,
            "--consumer",
            &"c".repeat(110),
            "--count",
            "50",
            "--claim-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        many.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&many.stderr)
    );
    let lines: HashSet<String> = String::from_utf8(many.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 50);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 51);
}

/// `--count` is bounded (a clear usage error, no abort) and streamed: the first line of a
/// large count arrives while tag-gen is still running, not after all are made.
#[test]
fn count_is_bounded_and_streamed() {
    for n in ["100001", "4294967295", "99999999999", "0"] {
        let o = tag_gen()
            .args(["infra", "x", "--consumer", "c", "--count", n])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "--count {n}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("count") && !err.contains("panicked"), "{err}");
        assert!(o.stdout.is_empty());
    }
    // Streamed: with a claim directory every reference made is a file. When the first line
    // is read and no more, tag-gen blocks on the full pipe having made only what fits in it
    // and its buffer (64 KiB each, ~1,000 of these 130-byte lines): had it made all 3,000
    // before printing, all 3,000 claim files would exist by then.
    let dir = tempfile::tempdir().unwrap();
    let consumer = "c".repeat(110);
    let bin = assert_cmd::cargo::cargo_bin("tag-gen");
    let mut child = std::process::Command::new(bin)
        .args([
            "infra",
            "x",
            "--consumer",
            &consumer,
            "--count",
            "3000",
            "--claim-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with(&format!("localhost/x:{consumer}-")),
        "{first}"
    );
    let claimed = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(
        claimed < 3000,
        "{claimed} made before the first line was read"
    );
    let mut seen = HashSet::from([first]);
    for l in lines {
        seen.insert(l.unwrap());
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(seen.len(), 3000);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3000);
}

/// Names that map to the same variable of `-o env` would silently overwrite each other in
/// `eval`: refused (exit 2, naming both and the variable), and nothing printed.
#[test]
fn env_variable_clashes_are_refused() {
    let o = tag_gen()
        .args(["infra", "a-b", "a.b", "a_b", "--consumer", "c", "-o", "env"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`a-b`") && err.contains("`a.b`") && err.contains("A_B_IMAGE"),
        "{err}"
    );
    assert!(err.contains("--var"), "{err}");
    assert!(o.stdout.is_empty());
    // The same through `service` and with a repository path, and with --var given twice.
    for args in [
        vec!["service", "a-b", "A-B", "-o", "env"],
        vec!["infra", "team/app", "app", "--consumer", "c", "-o", "env"],
        vec![
            "infra",
            "x",
            "y",
            "--consumer",
            "c",
            "-o",
            "env",
            "--var",
            "V,V",
        ],
    ] {
        let o = tag_gen().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("_IMAGE") || args.contains(&"V,V"));
    }
    // Other formats have no variables: the names are fine there, and --var resolves it.
    let o = tag_gen()
        .args(["infra", "a-b", "a.b", "--consumer", "c"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let o = tag_gen()
        .args([
            "infra",
            "a-b",
            "a.b",
            "--consumer",
            "c",
            "-o",
            "env",
            "--var",
            "AB1,AB2",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.starts_with("AB1=localhost/a-b:c-") && out.contains("\nAB2=localhost/a.b:c-"),
        "{out}"
    );
}

//! The files `tag-gen content` hashes are the files image-build sends: for every context of
//! the engine tests (and the odd entry kinds), the tar image-build writes is read back and
//! compared entry by entry (name, type, mode, link target, content) with the digest's manifest.
//! No engine needed: this is about the bytes image-build puts on the wire.

use e2e_context::digest::{self, Item};
use image_build::context::{self, ContextPlan};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

mod common;
use common::write;

/// What image-build puts in the tar: name -> entry, plus the raw bytes of each file.
fn sent(plan: &ContextPlan) -> (BTreeMap<String, Item>, BTreeMap<String, Vec<u8>>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let p = plan.clone();
    let writer = std::thread::spawn(move || context::write_tar(&p, tx));
    let mut bytes = Vec::new();
    while let Some(chunk) = rx.blocking_recv() {
        bytes.extend_from_slice(&chunk);
    }
    writer.join().unwrap().unwrap();
    let mut items = BTreeMap::new();
    let mut raw = BTreeMap::new();
    let mut a = tar::Archive::new(bytes.as_slice());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Fifo => 'p',
            tar::EntryType::Regular => 'f',
            other => panic!("unexpected entry type {other:?} for {name}"),
        };
        assert_eq!(h.uid().unwrap(), 0, "{name}: owners are sent as root");
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let content = (kind == 'f').then(|| Sha256::digest(&data).into());
        items.insert(
            name.clone(),
            Item {
                name: name.clone(),
                kind,
                mode: h.mode().unwrap(),
                link,
                content,
                size: if kind == 'f' { data.len() as u64 } else { 0 },
            },
        );
        raw.insert(name, data);
    }
    (items, raw)
}

/// Checks hashed == sent for `dir` (and Dockerfile `file`), both as sent to Podman (the plan
/// as is) and as sent to Docker (the Dockerfile rewritten with the labels folded in).
/// Returns the names hashed.
fn check(dir: &Path, file: Option<&Path>) -> Vec<String> {
    let plan = context::plan(dir, file).unwrap();
    let hashed: BTreeMap<String, Item> = digest::manifest(&plan)
        .unwrap()
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    let dockerfile = plan.dockerfile_text().unwrap();
    let mut docker_plan = plan.clone();
    let folded = context::fold_labels(&dockerfile, &[("k".into(), "v".into())], None).unwrap();
    assert!(docker_plan.replace_dockerfile(folded.clone()));
    for (flavor, p, df) in [
        ("podman", &plan, dockerfile.clone()),
        ("docker", &docker_plan, folded),
    ] {
        let (mut items, raw) = sent(p);
        // What the engine drops after reading: the Dockerfile sent under an extra name (its
        // text is hashed as the Dockerfile), an in-context Dockerfile .dockerignore excludes.
        if p.injected_dockerfile.is_some() {
            assert_eq!(raw[&p.dockerfile_name], df.as_bytes(), "{flavor}");
            items.remove(&p.dockerfile_name);
        }
        if let Some(forced) = &p.forced_dockerfile {
            items.remove(forced);
        }
        // The .dockerignore sent names that extra file; otherwise it is the file's own.
        if let Some(over) = &p.dockerignore_override {
            let own = std::fs::read(dir.join(".dockerignore")).unwrap_or_default();
            let mut expected = if own.is_empty() {
                b".dockerignore".to_vec()
            } else {
                own.clone()
            };
            expected.extend_from_slice(format!("\n{}\n", p.dockerfile_name).as_bytes());
            assert_eq!(over, &expected, "{flavor}");
            if own.is_empty() {
                items.remove(".dockerignore");
            } else {
                let i = items.get_mut(".dockerignore").unwrap();
                i.content = Some(Sha256::digest(&own).into());
                i.size = own.len() as u64;
            }
        }
        assert_eq!(
            items.keys().collect::<Vec<_>>(),
            hashed.keys().collect::<Vec<_>>(),
            "{flavor}: names sent vs hashed"
        );
        assert_eq!(items, hashed, "{flavor}: entries sent vs hashed");
    }
    hashed.into_keys().collect()
}

/// The engine test `dockerignore_matches_the_docker_cli_and_symlinks_stay_symlinks`.
#[test]
fn dockerignore_case() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in [
        "keep.txt",
        "app.log",
        "src/main.rs",
        "src/debug.log",
        "src/deep/x.tmp",
        "x.tmp",
        "build/out.bin",
        "build/keep.txt",
        "build/sub/keep.txt",
        "docs/a.md",
        "docs/a.html",
        "docs/sub/b.md",
        "docs/sub/b.html",
        "secret",
        "secxet",
        "abs",
        "sub/abs",
        "node_modules/p/index.js",
        "node_modules/p/LICENSE",
        "ax.txt",
        "dx.txt",
        "a/b/c/deep.txt",
        "a/b/other.txt",
        "Dockerfile.extra",
        "dir with space/f.txt",
    ] {
        write(d, f, f);
    }
    std::os::unix::fs::symlink("keep.txt", d.join("link-in")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("link-out")).unwrap();
    std::os::unix::fs::symlink("../../outside", d.join("src/link-up")).unwrap();
    write(d, "Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    write(
        d,
        ".dockerignore",
        "# comment\n*.log\n**/*.tmp\nbuild\n!build/keep.txt\ndocs/**\n!docs/**/*.md\nsec?et\n/abs\n\
         node_modules/**/LICENSE\n[a-c]x.txt\na/**/deep.txt\n  dir with space  \nDockerfile*\n",
    );
    let names = check(d, None);
    for kept in [
        "keep.txt",
        "src/main.rs",
        "src/debug.log",
        "build/keep.txt",
        "docs/a.md",
        "sub/abs",
        "dx.txt",
        ".dockerignore",
        "link-in",
        "link-out",
        "src/link-up",
    ] {
        assert!(names.iter().any(|n| n == kept), "{kept}: {names:?}");
    }
    for gone in [
        "app.log",
        "x.tmp",
        "build/out.bin",
        "docs/sub/b.md",
        "secret",
        "abs",
        "ax.txt",
        "Dockerfile",
        "Dockerfile.extra",
    ] {
        assert!(!names.iter().any(|n| n == gone), "{gone}: {names:?}");
    }
}

/// The engine test `context_escapes_are_refused_and_an_outside_dockerfile_works`.
#[test]
fn outside_dockerfile_case() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "secret.txt", "do not send");
    write(d, "ctx/ok.txt", "ok");
    write(d, "ctx/Dockerfile", "FROM scratch\nCOPY ok.txt /\n");
    write(d, "outside.Dockerfile", "FROM scratch\nCOPY . /ctx/\n");
    let names = check(&d.join("ctx"), Some(&d.join("outside.Dockerfile")));
    assert_eq!(names, vec!["Dockerfile", "ok.txt"]);
    // And with a .dockerignore of its own.
    write(d, "ctx/.dockerignore", "Dockerfile\n");
    let names = check(&d.join("ctx"), Some(&d.join("outside.Dockerfile")));
    assert_eq!(names, vec![".dockerignore", "ok.txt"]);
}

/// The engine test `podman_builds_land_in_podmans_store_and_prune_there` (and the build-arg
/// and target test's plain context).
#[test]
fn podman_and_plain_cases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "Dockerfile", "FROM scratch\nCOPY . /\n");
    write(d, ".dockerignore", "*.tmp\n");
    write(d, "a.txt", "a");
    write(d, "b.tmp", "b");
    assert_eq!(check(d, None), vec![".dockerignore", "Dockerfile", "a.txt"]);
    let plain = tempfile::tempdir().unwrap();
    write(plain.path(), "Dockerfile", "FROM scratch\n");
    assert_eq!(check(plain.path(), None), vec!["Dockerfile"]);
}

/// Entry kinds the engine tests do not cover: hard links, modes, empty directories, fifos,
/// an excluded directory entered for a `!` pattern.
#[test]
fn links_modes_fifos_and_reincluded_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "Dockerfile", "FROM scratch\nCOPY . /\n");
    write(d, "bin/run", "#!/bin/sh\n");
    std::fs::set_permissions(d.join("bin/run"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::hard_link(d.join("bin/run"), d.join("bin/run2")).unwrap();
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let fifo = std::ffi::CString::new(d.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc_mkfifo(fifo.as_ptr(), 0o644) }, 0);
    write(d, "vendor/a/keep.go", "k");
    write(d, "vendor/a/drop.go", "d");
    write(d, ".dockerignore", "vendor\n!vendor/a/keep.go\n");
    let names = check(d, None);
    assert_eq!(
        names,
        vec![
            ".dockerignore",
            "Dockerfile",
            "bin",
            "bin/run",
            "bin/run2",
            "empty",
            "pipe",
            "vendor/a/keep.go"
        ]
    );
    let plan = context::plan(d, None).unwrap();
    let m = digest::manifest(&plan).unwrap();
    let run2 = m.iter().find(|i| i.name == "bin/run2").unwrap();
    assert_eq!((run2.kind, run2.link.as_str()), ('h', "bin/run"));
    let run = m.iter().find(|i| i.name == "bin/run").unwrap();
    assert_eq!(run.mode, 0o751);
}

extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

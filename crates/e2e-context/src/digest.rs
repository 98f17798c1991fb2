//! A SHA-256 over exactly what a build sends and is told: every entry of the planned context
//! (path, type, mode, link target, content; owners and times are not sent as such, so they are
//! not hashed), the Dockerfile, the build args, the target and the platform. Equal inputs give
//! the equal digest on any checkout path and any day; `tag-gen content` turns it into a tag.
//!
//! File contents are hashed on a few threads (one SHA-256 per file), then the entries are
//! hashed in walk order with their content hashes, so the result does not depend on timing.

use crate::walk::{ContextPlan, EntryKind};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bumped whenever the encoding below changes, so old and new digests never coincide.
const DOMAIN: &[u8] = b"e2e-context digest v1\0";

/// The build settings that change the result of a build besides the context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInputs {
    /// The Dockerfile text the engine reads.
    pub dockerfile: Vec<u8>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
}

/// One hashed entry: what the engine receives for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Path in the context, `/`-separated.
    pub name: String,
    /// `d` directory, `f` file, `l` symlink, `h` hard link, `p` fifo, `c`/`b` devices.
    pub kind: char,
    pub mode: u32,
    /// Symlink target, or the first name of a hard-linked file; empty otherwise.
    pub link: String,
    /// SHA-256 of a regular file's content.
    pub content: Option<[u8; 32]>,
    pub size: u64,
}

/// The entries of `plan` as hashed, in walk order. An in-context Dockerfile that
/// `.dockerignore` excludes is left out: it is sent only for the engine to read and dropped
/// from the context there (its text is hashed as the Dockerfile). Fails when a file cannot be
/// read or changes size while it is read.
pub fn manifest(plan: &ContextPlan) -> io::Result<Vec<Item>> {
    let sent = |e: &crate::walk::Entry| plan.forced_dockerfile.as_deref() != Some(e.name.as_str());
    let files: Vec<usize> = plan
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.kind, EntryKind::File { .. }) && sent(e))
        .map(|(i, _)| i)
        .collect();
    let hashes = hash_files(plan, &files)?;
    let mut by_index: BTreeMap<usize, [u8; 32]> = files.into_iter().zip(hashes).collect();
    let mut out = Vec::with_capacity(plan.entries.len());
    for (i, e) in plan.entries.iter().enumerate().filter(|(_, e)| sent(e)) {
        let (kind, link, size) = match &e.kind {
            EntryKind::Dir => ('d', String::new(), 0),
            EntryKind::File { size } => ('f', String::new(), *size),
            EntryKind::Symlink { target } => ('l', target.to_string_lossy().into_owned(), 0),
            EntryKind::HardLink { target } => ('h', target.clone(), 0),
            EntryKind::Fifo => ('p', String::new(), 0),
            EntryKind::CharDevice { major, minor } => ('c', format!("{major},{minor}"), 0),
            EntryKind::BlockDevice { major, minor } => ('b', format!("{major},{minor}"), 0),
        };
        out.push(Item {
            name: e.name.clone(),
            kind,
            mode: e.mode,
            link,
            content: by_index.remove(&i),
            size,
        });
    }
    Ok(out)
}

/// The digest (64 lowercase hex digits) of a planned context and the build settings.
pub fn digest(plan: &ContextPlan, inputs: &BuildInputs) -> io::Result<String> {
    Ok(digest_items(&manifest(plan)?, inputs))
}

/// The digest of an already computed manifest.
pub fn digest_items(items: &[Item], inputs: &BuildInputs) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    for it in items {
        h.update(b"E");
        h.update(it.name.as_bytes());
        h.update([0, it.kind as u8]);
        h.update(it.mode.to_be_bytes());
        h.update(it.size.to_be_bytes());
        h.update(it.link.as_bytes());
        h.update([0]);
        if let Some(c) = &it.content {
            h.update(c);
        }
    }
    h.update(b"D");
    h.update((inputs.dockerfile.len() as u64).to_be_bytes());
    h.update(&inputs.dockerfile);
    for (k, v) in &inputs.build_args {
        h.update(b"A");
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    // An empty target or platform is what the engine gets when none is given.
    for (tag, v) in [(b"T", &inputs.target), (b"P", &inputs.platform)] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            h.update(tag);
            h.update(v.as_bytes());
            h.update([0]);
        }
    }
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of each file among `plan.entries[files]`, on up to 4 threads (the disk cache and
/// the SHA extensions make this CPU-bound; more threads than cores would only contend).
fn hash_files(plan: &ContextPlan, files: &[usize]) -> io::Result<Vec<[u8; 32]>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
        .min(files.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<[u8; 32]>>> = Mutex::new(vec![None; files.len()]);
    let first_error: Mutex<Option<io::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= files.len() {
                        return;
                    }
                    match hash_file(plan, files[i], &mut buf) {
                        Ok(d) => results.lock().expect("not poisoned")[i] = Some(d),
                        Err(e) => {
                            first_error.lock().expect("not poisoned").get_or_insert(e);
                            next.store(files.len(), Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("not poisoned") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("not poisoned")
        .into_iter()
        .map(|d| d.expect("every file hashed"))
        .collect())
}

fn hash_file(plan: &ContextPlan, index: usize, buf: &mut [u8]) -> io::Result<[u8; 32]> {
    let e = &plan.entries[index];
    let EntryKind::File { size } = e.kind else {
        unreachable!("only files are hashed")
    };
    let f = File::open(&e.path)
        .map_err(|err| io::Error::new(err.kind(), format!("cannot read `{}`: {err}", e.name)))?;
    // Exactly the size the walk saw, as image-build sends it.
    let mut r = f.take(size);
    let mut h = Sha256::new();
    let mut n = 0u64;
    loop {
        let k = r.read(buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    if n != size {
        return Err(io::Error::other(format!(
            "`{}` changed while the build context was being read",
            e.name
        )));
    }
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn write(dir: &Path, rel: &str, content: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn tag(dir: &Path, inputs: &BuildInputs) -> String {
        let plan = crate::plan(dir, None).unwrap();
        let mut inputs = inputs.clone();
        inputs.dockerfile = plan.dockerfile_text().unwrap().into_bytes();
        digest(&plan, &inputs).unwrap()
    }

    #[test]
    fn what_changes_the_digest_and_what_does_not() {
        let a = tempfile::tempdir().unwrap();
        let d = a.path();
        write(d, "Dockerfile", "FROM scratch\nCOPY . /\n");
        write(d, ".dockerignore", "*.log\n");
        write(d, "src/main.rs", "fn main() {}\n");
        write(d, "app.log", "noise");
        let base = BuildInputs::default();
        let t0 = tag(d, &base);
        assert_eq!(t0.len(), 64);

        // Excluded file, mtime: same.
        write(d, "app.log", "other noise");
        std::fs::File::open(d.join("src/main.rs"))
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(tag(d, &base), t0);

        // Another checkout path: same.
        let b = tempfile::tempdir().unwrap();
        for f in ["Dockerfile", ".dockerignore", "src/main.rs"] {
            write(b.path(), f, &std::fs::read_to_string(d.join(f)).unwrap());
        }
        assert_eq!(tag(b.path(), &base), t0);

        // Content, mode, Dockerfile, args, target, platform: different.
        let mut seen = vec![t0.clone()];
        let mut differs = |t: String| {
            assert!(!seen.contains(&t), "{t} seen before");
            seen.push(t);
        };
        write(d, "src/main.rs", "fn main() { }\n");
        differs(tag(d, &base));
        std::fs::set_permissions(
            d.join("src/main.rs"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        differs(tag(d, &base));
        write(d, "Dockerfile", "FROM scratch\nCOPY . /x/\n");
        differs(tag(d, &base));
        let mut i = base.clone();
        i.build_args.insert("A".into(), "1".into());
        differs(tag(d, &i));
        i.build_args.insert("A".into(), "2".into());
        differs(tag(d, &i));
        i.target = Some("prod".into());
        differs(tag(d, &i));
        i.platform = Some("linux/amd64".into());
        differs(tag(d, &i));
        std::os::unix::fs::symlink("main.rs", d.join("src/link")).unwrap();
        differs(tag(d, &i));
        std::fs::remove_file(d.join("src/link")).unwrap();
        std::os::unix::fs::symlink("other", d.join("src/link")).unwrap();
        differs(tag(d, &i));
        // An empty target is no target (what the engine is given either way).
        let mut j = base.clone();
        j.target = Some(String::new());
        assert_eq!(tag(d, &j), tag(d, &base));
    }

    #[test]
    fn a_file_that_cannot_be_read_is_an_error() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "Dockerfile", "FROM scratch\n");
        write(a.path(), "f", "x");
        let plan = crate::plan(a.path(), None).unwrap();
        std::fs::remove_file(a.path().join("f")).unwrap();
        let e = digest(&plan, &BuildInputs::default()).unwrap_err();
        assert!(e.to_string().contains("`f`"), "{e}");
    }
}

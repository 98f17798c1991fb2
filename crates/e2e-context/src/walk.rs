//! The build context: which files go to the engine (`.dockerignore`, as the docker CLI
//! decides), walked and checked up front. image-build streams what this plans; `tag-gen
//! content` digests the same plan, so the two can never disagree about what a context is.
//!
//! Symlinks are sent as symlinks (never followed), hard links as hard links, owners as root
//! (as the docker CLI does). A Dockerfile outside the context is added under a random
//! `.dockerfile.<hex>` name and listed in the sent `.dockerignore`, exactly like the docker
//! CLI, so the engine removes it from the context after reading it.

use crate::ignore::Matcher;
use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One entry to put in the tar, in walk order.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the context root, `/`-separated.
    pub name: String,
    pub path: PathBuf,
    pub kind: EntryKind,
    pub mode: u32,
    pub mtime: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File { size: u64 },
    Symlink { target: PathBuf },
    HardLink { target: String },
    Fifo,
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
}

/// What will be sent: the entries, plus the Dockerfile name the engine must use.
#[derive(Debug, Clone)]
pub struct ContextPlan {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// Name of the Dockerfile inside the sent context (`dockerfile` build parameter).
    pub dockerfile_name: String,
    /// A Dockerfile from outside the context, added at the end under `dockerfile_name`.
    pub injected_dockerfile: Option<Vec<u8>>,
    /// The `.dockerignore` text to send instead of the file's own (when a Dockerfile is
    /// injected, its name is appended so the engine drops it from the context).
    pub dockerignore_override: Option<Vec<u8>>,
    /// Total bytes of regular files (for progress messages).
    pub bytes: u64,
    pub excluded: usize,
    /// The in-context Dockerfile when `.dockerignore` excludes it and it is sent only
    /// because the engine must read it (dropped again if another Dockerfile is sent).
    pub forced_dockerfile: Option<String>,
}

/// Why a context cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextError(pub String);

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resolves the context directory and Dockerfile (as `docker build` does: the Dockerfile path
/// is taken as given, relative paths against the current directory, defaulting to
/// `<context>/Dockerfile`), reads `.dockerignore`, and walks the context.
pub fn plan(context: &Path, dockerfile: Option<&Path>) -> Result<ContextPlan, ContextError> {
    let root = fs::canonicalize(context).map_err(|e| {
        ContextError(format!(
            "build context `{}` cannot be used: {e}",
            context.display()
        ))
    })?;
    if !root.is_dir() {
        return Err(ContextError(format!(
            "build context `{}` is not a directory",
            context.display()
        )));
    }
    let dockerfile = match dockerfile {
        Some(p) => p.to_path_buf(),
        None => {
            let d = root.join("Dockerfile");
            if d.exists() || !root.join("dockerfile").exists() {
                d
            } else {
                root.join("dockerfile")
            }
        }
    };
    let dockerfile_abs = fs::canonicalize(&dockerfile).map_err(|e| {
        ContextError(format!(
            "Dockerfile `{}` cannot be read: {e}",
            dockerfile.display()
        ))
    })?;
    if !dockerfile_abs.is_file() {
        return Err(ContextError(format!(
            "Dockerfile `{}` is not a file",
            dockerfile.display()
        )));
    }
    let rel_dockerfile = dockerfile_abs
        .strip_prefix(&root)
        .ok()
        .map(|p| p.to_string_lossy().replace('\\', "/"));

    let ignore_path = root.join(".dockerignore");
    let ignore_text = match fs::read(&ignore_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(ContextError(format!(
                "cannot read `{}`: {e}",
                ignore_path.display()
            )))
        }
    };
    let mut lines = ignore_text
        .as_deref()
        .map(|b| crate::ignore::read_ignore_file(&String::from_utf8_lossy(b)))
        .unwrap_or_default();
    // TrimBuildFilesFromExcludes: the engine needs .dockerignore and the Dockerfile even when
    // they are excluded (it removes them from the context itself).
    let first = Matcher::new(&lines).map_err(|e| bad_ignore(&ignore_path, e))?;
    if first.matches_legacy(".dockerignore") {
        lines.push("!.dockerignore".into());
    }
    let mut forced_dockerfile = None;
    if let Some(rel) = &rel_dockerfile {
        if first.matches_legacy(rel) {
            lines.push(format!("!{rel}"));
            forced_dockerfile = Some(rel.clone());
        }
    }
    let matcher = Matcher::new(&lines).map_err(|e| bad_ignore(&ignore_path, e))?;

    let mut plan = ContextPlan {
        root: root.clone(),
        entries: Vec::new(),
        dockerfile_name: rel_dockerfile.clone().unwrap_or_default(),
        injected_dockerfile: None,
        dockerignore_override: None,
        bytes: 0,
        excluded: 0,
        forced_dockerfile,
    };
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    walk(&root, &root, &matcher, None, &mut plan, &mut inodes)?;

    if rel_dockerfile.is_none() {
        // Outside the context: add it under a random name, as the docker CLI does.
        let content = fs::read(&dockerfile_abs).map_err(|e| {
            ContextError(format!(
                "Dockerfile `{}` cannot be read: {e}",
                dockerfile.display()
            ))
        })?;
        let name = format!(".dockerfile.{}", random_hex(20));
        let mut ignore = ignore_text.unwrap_or_else(|| b".dockerignore".to_vec());
        ignore.extend_from_slice(format!("\n{name}\n").as_bytes());
        plan.dockerfile_name = name;
        plan.injected_dockerfile = Some(content);
        plan.dockerignore_override = Some(ignore);
    }
    Ok(plan)
}

/// Name under which a rewritten Dockerfile (labels folded into one `LABEL`) is sent. Fixed,
/// not random, so that the `.dockerignore` sent along stays the same between builds and
/// `COPY .` steps keep their cache.
pub const REWRITTEN_DOCKERFILE: &str = ".dockerfile.image-build";

impl ContextPlan {
    /// The Dockerfile text that will be used.
    pub fn dockerfile_text(&self) -> std::io::Result<String> {
        match &self.injected_dockerfile {
            Some(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            None => fs::read_to_string(self.root.join(&self.dockerfile_name)),
        }
    }

    /// Sends `text` as the Dockerfile instead (under [`REWRITTEN_DOCKERFILE`], listed in the
    /// sent `.dockerignore` so the engine drops it from the context, as the docker CLI does
    /// for a Dockerfile from outside the context). Returns false if the name is taken.
    pub fn replace_dockerfile(&mut self, text: String) -> bool {
        if self.entries.iter().any(|e| e.name == REWRITTEN_DOCKERFILE) {
            return false;
        }
        if self.injected_dockerfile.is_none() {
            let mut ignore = match fs::read(self.root.join(".dockerignore")) {
                Ok(b) => b,
                Err(_) => b".dockerignore".to_vec(),
            };
            ignore.extend_from_slice(format!("\n{REWRITTEN_DOCKERFILE}\n").as_bytes());
            self.dockerignore_override = Some(ignore);
        } else if let Some(ignore) = &mut self.dockerignore_override {
            let old = format!("\n{}\n", self.dockerfile_name);
            let text_ignore = String::from_utf8_lossy(ignore)
                .replace(&old, &format!("\n{REWRITTEN_DOCKERFILE}\n"));
            *ignore = text_ignore.into_bytes();
        }
        if let Some(forced) = self.forced_dockerfile.take() {
            self.entries.retain(|e| e.name != forced);
        }
        self.dockerfile_name = REWRITTEN_DOCKERFILE.to_string();
        self.injected_dockerfile = Some(text.into_bytes());
        true
    }
}

fn bad_ignore(path: &Path, e: crate::ignore::PatternError) -> ContextError {
    ContextError(format!(
        "`{}` has a {e}; fix or remove that line",
        path.display()
    ))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    let _ = getrandom::getrandom(&mut b);
    let mut s: String = b.iter().map(|x| format!("{x:02x}")).collect();
    s.truncate(n);
    s
}

/// The docker CLI's walk (`archive.TarWithOptions`): entries in lexical order, each checked
/// with its parent's match results; an excluded directory is skipped unless a `!` pattern
/// starts with it, in which case its contents are still considered (but the directory entry
/// itself is not sent).
fn walk(
    root: &Path,
    dir: &Path,
    matcher: &Matcher,
    parent: Option<&crate::ignore::MatchInfo>,
    plan: &mut ContextPlan,
    inodes: &mut HashMap<(u64, u64), String>,
) -> Result<(), ContextError> {
    let read = fs::read_dir(dir).map_err(|e| {
        ContextError(format!(
            "cannot list `{}` in the build context: {e}",
            dir.display()
        ))
    })?;
    let mut names: Vec<_> = read
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| ContextError(format!("cannot list `{}`: {e}", dir.display())))?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let path = dir.join(&name);
        let rel = path
            .strip_prefix(root)
            .expect("walked path is under the root")
            .to_string_lossy()
            .into_owned();
        let meta = fs::symlink_metadata(&path).map_err(|e| {
            ContextError(format!("cannot stat `{}` in the build context: {e}", rel))
        })?;
        let is_dir = meta.is_dir();
        let (skip, info) = if matcher.is_empty() {
            (false, Default::default())
        } else {
            matcher.matches_using_parent(&rel, parent)
        };
        if skip {
            plan.excluded += 1;
            if is_dir && matcher.must_enter_excluded_dir(&rel) {
                walk(root, &path, matcher, Some(&info), plan, inodes)?;
            }
            continue;
        }
        add_entry(&rel, &path, &meta, plan, inodes)?;
        if is_dir {
            walk(root, &path, matcher, Some(&info), plan, inodes)?;
        }
    }
    Ok(())
}

fn add_entry(
    rel: &str,
    path: &Path,
    meta: &Metadata,
    plan: &mut ContextPlan,
    inodes: &mut HashMap<(u64, u64), String>,
) -> Result<(), ContextError> {
    // Names are built from directory listings under the root, so they cannot contain `..`;
    // checked anyway, because an entry escaping the context must never be sent.
    if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|c| c == ".." || c == ".") {
        return Err(ContextError(format!(
            "refusing context entry `{rel}`: it escapes the build context"
        )));
    }
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        let target = fs::read_link(path)
            .map_err(|e| ContextError(format!("cannot read symlink `{rel}`: {e}")))?;
        EntryKind::Symlink { target }
    } else if ft.is_file() {
        // Fail now, before the engine is involved, if a file cannot be read (as
        // `docker build` does in ValidateContextDirectory).
        File::open(path).map_err(|e| {
            ContextError(format!(
                "cannot read `{rel}` in the build context: {e}; fix its permissions or add it to .dockerignore"
            ))
        })?;
        let key = (meta.dev(), meta.ino());
        if meta.nlink() > 1 {
            if let Some(first) = inodes.get(&key) {
                plan.entries.push(Entry {
                    name: rel.to_string(),
                    path: path.to_path_buf(),
                    kind: EntryKind::HardLink {
                        target: first.clone(),
                    },
                    mode: meta.mode() & 0o7777,
                    mtime: meta.mtime(),
                });
                return Ok(());
            }
            inodes.insert(key, rel.to_string());
        }
        plan.bytes += meta.len();
        EntryKind::File { size: meta.len() }
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_char_device() || ft.is_block_device() {
        let rdev = meta.rdev();
        let (major, minor) = (
            ((rdev >> 8) & 0xfff) as u32 | ((rdev >> 32) & !0xfff) as u32,
            (rdev & 0xff) as u32 | ((rdev >> 12) & !0xff) as u32,
        );
        if ft.is_char_device() {
            EntryKind::CharDevice { major, minor }
        } else {
            EntryKind::BlockDevice { major, minor }
        }
    } else {
        // Sockets: the docker CLI skips them too.
        return Ok(());
    };
    plan.entries.push(Entry {
        name: rel.to_string(),
        path: path.to_path_buf(),
        kind,
        mode: meta.mode() & 0o7777,
        mtime: meta.mtime(),
    });
    Ok(())
}

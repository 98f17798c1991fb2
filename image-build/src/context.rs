//! The build context: which files go to the engine (`.dockerignore`, as the docker CLI
//! decides), checked up front, then written as a tar stream chunk by chunk, never held in
//! memory whole.
//!
//! Symlinks are sent as symlinks (never followed), hard links as hard links, owners as root
//! (as the docker CLI does). A Dockerfile outside the context is added under a random
//! `.dockerfile.<hex>` name and listed in the sent `.dockerignore`, exactly like the docker
//! CLI, so the engine removes it from the context after reading it.

use crate::ignore::Matcher;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Size of the chunks sent to the engine.
const CHUNK: usize = 256 * 1024;

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

/// Folds `labels` into one `LABEL` instruction at the end of the stage that is built (the
/// `target` stage, else the last one). Docker's classic builder turns each API label into a
/// step of its own (a container each); one instruction costs one step. `None` when the
/// Dockerfile uses another escape character or the target stage is not found (the labels
/// then go through the API).
pub fn fold_labels(
    dockerfile: &str,
    labels: &[(String, String)],
    target: Option<&str>,
) -> Option<String> {
    if labels.is_empty() {
        return Some(dockerfile.to_string());
    }
    // Parser directives come first; only the default escape character is handled.
    for line in dockerfile.lines() {
        let t = line.trim();
        if !t.starts_with('#') {
            break;
        }
        let d = t.trim_start_matches('#').trim().to_ascii_lowercase();
        if d.starts_with("escape") && d.split_once('=').is_some_and(|(_, v)| v.trim() != "\\") {
            return None;
        }
    }
    let mut quoted = Vec::new();
    for (k, v) in labels {
        if k.contains('\n') || v.contains('\n') {
            return None;
        }
        let q = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
        };
        quoted.push(format!("\"{}\"=\"{}\"", q(k), q(v)));
    }
    let instruction = format!("LABEL {}\n", quoted.join(" "));
    // Logical lines: (start byte, first word upper-cased, stage name if FROM ... AS name).
    let mut starts: Vec<(usize, String, Option<String>)> = Vec::new();
    let mut offset = 0;
    let mut continuing = false;
    for line in dockerfile.split_inclusive('\n') {
        let t = line.trim();
        if !continuing && !t.is_empty() && !t.starts_with('#') {
            let words: Vec<&str> = t.split_whitespace().collect();
            let first = words[0].to_ascii_uppercase();
            let name = (first == "FROM")
                .then(|| {
                    words
                        .iter()
                        .position(|w| w.eq_ignore_ascii_case("as"))
                        .and_then(|i| words.get(i + 1))
                        .map(|n| n.to_ascii_lowercase())
                })
                .flatten();
            starts.push((offset, first, name));
        }
        if !t.is_empty() && !t.starts_with('#') {
            continuing = t.ends_with('\\');
        }
        offset += line.len();
    }
    let insert_at = match target {
        Some(t) if !t.is_empty() => {
            let t = t.to_ascii_lowercase();
            let i = starts
                .iter()
                .position(|(_, w, n)| w == "FROM" && n.as_deref() == Some(t.as_str()))?;
            starts[i + 1..]
                .iter()
                .find(|(_, w, _)| w == "FROM")
                .map(|(o, _, _)| *o)
                .unwrap_or(dockerfile.len())
        }
        _ => dockerfile.len(),
    };
    let (head, tail) = dockerfile.split_at(insert_at);
    let sep = if head.ends_with('\n') || head.is_empty() {
        ""
    } else {
        "\n"
    };
    Some(format!("{head}{sep}{instruction}{tail}"))
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

/// An `io::Write` that cuts what is written into chunks and sends them down a channel
/// (blocking: backpressure comes from the engine reading the request body).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
    sent: u64,
}

impl ChannelWriter {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.sent += chunk.len() as u64;
        self.tx.blocking_send(chunk).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_chunk()
    }
}

/// Writes the planned context as a tar into `tx`, chunk by chunk (blocking; run it on a
/// blocking thread). Returns the number of bytes sent. Stops early (with an error) when the
/// receiver is dropped, e.g. because the build was cancelled.
pub fn write_tar(plan: &ContextPlan, tx: mpsc::Sender<Bytes>) -> io::Result<u64> {
    let writer = ChannelWriter {
        tx,
        buf: BytesMut::with_capacity(CHUNK + 64 * 1024),
        sent: 0,
    };
    let mut tar = tar::Builder::new(writer);
    tar.mode(tar::HeaderMode::Complete);
    let mut sent_ignore = false;
    for e in &plan.entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(e.mode);
        h.set_mtime(e.mtime.max(0) as u64);
        match &e.kind {
            EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                tar.append_data(&mut h, format!("{}/", e.name), io::empty())?;
            }
            EntryKind::File { size } => {
                if e.name == ".dockerignore" {
                    if let Some(text) = &plan.dockerignore_override {
                        sent_ignore = true;
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_size(text.len() as u64);
                        tar.append_data(&mut h, &e.name, text.as_slice())?;
                        continue;
                    }
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(*size);
                let f = File::open(&e.path).map_err(|err| {
                    io::Error::new(err.kind(), format!("cannot read `{}`: {err}", e.name))
                })?;
                // A file that changed size while being sent would corrupt the tar: send
                // exactly the announced size (Go's archive/tar refuses the same way).
                let mut limited = io::Read::take(f, *size);
                let mut counting = CountingReader {
                    inner: &mut limited,
                    n: 0,
                };
                tar.append_data(&mut h, &e.name, &mut counting)
                    .map_err(|err| {
                        io::Error::new(err.kind(), format!("sending `{}`: {err}", e.name))
                    })?;
                if counting.n != *size {
                    return Err(io::Error::other(format!(
                        "`{}` changed while the build context was being sent",
                        e.name
                    )));
                }
            }
            EntryKind::Symlink { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &e.name, target)?;
            }
            EntryKind::HardLink { target } => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                tar.append_link(&mut h, &e.name, target)?;
            }
            EntryKind::Fifo => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_size(0);
                tar.append_data(&mut h, &e.name, io::empty())?;
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                h.set_entry_type(if matches!(e.kind, EntryKind::CharDevice { .. }) {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                h.set_device_major(*major)?;
                h.set_device_minor(*minor)?;
                h.set_size(0);
                tar.append_data(&mut h, &e.name, io::empty())?;
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Some(text) = &plan.dockerignore_override {
        if !sent_ignore {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            h.set_mtime(now);
            h.set_size(text.len() as u64);
            tar.append_data(&mut h, ".dockerignore", text.as_slice())?;
        }
    }
    if let Some(df) = &plan.injected_dockerfile {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o600);
        h.set_mtime(now);
        h.set_size(df.len() as u64);
        tar.append_data(&mut h, &plan.dockerfile_name, df.as_slice())?;
    }
    let mut w = tar.into_inner()?;
    w.flush()?;
    Ok(w.sent)
}

struct CountingReader<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: io::Read> io::Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// A `COPY`/`ADD` source in a Dockerfile that points outside the context (`../x`), found
/// before anything is sent. The engine refuses these too ("forbidden path outside the build
/// context"), but only after the whole context was transferred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escape {
    pub line: usize,
    pub instruction: String,
    pub source: String,
}

/// Scans a Dockerfile for `COPY`/`ADD` sources (without `--from`) whose cleaned path leaves
/// the context. Line continuations and the JSON form are understood; variables are not
/// expanded (the engine checks those).
pub fn find_escapes(dockerfile: &str) -> Vec<Escape> {
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut start_line = 0;
    for (i, raw) in dockerfile.lines().enumerate() {
        let trimmed = raw.trim();
        if logical.is_empty() {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            start_line = i + 1;
        } else if trimmed.starts_with('#') {
            continue;
        }
        if let Some(cont) = trimmed.strip_suffix('\\') {
            logical.push_str(cont);
            logical.push(' ');
            continue;
        }
        logical.push_str(trimmed);
        check_instruction(&logical, start_line, &mut out);
        logical.clear();
    }
    if !logical.is_empty() {
        check_instruction(&logical, start_line, &mut out);
    }
    out
}

fn check_instruction(line: &str, line_no: usize, out: &mut Vec<Escape>) {
    let mut parts = line.splitn(2, char::is_whitespace);
    let instr = parts.next().unwrap_or("").to_ascii_uppercase();
    if instr != "COPY" && instr != "ADD" {
        return;
    }
    let mut rest = parts.next().unwrap_or("").trim();
    let mut from = false;
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        if flag[..end].to_ascii_lowercase().starts_with("from") {
            from = true;
        }
        rest = flag[end..].trim_start();
    }
    if from || rest.starts_with("<<") {
        return;
    }
    let args: Vec<String> = if rest.starts_with('[') {
        match serde_json::from_str::<Vec<String>>(rest) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        rest.split_whitespace().map(str::to_string).collect()
    };
    if args.len() < 2 {
        return;
    }
    for src in &args[..args.len() - 1] {
        if src.contains("://") || src.contains('$') {
            continue;
        }
        // A leading `/` means the context root, where `..` stops.
        let cleaned = crate::ignore::go_clean(src);
        if cleaned == ".." || cleaned.starts_with("../") {
            out.push(Escape {
                line: line_no,
                instruction: instr.clone(),
                source: src.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sources_outside_the_context() {
        let df = "FROM scratch\n# COPY ../no /\nCOPY ok /ok\nCOPY a/../../secret \\\n  /x\nADD [\"../y\", \"/y\"]\nCOPY --from=build ../z /z\nCOPY --chown=1:1 ../w /w\n";
        let e = find_escapes(df);
        let got: Vec<(usize, &str)> = e.iter().map(|e| (e.line, e.source.as_str())).collect();
        assert_eq!(got, vec![(4, "a/../../secret"), (6, "../y"), (8, "../w")]);
    }

    #[test]
    fn labels_fold_into_one_instruction_in_the_built_stage() {
        let l = vec![
            ("a.b".to_string(), "x y".to_string()),
            ("q".to_string(), "say \"$HOME\" \\o/".to_string()),
        ];
        let df =
            "FROM scratch AS build\nCOPY a /a\n\nFROM scratch AS final\nCOPY --from=build /a /b";
        let out = fold_labels(df, &l, None).unwrap();
        assert!(out.ends_with("COPY --from=build /a /b\nLABEL \"a.b\"=\"x y\" \"q\"=\"say \\\"\\$HOME\\\" \\\\o/\"\n"), "{out}");
        let out = fold_labels(df, &l, Some("BUILD")).unwrap();
        assert!(
            out.starts_with("FROM scratch AS build\nCOPY a /a\n\nLABEL "),
            "{out}"
        );
        assert!(out.contains("\nFROM scratch AS final\n"));
        assert!(fold_labels(df, &l, Some("missing")).is_none());
        assert!(fold_labels("# escape=`\nFROM scratch\n", &l, None).is_none());
        // A continuation line starting with FROM is not a stage.
        let df = "FROM scratch AS a\nRUN x \\\n FROM y\nFROM scratch AS b\n";
        let out = fold_labels(df, &l, Some("a")).unwrap();
        assert!(out.contains(" FROM y\nLABEL "), "{out}");
    }

    #[test]
    fn leading_slash_is_the_context_root() {
        assert!(find_escapes("COPY /etc/passwd /x\n").is_empty());
        assert_eq!(find_escapes("COPY /../x /x\n").len(), 0);
    }
}

//! The build context as sent: the plan (walk, `.dockerignore`) comes from `e2e-context`, shared
//! with `tag-gen content`; here it is checked and written as a tar stream chunk by chunk, never
//! held in memory whole.

use bytes::{Bytes, BytesMut};
pub use e2e_context::walk::{
    plan, ContextError, ContextPlan, Entry, EntryKind, REWRITTEN_DOCKERFILE,
};
use std::fs::File;
use std::io::{self, Write};
use tokio::sync::mpsc;

/// Size of the chunks sent to the engine.
const CHUNK: usize = 256 * 1024;

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
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o600);
            h.set_mtime(now);
            h.set_size(text.len() as u64);
            tar.append_data(&mut h, ".dockerignore", text.as_slice())?;
        }
    }
    if let Some(df) = &plan.injected_dockerfile {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
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

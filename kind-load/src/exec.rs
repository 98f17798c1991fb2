//! Running commands inside node containers through the engine's exec API (never privileged),
//! optionally feeding stdin from a channel of byte chunks.

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use bytes::Bytes;
use e2e_core::report::Reporter;
use e2e_engine::error_text;
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Most output kept per stream (the tail), so a chatty command cannot grow memory.
const OUTPUT_CAP: usize = 64 * 1024;

/// What a finished command left behind.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn ok(&self) -> bool {
        self.exit_code == 0
    }

    /// stderr (or stdout when stderr is empty), trimmed, for error messages.
    pub fn message(&self) -> String {
        let s = if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        };
        if s.is_empty() {
            format!("exit code {} and no output", self.exit_code)
        } else {
            s.to_string()
        }
    }
}

/// A piece of a command's stdin. `blob` names the content-store blob the bytes belong to (a
/// `blob` frame of [`crate::frames`] and its data), so a node that holds it already is spared
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub bytes: Bytes,
    pub blob: Option<Arc<str>>,
    /// What these bytes are, for people (`layer sha256:… (76.8 MB)`), when it changes.
    pub what: Option<Arc<str>>,
}

impl From<Bytes> for Piece {
    fn from(bytes: Bytes) -> Self {
        Piece {
            bytes,
            blob: None,
            what: None,
        }
    }
}

impl Piece {
    /// `bytes` described as `what`.
    pub fn labelled(bytes: Bytes, what: &str) -> Self {
        Piece {
            bytes,
            blob: None,
            what: Some(Arc::from(what)),
        }
    }
}

/// A piece for stdin, or the reason the source broke off (the command's stdin is then closed
/// mid-stream, which the node script of [`crate::frames`] treats as a failed load).
pub type StdinItem = Result<Piece, String>;

/// What went to a command's stdin: bytes written, and bytes left out (blobs it holds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fed {
    pub written: u64,
    pub skipped: u64,
}

/// How long an exec may go on: no progress for `io` fails it (naming what it was doing), a
/// line goes to stderr after `notice` without progress, and nothing runs past `until` (the
/// whole load's `--timeout`). Waiting for input from the source is not the node's stall.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `None`: no bound (`--io-timeout 0`).
    pub io: Option<Duration>,
    pub notice: Duration,
    pub until: Option<tokio::time::Instant>,
    /// How the whole-load limit is named in messages (`--timeout 5m`).
    pub until_text: String,
    /// Where stall notices go (none: silent).
    pub rep: Option<Reporter>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            io: Some(DEFAULT_IO_TIMEOUT),
            notice: Duration::from_secs(5),
            until: None,
            until_text: String::new(),
            rep: None,
        }
    }
}

/// `--io-timeout`'s default.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(120);

impl Limits {
    /// Bounds for `io` without progress (`None` or zero: unbounded), the load's deadline.
    pub fn new(io: Option<Duration>, total: Option<Duration>, rep: Option<Reporter>) -> Self {
        let io = io.filter(|d| !d.is_zero());
        let total = total.filter(|d| !d.is_zero());
        Limits {
            io,
            // A few seconds, or less when the limit itself is short.
            notice: io.map_or(Duration::from_secs(5), |d| {
                (d / 2).min(Duration::from_secs(5))
            }),
            until: total.map(|t| tokio::time::Instant::now() + t),
            until_text: total
                .map(|t| format!("--timeout {}", secs(t)))
                .unwrap_or_default(),
            rep,
        }
    }
}

/// `90 s`, `1.5 s`
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// What an exec is doing now, and since when it has made no progress.
#[derive(Debug)]
struct Activity {
    doing: String,
    /// Whether the node has something to do (else it waits for the source).
    busy: bool,
    last: tokio::time::Instant,
    noticed: bool,
}

type Shared = Arc<std::sync::Mutex<Activity>>;

fn update(a: &Shared, f: impl FnOnce(&mut Activity)) {
    if let Ok(mut g) = a.lock() {
        f(&mut g)
    }
}

fn progress(a: &Shared) {
    update(a, |a| {
        a.last = tokio::time::Instant::now();
        a.noticed = false;
    })
}

/// Busy from now on (the stall clock starts when there is something to do).
fn busy(a: &Shared, doing: Option<String>) {
    update(a, |a| {
        if !a.busy {
            a.busy = true;
            a.last = tokio::time::Instant::now();
            a.noticed = false;
        }
        if let Some(d) = doing {
            a.doing = d;
        }
    })
}

/// Waiting for the source (the slowest node sets the pace of all): not this node's stall.
fn idle(a: &Shared) {
    update(a, |a| {
        a.busy = false;
        a.doing = "waiting for more of the image (the slowest node sets the pace)".into();
    })
}

/// The command for people: `ctr images ls`, or "the load script".
fn describe(cmd: &[String]) -> String {
    if cmd.first().map(String::as_str) == Some("sh") {
        return "the load script".into();
    }
    let shown: Vec<&str> = cmd
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--namespace" && *a != crate::containerd::NAMESPACE)
        .take(4)
        .collect();
    format!("`{}`", shown.join(" "))
}

/// Ends with the reason once the exec has made no progress for too long, or the load's
/// deadline has passed; says so on stderr after a few seconds without progress.
async fn watchdog(a: Shared, lim: Limits, container: String) -> String {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let now = tokio::time::Instant::now();
        let Ok(mut g) = a.lock() else {
            continue;
        };
        if lim.until.is_some_and(|u| now >= u) {
            return format!(
                "timed out: the load's time limit ({}) ran out while {}",
                lim.until_text, g.doing
            );
        }
        if !g.busy {
            continue;
        }
        let quiet = now.saturating_duration_since(g.last);
        if let Some(io) = lim.io {
            if quiet >= io {
                return format!(
                    "no progress for {} while {}; the node may be paused or its containerd \
                     hung (check with `ctr version` in the node); limit: --io-timeout \
                     (KIND_LOAD_IO_TIMEOUT)",
                    secs(io),
                    g.doing
                );
            }
        }
        if quiet >= lim.notice && !g.noticed {
            g.noticed = true;
            if let Some(rep) = &lim.rep {
                let limit = lim
                    .io
                    .map(|io| format!("; giving up after {}", secs(io)))
                    .unwrap_or_default();
                rep.warn(format!(
                    "{container}: no progress for {} while {}{limit}",
                    secs(lim.notice),
                    g.doing
                ));
            }
        }
    }
}

/// Runs `cmd` in `container` and collects its output and exit code.
pub async fn run(
    docker: &Docker,
    container: &str,
    cmd: &[String],
    lim: &Limits,
) -> Result<ExecOutput, String> {
    run_with_stdin(docker, container, cmd, None, HashSet::new(), lim)
        .await
        .map(|(o, _)| o)
}

/// Runs `cmd` in `container`; when `stdin` is given, writes every piece received to the
/// command's stdin (except those of a blob in `skip`) and closes it (EOF) when the channel
/// ends. Returns the output and what was fed. A command that exits early (closing its stdin)
/// drops the receiver, which the sender sees as a closed channel. Bounded by `lim`: on a
/// stall or the deadline the exec is dropped (its connection closes, so the command in the
/// node sees its stdin end) and the error says what it was doing.
pub async fn run_with_stdin(
    docker: &Docker,
    container: &str,
    cmd: &[String],
    stdin: Option<mpsc::Receiver<StdinItem>>,
    skip: HashSet<String>,
    lim: &Limits,
) -> Result<(ExecOutput, Fed), String> {
    let act: Shared = Arc::new(std::sync::Mutex::new(Activity {
        doing: format!("starting {}", describe(cmd)),
        busy: true,
        last: tokio::time::Instant::now(),
        noticed: false,
    }));
    tokio::select! {
        r = exec_inner(docker, container, cmd, stdin, skip, act.clone()) => r,
        why = watchdog(act, lim.clone(), container.to_string()) => Err(why),
    }
}

async fn exec_inner(
    docker: &Docker,
    container: &str,
    cmd: &[String],
    stdin: Option<mpsc::Receiver<StdinItem>>,
    skip: HashSet<String>,
    act: Shared,
) -> Result<(ExecOutput, Fed), String> {
    let exec = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(false),
                privileged: Some(false),
                cmd: Some(cmd.to_vec()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| error_text(&e))?;
    let started = docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: Some(64 * 1024),
            }),
        )
        .await
        .map_err(|e| error_text(&e))?;
    let StartExecResults::Attached { mut output, input } = started else {
        return Err("the engine detached the exec".into());
    };
    busy(
        &act,
        Some(format!("waiting for {} to answer", describe(cmd))),
    );

    let mut out = ExecOutput::default();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let read = async {
        let mut read_err = None;
        while let Some(item) = output.next().await {
            progress(&act);
            match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    push_capped(&mut stdout, &message)
                }
                Ok(LogOutput::StdErr { message }) => push_capped(&mut stderr, &message),
                Ok(LogOutput::StdIn { .. }) => {}
                Err(e) => {
                    read_err = Some(error_text(&e));
                    break;
                }
            }
        }
        read_err
    };
    let act_w = act.clone();
    let write = async move {
        let mut input = input;
        let mut fed = Fed::default();
        let Some(mut rx) = stdin else {
            drop(input);
            return (fed, None);
        };
        let mut failed = None;
        let mut writable = true;
        let mut what: Option<Arc<str>> = None;
        // Waiting for the source is not the node's stall.
        idle(&act_w);
        while let Some(item) = rx.recv().await {
            match item {
                Ok(piece) => {
                    if piece.what.is_some() {
                        what = piece.what.clone();
                    }
                    if piece.blob.as_deref().is_some_and(|b| skip.contains(b)) {
                        fed.skipped += piece.bytes.len() as u64;
                        continue;
                    }
                    let doing = what.as_deref().unwrap_or("the image");
                    busy(&act_w, Some(format!("streaming {doing} into the node")));
                    if let Err(e) = input.write_all(&piece.bytes).await {
                        failed = Some(format!("writing to the command's stdin: {e}"));
                        writable = false;
                        break;
                    }
                    fed.written += piece.bytes.len() as u64;
                    progress(&act_w);
                    idle(&act_w);
                }
                Err(source) => {
                    failed = Some(source);
                    break;
                }
            }
        }
        // Stop taking chunks before the (possibly slow) shutdown, so the fan-out does not wait.
        drop(rx);
        busy(
            &act_w,
            Some(match &what {
                Some(w) if failed.is_none() => format!("waiting for {w} to finish"),
                _ => "waiting for the node's command to end".to_string(),
            }),
        );
        // EOF, also after a source error: the command must not wait for more input forever.
        if writable {
            if let Err(e) = input.shutdown().await {
                failed.get_or_insert(format!("closing the command's stdin: {e}"));
            }
        }
        // Keep the write half open until the reader is done (dropping it can close the
        // connection on some engines before the command's exit is seen).
        (fed, failed.map(|f| (f, input)))
    };
    let (read_err, (fed, write_failed)) = tokio::join!(read, write);
    out.stdout = String::from_utf8_lossy(&stdout).into_owned();
    out.stderr = String::from_utf8_lossy(&stderr).into_owned();
    out.exit_code = exit_code(docker, &exec.id).await?;
    if let Some(e) = read_err {
        if out.exit_code == 0 {
            return Err(e);
        }
    }
    if let Some((why, _input)) = write_failed {
        if out.exit_code == 0 {
            return Err(why);
        }
        if out.stderr.trim().is_empty() {
            out.stderr = why;
        }
    }
    Ok((out, fed))
}

/// The exit code once the exec has finished (the output stream can end a moment before the
/// engine records the exit).
async fn exit_code(docker: &Docker, id: &str) -> Result<i64, String> {
    for attempt in 0..100u32 {
        let info = docker.inspect_exec(id).await.map_err(|e| error_text(&e))?;
        if info.running != Some(true) {
            if let Some(code) = info.exit_code {
                return Ok(code);
            }
        }
        tokio::time::sleep(Duration::from_millis(if attempt < 10 { 5 } else { 50 })).await;
    }
    Err("the command did not finish after its output ended".into())
}

fn push_capped(buf: &mut Vec<u8>, msg: &[u8]) {
    buf.extend_from_slice(msg);
    if buf.len() > OUTPUT_CAP {
        let cut = buf.len() - OUTPUT_CAP;
        buf.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_capped_to_its_tail() {
        let mut b = Vec::new();
        push_capped(&mut b, &vec![b'a'; OUTPUT_CAP]);
        push_capped(&mut b, b"end");
        assert_eq!(b.len(), OUTPUT_CAP);
        assert!(b.ends_with(b"aend"));
    }

    #[test]
    fn message_prefers_stderr() {
        let o = ExecOutput {
            exit_code: 1,
            stdout: "out".into(),
            stderr: " ctr: failed \n".into(),
        };
        assert_eq!(o.message(), "ctr: failed");
        let o = ExecOutput {
            exit_code: 3,
            ..Default::default()
        };
        assert_eq!(o.message(), "exit code 3 and no output");
    }
}

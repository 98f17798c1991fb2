//! Running commands inside node containers through the engine's exec API (never privileged),
//! optionally feeding stdin from a channel of byte chunks.

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::Docker;
use bytes::Bytes;
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
}

impl From<Bytes> for Piece {
    fn from(bytes: Bytes) -> Self {
        Piece { bytes, blob: None }
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

/// Runs `cmd` in `container` and collects its output and exit code.
pub async fn run(docker: &Docker, container: &str, cmd: &[String]) -> Result<ExecOutput, String> {
    run_with_stdin(docker, container, cmd, None, HashSet::new())
        .await
        .map(|(o, _)| o)
}

/// Runs `cmd` in `container`; when `stdin` is given, writes every piece received to the
/// command's stdin (except those of a blob in `skip`) and closes it (EOF) when the channel
/// ends. Returns the output and what was fed. A command that exits early (closing its stdin)
/// drops the receiver, which the sender sees as a closed channel.
pub async fn run_with_stdin(
    docker: &Docker,
    container: &str,
    cmd: &[String],
    stdin: Option<mpsc::Receiver<StdinItem>>,
    skip: HashSet<String>,
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
        .map_err(|e| engine_error(&e))?;
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
        .map_err(|e| engine_error(&e))?;
    let StartExecResults::Attached { mut output, input } = started else {
        return Err("the engine detached the exec".into());
    };

    let mut out = ExecOutput::default();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let read = async {
        let mut read_err = None;
        while let Some(item) = output.next().await {
            match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    push_capped(&mut stdout, &message)
                }
                Ok(LogOutput::StdErr { message }) => push_capped(&mut stderr, &message),
                Ok(LogOutput::StdIn { .. }) => {}
                Err(e) => {
                    read_err = Some(engine_error(&e));
                    break;
                }
            }
        }
        read_err
    };
    let write = async move {
        let mut input = input;
        let mut fed = Fed::default();
        let Some(mut rx) = stdin else {
            drop(input);
            return (fed, None);
        };
        let mut failed = None;
        let mut writable = true;
        while let Some(item) = rx.recv().await {
            match item {
                Ok(piece) => {
                    if piece.blob.as_deref().is_some_and(|b| skip.contains(b)) {
                        fed.skipped += piece.bytes.len() as u64;
                        continue;
                    }
                    if let Err(e) = input.write_all(&piece.bytes).await {
                        failed = Some(format!("writing to the command's stdin: {e}"));
                        writable = false;
                        break;
                    }
                    fed.written += piece.bytes.len() as u64;
                }
                Err(source) => {
                    failed = Some(source);
                    break;
                }
            }
        }
        // Stop taking chunks before the (possibly slow) shutdown, so the fan-out does not wait.
        drop(rx);
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
        let info = docker
            .inspect_exec(id)
            .await
            .map_err(|e| engine_error(&e))?;
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

/// The engine's own message for an API error (without bollard's wrapping).
pub fn engine_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
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

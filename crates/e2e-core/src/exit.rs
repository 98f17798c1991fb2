//! Exit codes and the error type every tool's `main` turns into a message and a code.

use std::fmt;
use std::process::ExitCode;

/// The operation failed (a build, a load, a migration).
pub const FAILURE: u8 = 1;
/// Usage or configuration error: bad flags, unusable input.
pub const USAGE: u8 = 2;
/// Stopped by Ctrl-C (128 + SIGINT, what a shell reports for a process the signal killed).
pub const INTERRUPTED: u8 = 130;

/// An error a tool reports to a person: one message (already saying what to do next) and the
/// process exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            code: FAILURE,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: USAGE,
            message: message.into(),
        }
    }
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self {
            code: INTERRUPTED,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Prints `tool: error: message` on stderr and returns the exit code; used by every `main.rs`.
pub fn finish(tool: &str, result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{tool}: error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

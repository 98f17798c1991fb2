//! Messages for people, on stderr: plain timestamped lines when stderr is not a terminal
//! (CI logs), bare lines on a terminal; `-q` silences, `-v` adds detail.

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

impl Verbosity {
    /// From `-q` and the number of `-v` flags.
    pub fn from_flags(quiet: bool, verbose: u8) -> Self {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            _ => Verbosity::Verbose,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Reporter {
    tool: &'static str,
    verbosity: Verbosity,
    terminal: bool,
}

impl Reporter {
    pub fn new(tool: &'static str, verbosity: Verbosity) -> Self {
        Self {
            tool,
            verbosity,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Whether live (redrawn) progress may be shown: a terminal that can redraw (not
    /// `TERM=dumb`, which gets plain lines instead), and not `-q`.
    pub fn is_terminal(&self) -> bool {
        live_allowed(
            self.terminal,
            std::env::var("TERM").ok().as_deref(),
            self.verbosity,
        )
    }

    /// Whether colour may be used (a terminal, and `NO_COLOR` unset).
    pub fn color(&self) -> bool {
        self.terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    pub fn info(&self, msg: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            self.line(msg.as_ref());
        }
    }

    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(msg.as_ref());
        }
    }

    /// Warnings are shown even with `-q`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.line(&format!("warning: {}", msg.as_ref()));
    }

    /// A line shown at every verbosity, without a prefix (failure details, summaries).
    pub fn always(&self, msg: impl AsRef<str>) {
        self.line(msg.as_ref());
    }

    fn line(&self, msg: &str) {
        if self.terminal {
            eprintln!("{msg}");
        } else {
            eprintln!("{} {}: {msg}", utc_timestamp(SystemTime::now()), self.tool);
        }
    }
}

fn live_allowed(terminal: bool, term: Option<&str>, verbosity: Verbosity) -> bool {
    terminal && term != Some("dumb") && verbosity != Verbosity::Quiet
}

/// `2026-11-26T15:46:23Z`, computed without a date crate (civil-from-days, H. Hinnant).
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dumb_terminals_and_quiet_get_no_live_progress() {
        assert!(live_allowed(true, Some("xterm"), Verbosity::Normal));
        assert!(live_allowed(true, None, Verbosity::Verbose));
        assert!(!live_allowed(true, Some("dumb"), Verbosity::Normal));
        assert!(!live_allowed(true, Some("xterm"), Verbosity::Quiet));
        assert!(!live_allowed(false, Some("xterm"), Verbosity::Normal));
    }

    #[test]
    fn formats_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_734_278_400);
        assert_eq!(utc_timestamp(t), "2024-12-15T16:00:00Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00Z");
    }
}

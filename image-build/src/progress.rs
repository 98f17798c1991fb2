//! What people see on stderr while builds run: on a terminal, one live line per build with
//! its current step (build output only with `-v`); otherwise every output line, prefixed with
//! its image, as plain timestamped lines.

use e2e_core::report::{Reporter, Verbosity};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct Ui {
    reporter: Reporter,
    live: Option<MultiProgress>,
}

impl Ui {
    pub fn new(reporter: Reporter) -> Arc<Self> {
        let live = reporter
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Arc::new(Ui { reporter, live })
    }

    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// A message for people (above the live lines when there are some).
    pub fn info(&self, msg: impl AsRef<str>) {
        match &self.live {
            Some(mp) if self.reporter.verbosity() >= Verbosity::Normal => {
                let _ = mp.println(msg.as_ref());
            }
            _ => self.reporter.info(msg),
        }
    }

    /// Shown even with `-q`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        match &self.live {
            Some(mp) => {
                let _ = mp.println(format!("warning: {}", msg.as_ref()));
            }
            None => self.reporter.warn(msg),
        }
    }

    /// An error block (failure details), shown even with `-q`.
    pub fn error_block(&self, text: &str) {
        match &self.live {
            Some(mp) => {
                let _ = mp.println(text);
            }
            None => {
                for line in text.lines() {
                    self.reporter.always(line);
                }
            }
        }
    }

    /// A live line (or plain lines) for one build.
    pub fn slot(self: &Arc<Self>, name: &str) -> Slot {
        let bar = self.live.as_ref().map(|mp| {
            let bar = mp.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.to_string());
            bar.set_message("waiting for a build slot");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Slot {
            ui: Arc::clone(self),
            name: name.to_string(),
            bar,
        }
    }

    /// Stops redrawing (before the final summary).
    pub fn clear(&self) {
        if let Some(mp) = &self.live {
            let _ = mp.clear();
        }
    }
}

/// One build's place on stderr.
#[derive(Debug, Clone)]
pub struct Slot {
    ui: Arc<Ui>,
    name: String,
    bar: Option<ProgressBar>,
}

impl Slot {
    /// A line of build output.
    pub fn log(&self, line: &str) {
        let verbosity = self.ui.reporter.verbosity();
        match (&self.bar, &self.ui.live) {
            (Some(_), Some(mp)) => {
                if verbosity >= Verbosity::Verbose {
                    let _ = mp.println(format!("[{}] {line}", self.name));
                }
            }
            _ => self.ui.reporter.info(format!("[{}] {line}", self.name)),
        }
    }

    /// The current step changed (live line only; plain output already has the step line).
    pub fn status(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        }
    }

    /// A state change worth a plain line too (started, sending context, done).
    pub fn event(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(text.to_string()),
            None => self.ui.reporter.info(format!("[{}] {text}", self.name)),
        }
    }

    /// Ends the live line with a final word.
    pub fn finish(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(text.to_string()),
            None => self.ui.reporter.info(format!("[{}] {text}", self.name)),
        }
    }
}

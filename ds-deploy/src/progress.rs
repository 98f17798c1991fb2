//! The live status of each component on stderr: one redrawn line per component on a terminal,
//! a timestamped line whenever a component's state changes otherwise (CI logs).

use e2e_core::report::Reporter;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct Progress {
    inner: Arc<Mutex<Inner>>,
    reporter: Reporter,
}

struct Inner {
    live: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
    last: BTreeMap<String, String>,
}

impl Progress {
    pub fn new(reporter: Reporter) -> Self {
        let live = reporter
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            inner: Arc::new(Mutex::new(Inner {
                live,
                bars: BTreeMap::new(),
                last: BTreeMap::new(),
            })),
            reporter,
        }
    }

    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// Sets `component`'s state; printed only when it changed.
    pub fn set(&self, component: &str, state: impl Into<String>) {
        let state = state.into();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.last.get(component) == Some(&state) {
            return;
        }
        inner.last.insert(component.to_string(), state.clone());
        match inner.live.clone() {
            Some(multi) => {
                let bar = inner
                    .bars
                    .entry(component.to_string())
                    .or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template(
                                "{spinner} {prefix:<14} {elapsed:>4} {wide_msg}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(component.to_string());
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    })
                    .clone();
                bar.set_message(state);
            }
            None => self.reporter.info(format!("{component}: {state}")),
        }
    }

    /// Ends `component`'s line with a final state.
    pub fn finish(&self, component: &str, state: impl Into<String>) {
        let state = state.into();
        let bar = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.last.insert(component.to_string(), state.clone());
            inner.bars.get(component).cloned()
        };
        match bar {
            Some(bar) => bar.finish_with_message(state),
            None => self.reporter.info(format!("{component}: {state}")),
        }
    }

    /// Removes the live lines (before a diagnosis or the summary is printed).
    pub fn clear(&self) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(multi) = &inner.live {
            for bar in inner.bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            let _ = multi.clear();
        }
    }
}

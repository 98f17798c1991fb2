//! Several builds at once, bounded by `--jobs`; failures reported with their step and log
//! tail; `--fail-fast` and Ctrl-C stop the others by dropping their requests.

use crate::build::{self, BuildEnv, BuildResult, Status};
use crate::progress::Ui;
use crate::spec::ImageSpec;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How a run ended, beyond the per-image results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Finished,
    FailFast,
    Interrupted,
}

/// The default for `--jobs`: the number of CPUs, at least 2 (builds wait on I/O a lot).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

/// Builds every spec, at most `jobs` at once. Results come back in the order of `specs`.
pub async fn run_all(
    env: BuildEnv,
    specs: Vec<ImageSpec>,
    jobs: usize,
    fail_fast: bool,
    ui: Arc<Ui>,
) -> (Vec<BuildResult>, Ending) {
    let started = Instant::now();
    let names: Vec<String> = specs
        .iter()
        .map(|s| build::stored_reference(env.flavor, &s.reference))
        .collect();
    let mut results: Vec<Option<BuildResult>> = vec![None; specs.len()];
    let sem = Arc::new(Semaphore::new(jobs.max(1)));
    let env = Arc::new(env);
    let mut set = JoinSet::new();
    let mut task_index = std::collections::HashMap::new();
    // When each build began, so that a cancelled one reports how long it ran.
    let began: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; specs.len()]));
    for (i, spec) in specs.into_iter().enumerate() {
        let slot = ui.slot(&names[i]);
        let (sem, env, began, ui) = (
            Arc::clone(&sem),
            Arc::clone(&env),
            Arc::clone(&began),
            Arc::clone(&ui),
        );
        let name = names[i].clone();
        let handle = set.spawn(async move {
            let _permit = sem
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            // Held through build and push: another image-build of this tag waits its turn.
            let _lock = match build::lock_tag(env.endpoint.as_deref(), &name, |pid| {
                slot.event(&format!(
                    "waiting: another image-build{} is building this tag on this engine; builds of one tag take turns",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                ))
            })
            .await
            {
                Ok(l) => Some(l),
                Err(e) => {
                    ui.warn(format!(
                        "{name}: {e}; building without the same-tag lock"
                    ));
                    None
                }
            };
            if let Ok(mut b) = began.lock() {
                b[i] = Some(Instant::now());
            }
            slot.event("building");
            let mut r = build::build(&env, &spec, &slot).await;
            // The push holds the same slot: --jobs bounds builds and pushes together.
            if let Some(push) = &env.push {
                crate::push::push_built(push, &mut r, &slot).await;
            }
            let pushed = if r.digest.is_some() { ", pushed" } else { "" };
            slot.finish(&match r.status {
                Status::Built if r.cached => {
                    format!("built (all steps cached){pushed} in {:.1}s", r.seconds)
                }
                Status::Built => format!("built{pushed} in {:.1}s", r.seconds),
                Status::Skipped => format!("exists; skipped{pushed}"),
                Status::TimedOut => "timed out".to_string(),
                _ => format!("FAILED at {}", r.step.as_deref().unwrap_or("start")),
            });
            (i, r)
        });
        task_index.insert(handle.id(), i);
    }

    let mut ending = Ending::Finished;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            joined = set.join_next() => {
                let Some(joined) = joined else { break };
                match joined {
                    Ok((i, r)) => {
                        let failed = !r.ok();
                        results[i] = Some(r);
                        if failed && fail_fast && !set.is_empty() {
                            ending = Ending::FailFast;
                            ui.warn(format!(
                                "{} failed; stopping the {} other build(s) (--fail-fast)",
                                names[i], set.len()
                            ));
                            set.abort_all();
                        }
                    }
                    Err(e) if e.is_cancelled() => {}
                    Err(e) => {
                        if let Some(&i) = task_index.get(&e.id()) {
                            let mut r = BuildResult::new(&names[i], Status::Failed);
                            r.error = Some(format!("internal error: {e}"));
                            results[i] = Some(r);
                        }
                    }
                }
            }
            _ = &mut ctrl_c, if ending != Ending::Interrupted => {
                ending = Ending::Interrupted;
                ui.warn(format!(
                    "interrupted: stopping {} build(s) now; their requests to the engine are closed, which makes it stop them",
                    set.len()
                ));
                set.abort_all();
            }
        }
    }
    // Podman does not stop a running RUN step when its request is dropped: stop it here.
    let abandoned = env.take_abandoned();
    let stopped = if abandoned.is_empty() {
        None
    } else {
        let n = abandoned.len();
        let s = tokio::task::spawn_blocking(move || build::stop_run_steps(&abandoned))
            .await
            .unwrap_or_default();
        Some((n, s))
    };
    ui.clear();
    if let Some((n, s)) = stopped {
        ui.warn(format!("{n} stopped build(s): {}", s.describe()));
    }
    let secs = started.elapsed().as_secs_f64();
    let began = began.lock().map(|b| b.clone()).unwrap_or_default();
    let results: Vec<BuildResult> = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let mut r = BuildResult::new(&names[i], Status::Cancelled);
                // How long it ran before it was stopped (0 if it never started).
                if let Some(t) = began.get(i).copied().flatten() {
                    r.seconds = (t.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
                }
                r.error = Some(match ending {
                    Ending::Interrupted => "cancelled by Ctrl-C".into(),
                    _ => "cancelled after another build failed (--fail-fast)".into(),
                });
                r
            })
        })
        .collect();
    report(&ui, &results, secs);
    (results, ending)
}

/// Failure details, then one summary line, on stderr.
fn report(ui: &Ui, results: &[BuildResult], secs: f64) {
    for r in results
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::TimedOut))
    {
        let mut text = format!(
            "error: {} failed{}: {}",
            r.reference,
            r.step
                .as_deref()
                .map(|s| format!(" at `{s}`"))
                .unwrap_or_default(),
            r.error.as_deref().unwrap_or("unknown error")
        );
        if !r.log_tail.is_empty() {
            text.push_str(&format!(
                "\n  last {} line(s) of its output:",
                r.log_tail.len()
            ));
            for l in &r.log_tail {
                text.push_str(&format!("\n  | {l}"));
            }
        }
        ui.error_block(&text);
    }
    let count = |s: Status| results.iter().filter(|r| r.status == s).count();
    let cached = results
        .iter()
        .filter(|r| r.status == Status::Built && r.cached)
        .count();
    let mut parts = vec![format!("{} built", count(Status::Built))];
    if cached > 0 {
        parts.push(format!("{cached} of them fully cached"));
    }
    for (s, word) in [
        (Status::Skipped, "skipped (exist)"),
        (Status::Failed, "failed"),
        (Status::TimedOut, "timed out"),
        (Status::Cancelled, "cancelled"),
    ] {
        if count(s) > 0 {
            parts.push(format!("{} {word}", count(s)));
        }
    }
    let line = format!(
        "{} image(s) in {secs:.1}s: {}",
        results.len(),
        parts.join(", ")
    );
    // A summary, not an error: `-q` hides it (the failures above and the final error stay).
    ui.info(line);
}

//! A small stand-in for kubernaut's DataStorage service, so the bundle (`ds-deploy`) and the
//! pipeline can run end to end without the real image.
//!
//! It reads the upstream `config.yaml` and secrets files, serves the audit API on `server.port`
//! (HTTPS when `server.tls.certDir` holds a certificate), `/healthz` and `/readyz` on
//! `healthPort` and Prometheus metrics on `metricsPort`. PostgreSQL and Redis may come up after
//! it: readiness follows them. A config that cannot be read is fatal (exit 1, the file named),
//! so a misconfigured pod crash-loops with the reason in its log.

mod audit;
mod backends;
mod config;
mod health;
mod log;
mod metrics;
mod server;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use backends::Backends;
use config::Config;
use metrics::Metrics;
use server::Timeouts;

/// What every handler sees.
#[derive(Clone)]
pub struct AppState {
    pub backends: Arc<Backends>,
    pub metrics: Arc<Metrics>,
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(run());
    // A task stuck in a blocking call (a DNS lookup of an unreachable backend) must not hold
    // the exit once the servers have drained.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fatal(&message),
    }
}

/// Logs the reason on stdout (where the pod's logs are read) and on stderr, then exits 1.
fn fatal(message: &str) -> ExitCode {
    log!(Error, "fatal startup error", error = message);
    eprintln!("datastorage-example: error: {message}");
    ExitCode::FAILURE
}

async fn run() -> Result<(), String> {
    let config_path = config_path();
    let config = config::load(&config_path).map_err(|e| e.to_string())?;
    start_logging(&config);
    log!(Info, "config loaded", path = config_path.display());
    let credentials = config.credentials().map_err(|e| e.to_string())?;

    let tls = tls::load_server_config(&config.server.tls.cert_dir)?;
    log_signing_cert(&config);

    let state = AppState {
        backends: Arc::new(Backends::new(&config, &credentials)?),
        metrics: Arc::new(Metrics::default()),
    };
    let sigterm = watch_sigterm()?;
    let (stop, stopped) = watch::channel(false);
    let servers = start_servers(&config, tls, state.clone(), stopped.clone()).await?;
    tokio::spawn(health::watch_readiness(state.clone(), stopped));

    wait_for_signal(sigterm).await;
    log!(Info, "shutting down: finishing in-flight requests");
    let _ = stop.send(true);
    for server in servers {
        let _ = server.await;
    }
    state.backends.pg.close().await;
    log!(Info, "stopped");
    Ok(())
}

fn config_path() -> PathBuf {
    std::env::var_os("CONFIG_PATH")
        .filter(|p| !p.is_empty())
        .map_or_else(|| config::DEFAULT_CONFIG_PATH.into(), PathBuf::from)
}

fn start_logging(config: &Config) {
    // validate() has checked the level already.
    let level = log::Level::parse(&config.logging.level).unwrap_or(log::Level::Info);
    let namespace = std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty());
    log::init(level, &config.logging.format, namespace);
}

/// Upstream signs audit exports with this certificate; the stand-in only reports whether the
/// Secret is mounted, so a missing `datastorage-signing` shows in the log.
fn log_signing_cert(config: &Config) {
    let cert = config.server.signer_cert_dir.join("tls.crt");
    if cert.exists() {
        log!(Info, "signing certificate present", path = cert.display());
    } else {
        log!(Info, "no signing certificate", path = cert.display());
    }
}

/// Binds the three listeners (so a port in use is a startup error) and serves them.
async fn start_servers(
    config: &Config,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: AppState,
    stopped: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let s = &config.server;
    let timeouts = Arc::new(Timeouts {
        read: or_unlimited(s.read_timeout),
        write: or_unlimited(s.write_timeout),
        shutdown: s.shutdown_timeout,
    });
    let api = server::bind("API", &s.host, s.port).await?;
    let health = server::bind("health", &s.host, s.health_port).await?;
    let metrics = server::bind("metrics", &s.host, s.metrics_port).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if tls.is_some() {
        log!(
            Info,
            "API serves HTTPS",
            cert_dir = s.tls.cert_dir.display()
        );
    } else {
        log!(
            Info,
            "API serves plain HTTP: no tls.crt in the cert dir",
            cert_dir = s.tls.cert_dir.display()
        );
    }
    log!(
        Info,
        "listening",
        api = format!("{scheme}://{}", local(&api)),
        health = format!("http://{}", local(&health)),
        metrics = format!("http://{}", local(&metrics))
    );

    let api_router = audit::router(state.clone()).layer(axum::middleware::from_fn_with_state(
        state.clone(),
        metrics::count_requests,
    ));
    Ok(vec![
        tokio::spawn(server::serve(
            "api",
            api,
            api_router,
            tls,
            timeouts.clone(),
            stopped.clone(),
        )),
        tokio::spawn(server::serve(
            "health",
            health,
            health::router(state.clone()),
            None,
            timeouts.clone(),
            stopped.clone(),
        )),
        tokio::spawn(server::serve(
            "metrics",
            metrics,
            metrics::router(state),
            None,
            timeouts,
            stopped,
        )),
    ])
}

fn local(listener: &tokio::net::TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "?".into(), |a| a.to_string())
}

/// Go's zero duration means "no timeout".
fn or_unlimited(d: Duration) -> Duration {
    if d.is_zero() {
        Duration::from_secs(24 * 3600)
    } else {
        d
    }
}

/// Watches SIGTERM (what the kubelet sends); installed before the servers start, so a pod
/// deleted during startup still shuts down gracefully instead of being killed by the default
/// action.
fn watch_sigterm() -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot watch SIGTERM: {e}"))
}

/// SIGTERM or Ctrl-C.
async fn wait_for_signal(mut term: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = term.recv() => log!(Info, "SIGTERM received"),
        _ = tokio::signal::ctrl_c() => log!(Info, "SIGINT received"),
    }
}

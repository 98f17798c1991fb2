//! Finding a container engine (Docker or Podman, through the Docker-compatible API) the way
//! users expect, and connecting to it with a negotiated API version.
//!
//! Candidates are tried in order until one answers `/version` within a few seconds:
//! an explicit host, else `DOCKER_HOST`, else `CONTAINER_HOST`, else the usual sockets. A
//! host the user named (flag or variable) is the only place tried, as the docker CLI does:
//! falling back to another engine would build or load into one the user did not ask for.
//! When none answers, the error lists every candidate and why it failed, so "is my daemon
//! running?" is answered by the message itself.

use bollard::Docker;
use e2e_core::CliError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a candidate may take to answer `/version` before the next one is tried. A missing
/// socket or a refused connection fails at once; this only bounds an engine that hangs, and a
/// socket-activated Podman on a busy machine can take several seconds to answer its first call.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Per-request timeout once connected (bollard's default of 120 s would cut long builds).
const REQUEST_TIMEOUT_SECS: u64 = 3600;

/// Which engine the user asked for (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineChoice {
    /// The first that answers: DOCKER_HOST, CONTAINER_HOST, Docker's socket, Podman's sockets.
    #[default]
    Auto,
    Docker,
    Podman,
}

impl std::str::FromStr for EngineChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "docker" => Ok(Self::Docker),
            "podman" => Ok(Self::Podman),
            other => Err(format!(
                "unknown engine `{other}`; expected auto, docker or podman"
            )),
        }
    }
}

// A value enum, so help lists the choices and shell completion offers them.
impl clap::ValueEnum for EngineChoice {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Auto, Self::Docker, Self::Podman]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            Self::Auto => "auto",
            Self::Docker => "docker",
            Self::Podman => "podman",
        }))
    }
}

/// The engine-selection flags every engine-using tool shares (`#[command(flatten)]` them):
/// `--engine` (`E2E_ENGINE`) and `--host` (`E2E_ENGINE_HOST`), global: accepted before or
/// after a subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EngineArgs {
    /// Which engine to use: `auto` tries DOCKER_HOST, CONTAINER_HOST, Docker's socket, then
    /// Podman's sockets; `docker`/`podman` accept only that kind.
    #[arg(
        long,
        global = true,
        env = "E2E_ENGINE",
        default_value = "auto",
        value_enum,
        ignore_case = true
    )]
    pub engine: EngineChoice,
    /// Engine API address (`unix:///run/podman/podman.sock`, `tcp://host:2375`); when given,
    /// it is the only place tried.
    #[arg(long, global = true, env = "E2E_ENGINE_HOST", value_name = "URL")]
    pub host: Option<String>,
}

impl EngineArgs {
    /// Connects as the flags say (see [`connect`]).
    pub async fn connect(&self) -> Result<Engine, CliError> {
        connect(self.engine, self.host.as_deref()).await
    }
}

/// What the connected engine turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Docker,
    Podman,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Docker => "docker",
            Flavor::Podman => "podman",
        })
    }
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub client: Docker,
    /// The URL that answered (`unix:///var/run/docker.sock`).
    pub endpoint: String,
    pub flavor: Flavor,
    /// The engine's own version string (`20.10.24`, `4.3.1`).
    pub version: String,
    /// The API version agreed on (`1.41`).
    pub api_version: String,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (API {}) at {}",
            self.flavor, self.version, self.api_version, self.endpoint
        )
    }
}

/// One place an engine may be, and where the idea came from (for the error message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub url: String,
    pub origin: &'static str,
}

/// Where to look, in order, for `choice`, given an explicit `host` (a `--host` flag).
/// Reads `DOCKER_HOST`, `CONTAINER_HOST`, `XDG_RUNTIME_DIR`, `HOME` and the user id.
pub fn candidates(choice: EngineChoice, host: Option<&str>) -> Vec<Candidate> {
    candidates_from(choice, host, &|k| std::env::var(k).ok())
}

/// [`candidates`] with the environment given as a function.
pub fn candidates_from(
    choice: EngineChoice,
    host: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<Candidate> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut out = Vec::new();
    let mut push = |url: String, origin: &'static str| {
        if !out.iter().any(|c: &Candidate| c.url == url) {
            out.push(Candidate { url, origin });
        }
    };
    if let Some(h) = host.filter(|h| !h.is_empty()) {
        push(h.to_string(), "--host");
        return out;
    }
    // A variable the user set names the engine they want: the only place tried.
    let named = match choice {
        EngineChoice::Auto => var("DOCKER_HOST")
            .map(|h| (h, "DOCKER_HOST"))
            .or_else(|| var("CONTAINER_HOST").map(|h| (h, "CONTAINER_HOST"))),
        EngineChoice::Docker => var("DOCKER_HOST").map(|h| (h, "DOCKER_HOST")),
        EngineChoice::Podman => var("CONTAINER_HOST").map(|h| (h, "CONTAINER_HOST")),
    };
    if let Some((h, origin)) = named {
        push(h, origin);
        return out;
    }
    let uid = current_uid();
    let xdg = var("XDG_RUNTIME_DIR");
    let home = var("HOME");
    let podman_sockets = || {
        let mut v = Vec::new();
        if let Some(x) = &xdg {
            v.push(format!("unix://{x}/podman/podman.sock"));
        }
        if let Some(u) = uid {
            v.push(format!("unix:///run/user/{u}/podman/podman.sock"));
        }
        v.push("unix:///run/podman/podman.sock".to_string());
        v
    };
    let docker_sockets = || {
        let mut v = vec!["unix:///var/run/docker.sock".to_string()];
        if let Some(h) = &home {
            v.push(format!("unix://{h}/.docker/run/docker.sock"));
        }
        v
    };
    match choice {
        EngineChoice::Auto => {
            for s in docker_sockets() {
                push(s, "Docker's usual socket");
            }
            for s in podman_sockets() {
                push(s, "Podman's usual socket");
            }
        }
        EngineChoice::Docker => {
            for s in docker_sockets() {
                push(s, "Docker's usual socket");
            }
        }
        EngineChoice::Podman => {
            for s in podman_sockets() {
                push(s, "Podman's usual socket");
            }
            // DOCKER_HOST pointing at Podman's socket is a common set-up; the flavour check
            // below refuses it if it turns out to be Docker.
            if let Some(h) = var("DOCKER_HOST") {
                push(h, "DOCKER_HOST");
            }
        }
    }
    out
}

/// Connects to the first candidate that answers, for `choice`.
pub async fn connect(choice: EngineChoice, host: Option<&str>) -> Result<Engine, CliError> {
    let list = candidates(choice, host);
    let mut tried = Vec::new();
    for c in &list {
        match probe(&c.url).await {
            Ok(engine) => {
                let wrong = match choice {
                    EngineChoice::Docker => engine.flavor != Flavor::Docker,
                    EngineChoice::Podman => engine.flavor != Flavor::Podman,
                    EngineChoice::Auto => false,
                };
                if !wrong {
                    return Ok(engine);
                }
                tried.push(format!(
                    "{} ({}): answered, but it is {}",
                    c.url, c.origin, engine.flavor
                ));
            }
            Err(why) => tried.push(format!("{} ({}): {why}", c.url, c.origin)),
        }
    }
    let wanted = match choice {
        EngineChoice::Auto => "a Docker or Podman engine",
        EngineChoice::Docker => "a Docker engine",
        EngineChoice::Podman => "a Podman engine",
    };
    if let [only] = list.as_slice() {
        if only.origin != "--host" {
            return Err(CliError::failure(format!(
                "cannot reach {wanted} at {} ({} is set, so nothing else was tried): {}; start \
                 that engine, or unset {} to use the usual sockets",
                only.url,
                only.origin,
                tried
                    .join("; ")
                    .trim_start_matches(&format!("{} ({}): ", only.url, only.origin)),
                only.origin
            )));
        }
    }
    Err(CliError::failure(format!(
        "cannot reach {wanted}; tried:\n  - {}\nstart the daemon (dockerd, or `podman system service`), or point DOCKER_HOST / \
         CONTAINER_HOST / --host at its socket",
        tried.join("\n  - ")
    )))
}

/// Connects to `url` and asks `/version`, negotiating the API version down to the engine's.
pub async fn probe(url: &str) -> Result<Engine, String> {
    let client = if let Some(path) = url.strip_prefix("unix://") {
        if !Path::new(path).exists() {
            return Err("socket does not exist".into());
        }
        Docker::connect_with_unix(url, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else if url.starts_with("tcp://") || url.starts_with("http://") {
        Docker::connect_with_http(url, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
    } else {
        return Err("unsupported URL scheme (use unix://, tcp:// or http://)".into());
    }
    .map_err(|e| e.to_string())?;
    let client = tokio::time::timeout(PROBE_TIMEOUT, client.negotiate_version())
        .await
        .map_err(|_| format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))?
        .map_err(|e| describe(&e))?;
    let v = tokio::time::timeout(PROBE_TIMEOUT, client.version())
        .await
        .map_err(|_| format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))?
        .map_err(|e| describe(&e))?;
    let is_podman = v.components.as_ref().is_some_and(|cs| {
        cs.iter()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"))
    });
    let api = client.client_version();
    Ok(Engine {
        endpoint: url.to_string(),
        flavor: if is_podman {
            Flavor::Podman
        } else {
            Flavor::Docker
        },
        version: v.version.unwrap_or_else(|| "unknown".into()),
        api_version: format!("{}.{}", api.major_version, api.minor_version),
        client,
    })
}

/// A short reason for a connection failure, from the innermost I/O error when there is one
/// (bollard's own message is only "client error (Connect)").
fn describe(e: &bollard::errors::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (is the daemon running?)".into()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (add yourself to the docker group, or use sudo)".into()
                }
                _ => io.to_string(),
            };
        }
        last = err.to_string();
        source = err.source();
    }
    last
}

/// A one-line description of an error from an engine call: the engine's status and message
/// when it answered, otherwise every cause (the outermost alone rarely says what failed).
pub fn error_text(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("engine answered {status_code}: {}", message.trim()),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(e) = src {
                s.push_str(&format!(": {e}"));
                src = e.source();
            }
            s
        }
    }
}

fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The socket path of a `unix://` URL, for tools that need the file.
pub fn socket_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("unix://").map(PathBuf::from)
}

/// The async runtime the engine-facing tools run on: two workers are enough for streaming
/// I/O and keep the tools light next to the engine on a 2-core machine.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_answer_is_its_status_and_message_on_one_line() {
        let e = bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message: "No such image: app:1\n".into(),
        };
        assert_eq!(error_text(&e), "engine answered 404: No such image: app:1");
    }

    #[test]
    fn explicit_host_is_the_only_candidate() {
        let c = candidates(EngineChoice::Auto, Some("tcp://10.0.0.1:2375"));
        assert_eq!(
            c,
            vec![Candidate {
                url: "tcp://10.0.0.1:2375".into(),
                origin: "--host"
            }]
        );
    }

    #[test]
    fn a_set_docker_host_is_the_only_candidate() {
        let env = |k: &str| match k {
            "DOCKER_HOST" => Some("tcp://127.0.0.1:1".to_string()),
            "CONTAINER_HOST" => Some("unix:///run/podman/podman.sock".to_string()),
            _ => None,
        };
        for choice in [EngineChoice::Auto, EngineChoice::Docker] {
            let c = candidates_from(choice, None, &env);
            assert_eq!(c.len(), 1, "{c:?}");
            assert_eq!(c[0].origin, "DOCKER_HOST");
        }
        let c = candidates_from(EngineChoice::Podman, None, &env);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].origin, "CONTAINER_HOST");
        let c = candidates_from(EngineChoice::Auto, None, &|_| None);
        assert!(c.len() > 2, "{c:?}");
    }

    #[test]
    fn podman_candidates_end_with_the_rootful_socket_before_docker_host() {
        let c = candidates_from(EngineChoice::Podman, None, &|_| None);
        assert!(c.iter().any(|c| c.url == "unix:///run/podman/podman.sock"));
        assert!(
            !c.iter()
                .any(|c| c.url == "unix:///var/run/docker.sock"
                    && c.origin == "Docker's usual socket")
        );
    }

    #[test]
    fn engine_args_read_flags_and_env() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            e: EngineArgs,
        }
        let t = T::try_parse_from(["t", "--engine", "podman", "--host", "unix:///x.sock"]).unwrap();
        assert_eq!(t.e.engine, EngineChoice::Podman);
        assert_eq!(t.e.host.as_deref(), Some("unix:///x.sock"));
        assert!(T::try_parse_from(["t", "--engine", "rkt"]).is_err());
    }

    #[tokio::test]
    async fn an_unreachable_docker_host_is_an_error_naming_it() {
        // The only test here that sets the environment (nextest runs each test in its own
        // process); a real socket path that does not exist, so nothing answers.
        std::env::set_var("DOCKER_HOST", "unix:///nonexistent/e2e-engine.sock");
        let err = connect(EngineChoice::Auto, None).await.unwrap_err();
        assert_eq!(err.code, 1);
        assert!(
            err.message.contains("unix:///nonexistent/e2e-engine.sock"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("DOCKER_HOST is set"),
            "{}",
            err.message
        );
        assert!(
            !err.message.contains("Docker's usual socket"),
            "{}",
            err.message
        );
    }

    #[test]
    fn parses_choice() {
        assert_eq!("Podman".parse::<EngineChoice>(), Ok(EngineChoice::Podman));
        assert!("rkt".parse::<EngineChoice>().is_err());
    }

    #[tokio::test]
    async fn unreachable_engine_lists_what_was_tried() {
        let start = std::time::Instant::now();
        let err = connect(EngineChoice::Auto, Some("unix:///nonexistent/docker.sock"))
            .await
            .unwrap_err();
        assert_eq!(err.code, 1);
        assert!(err
            .message
            .contains("unix:///nonexistent/docker.sock (--host): socket does not exist"));
        assert!(start.elapsed() < Duration::from_secs(5));
        let err = connect(EngineChoice::Auto, Some("ssh://x"))
            .await
            .unwrap_err();
        assert!(err.message.contains("unsupported URL scheme"));
    }
}

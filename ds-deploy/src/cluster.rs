//! Connecting to the cluster named by the kubeconfig and context, and failing fast, with one
//! line, when it cannot be used: a wrong file, an unknown context, an API server that does not
//! answer. These are configuration errors (exit 2), found before anything is applied.

use crate::values::Target;
use e2e_core::CliError;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::time::Duration;

/// How long the API server has to answer the first request.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn connect(target: &Target) -> Result<Client, CliError> {
    let opts = KubeConfigOptions {
        context: target.context.clone(),
        ..Default::default()
    };
    let context = target.context.as_deref().unwrap_or("the current context");
    let (config, source) = match &target.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|e| {
                CliError::usage(format!("cannot read kubeconfig {}: {e}", path.display()))
            })?;
            let source = path.display().to_string();
            (Config::from_custom_kubeconfig(kc, &opts).await, source)
        }
        None => (
            Config::from_kubeconfig(&opts).await,
            std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into()),
        ),
    };
    let mut config = config.map_err(|e| {
        CliError::usage(format!(
            "kubeconfig {source}, {context}: {e}; pass --kubeconfig FILE and --context NAME"
        ))
    })?;
    config.connect_timeout = Some(Duration::from_secs(5));
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config)
        .map_err(|e| CliError::usage(format!("cannot use the cluster at {url}: {e}")))?;
    match tokio::time::timeout(REACH_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(CliError::usage(format!(
            "the API server at {url} ({context} of {source}) refused us: {e}; check --kubeconfig and --context"
        ))),
        Err(_) => Err(CliError::usage(format!(
            "the API server at {url} ({context} of {source}) did not answer within {}s; is the cluster running?",
            REACH_TIMEOUT.as_secs()
        ))),
    }
}

/// A kube error in one line.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let msg = s.message.trim();
            if msg.is_empty() {
                format!("{} ({})", s.reason, s.code)
            } else {
                msg.to_string()
            }
        }
        other => other.to_string(),
    }
}

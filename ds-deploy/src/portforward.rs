//! An in-process port-forward to a pod through the API server: a listener on 127.0.0.1 that the
//! OS gives a free port and that stays ours for the whole run (no pick-a-port-then-reuse race,
//! no kubectl), each accepted connection carried over its own port-forward stream.

use crate::cluster::describe;
use e2e_core::CliError;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct PortForward {
    pub local: SocketAddr,
    task: JoinHandle<()>,
}

impl PortForward {
    /// Starts forwarding 127.0.0.1:<free port> to `pod`'s `port`.
    pub async fn start(pods: Api<Pod>, pod: &str, port: u16) -> Result<Self, CliError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| CliError::failure(format!("cannot listen on 127.0.0.1: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| CliError::failure(format!("cannot read the local address: {e}")))?;
        let pod = pod.to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let pods = pods.clone();
                let pod = pod.clone();
                tokio::spawn(async move {
                    let mut pf = match pods.portforward(&pod, &[port]).await {
                        Ok(pf) => pf,
                        Err(e) => {
                            eprintln!(
                                "ds-deploy: port-forward to {pod}:{port} failed: {}",
                                describe(&e)
                            );
                            return;
                        }
                    };
                    if let Some(mut upstream) = pf.take_stream(port) {
                        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                        drop(upstream);
                    }
                    let _ = pf.join().await;
                });
            }
        });
        Ok(PortForward { local, task })
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

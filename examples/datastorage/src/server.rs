//! Serving a router on a listener, over TLS or plain HTTP/1.1, with graceful shutdown.
//!
//! One accept loop for the three servers (API, health, metrics) so they share the timeouts and
//! the shutdown behaviour: on shutdown the listener closes at once (new connections are
//! refused, which is what a terminating pod wants), keep-alive connections are told to close
//! after their current request, and in-flight requests get `shutdownTimeout` to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub struct Timeouts {
    /// Time for the TLS handshake and for a request's headers to arrive.
    pub read: Duration,
    /// Time for the handler to produce a response.
    pub write: Duration,
    /// Time in-flight requests get after shutdown begins.
    pub shutdown: Duration,
}

/// Binds `host:port`, naming the address when that fails.
pub async fn bind(what: &str, host: &str, port: u16) -> Result<TcpListener, String> {
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("{what}: cannot listen on {addr}: {e}"))
}

/// Serves `router` on `listener` until `shutdown` turns true, then drains.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    timeouts: Arc<Timeouts>,
    mut shutdown: watch::Receiver<bool>,
) {
    let write_timeout = timeouts.write;
    let router = router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| respond_within(write_timeout, req, next),
    ));
    let acceptor = tls.map(TlsAcceptor::from);
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    crate::log!(Warn, "accept failed", server = name, error = e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(
            name,
            stream,
            peer,
            acceptor.clone(),
            router.clone(),
            timeouts.clone(),
            shutdown.clone(),
        ));
    }
    drop(listener);
    let drained = tokio::time::timeout(timeouts.shutdown, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        crate::log!(
            Warn,
            "connections still open after the shutdown timeout; closing them",
            server = name,
            open = connections.len()
        );
        connections.abort_all();
    }
}

async fn serve_connection(
    name: &'static str,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    timeouts: Arc<Timeouts>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    match acceptor {
        None => http1(TokioIo::new(stream), router, &timeouts, shutdown).await,
        Some(acceptor) => {
            match tokio::time::timeout(timeouts.read, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => http1(TokioIo::new(tls), router, &timeouts, shutdown).await,
                // A failed handshake (wrong CA on the client, plain HTTP to the HTTPS port) is
                // the client's problem, but worth a line when debugging a test setup.
                Ok(Err(e)) => {
                    crate::log!(
                        Debug,
                        "TLS handshake failed",
                        server = name,
                        peer = peer,
                        error = e
                    )
                }
                Err(_) => crate::log!(Debug, "TLS handshake timed out", server = name, peer = peer),
            }
        }
    }
}

async fn http1<I>(io: I, router: Router, timeouts: &Timeouts, mut shutdown: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.read);
    let conn = builder.serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.changed() => {}
    }
    // Finish the request in flight (if any), then close instead of keeping the connection alive.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Bounds a handler's time (the upstream `writeTimeout`): a stuck database call answers 503
/// instead of holding the client until its own timeout.
async fn respond_within(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("request took longer than the write timeout ({limit:?})\n"),
        )
            .into_response(),
    }
}

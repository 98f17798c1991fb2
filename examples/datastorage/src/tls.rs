//! The API's server certificate: `tls.crt` and `tls.key` from `server.tls.certDir`.
//!
//! The Secret is mounted `optional: true` upstream, so an absent certificate means plain HTTP,
//! not an error. A certificate without a usable key is an error: half a TLS setup is a
//! deployment mistake that should crash the pod with a message, not serve clear text.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Loads the server TLS config, or `None` when the directory holds no `tls.crt`.
pub fn load_server_config(cert_dir: &Path) -> Result<Option<Arc<ServerConfig>>, String> {
    let cert_path = cert_dir.join("tls.crt");
    let key_path = cert_dir.join("tls.key");
    if !cert_path.exists() {
        return Ok(None);
    }
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "{} and {} do not form a usable certificate: {e}",
                    cert_path.display(),
                    key_path.display()
                )
            })?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no CERTIFICATE block", path.display()));
    }
    Ok(certs)
}

/// Accepts `EC PRIVATE KEY` (SEC1, what upstream's Go helpers write), `PRIVATE KEY` (PKCS#8)
/// and `RSA PRIVATE KEY` (PKCS#1).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?
        .ok_or_else(|| {
            format!(
                "{}: no private key (expected EC PRIVATE KEY, PRIVATE KEY or RSA PRIVATE KEY)",
                path.display()
            )
        })
}

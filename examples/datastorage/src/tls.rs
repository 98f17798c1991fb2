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

#[cfg(test)]
mod tests {
    use super::*;

    fn write_cert(dir: &Path, key_pair: &rcgen::KeyPair, key_pem: &str) {
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(key_pair)
            .unwrap();
        std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("tls.key"), key_pem).unwrap();
    }

    #[test]
    fn no_certificate_means_plain_http() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_server_config(dir.path()).unwrap().is_none());
        assert!(load_server_config(&dir.path().join("absent"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn ecdsa_pkcs8_and_rsa_pkcs1_keys_load() {
        let dir = tempfile::tempdir().unwrap();
        let ec = rcgen::KeyPair::generate().unwrap();
        write_cert(dir.path(), &ec, &ec.serialize_pem());
        assert!(load_server_config(dir.path()).unwrap().is_some());

        // `RSA PRIVATE KEY` (PKCS#1), as openssl and older tooling write it.
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pkcs8 = rsa_key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let signer =
            rcgen::KeyPair::from_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256).unwrap();
        let pkcs1 = rsa_key.to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        write_cert(dir.path(), &signer, &pkcs1);
        assert!(load_server_config(dir.path()).unwrap().is_some());
    }

    #[test]
    fn a_certificate_without_a_usable_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ec = rcgen::KeyPair::generate().unwrap();
        write_cert(dir.path(), &ec, "");
        let e = load_server_config(dir.path()).unwrap_err();
        assert!(e.contains("tls.key") && e.contains("no private key"), "{e}");
        std::fs::remove_file(dir.path().join("tls.key")).unwrap();
        let e = load_server_config(dir.path()).unwrap_err();
        assert!(e.contains("tls.key") && e.contains("cannot read"), "{e}");
        // A key that does not match the certificate.
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(dir.path().join("tls.key"), other.serialize_pem()).unwrap();
        let e = load_server_config(dir.path()).unwrap_err();
        assert!(e.contains("do not form a usable certificate"), "{e}");
    }
}

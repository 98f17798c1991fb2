//! Certificates made in-process, as the upstream bundle has them: the inter-service CA (ECDSA
//! P-256), DataStorage's serving certificate signed by it, and the RSA-2048 signing
//! certificate. Each object records when it expires and what it was made for, so a re-run
//! reuses a set that is still valid for an hour and changes nothing.

use e2e_core::CliError;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// Annotation holding the set's expiry (unix seconds).
pub const NOT_AFTER: &str = "ds-deploy.kubernaut.io/not-after";
/// Annotation holding what the set was made for (namespace and service name).
pub const MADE_FOR: &str = "ds-deploy.kubernaut.io/made-for";

pub const CA_CN: &str = "kubernaut-inter-service-ca";
pub const SERVICE: &str = "data-storage-service";
const LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// A set that expires sooner than this is made again.
pub const MIN_REMAINING: Duration = Duration::from_secs(3600);

/// The PEM material of the three objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSet {
    pub ca_pem: String,
    pub tls_crt: String,
    pub tls_key: String,
    pub signing_crt: String,
    pub signing_key: String,
    /// Unix seconds.
    pub not_after: u64,
    pub made_for: String,
}

/// What a set must have been made for: a namespace changes the certificate's names.
pub fn made_for(namespace: &str) -> String {
    format!("{SERVICE}.{namespace}")
}

/// The DNS names of DataStorage's certificate (plus IP 127.0.0.1), as upstream.
pub fn dns_names(namespace: &str) -> Vec<String> {
    vec![
        "localhost".into(),
        SERVICE.into(),
        format!("{SERVICE}.{namespace}"),
        format!("{SERVICE}.{namespace}.svc"),
        format!("{SERVICE}.{namespace}.svc.cluster.local"),
    ]
}

/// Whether an existing set may be reused at `now`.
pub fn reusable(not_after: u64, made: &str, namespace: &str, now: SystemTime) -> bool {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX);
    made == made_for(namespace) && not_after >= now.saturating_add(MIN_REMAINING.as_secs())
}

fn err(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::failure(format!("cannot make the {what}: {e}"))
}

/// Makes a new set for DataStorage in `namespace`.
pub fn generate(namespace: &str) -> Result<CertSet, CliError> {
    let now = OffsetDateTime::now_utc();
    let not_before = now - time::Duration::hours(1);
    let not_after = now + time::Duration::seconds(LIFETIME.as_secs() as i64);

    // CA: ECDSA P-256, valid from an hour ago (clock skew between host and nodes).
    let ca_key =
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| err("CA key", e))?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, CA_CN);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca
        .self_signed(&ca_key)
        .map_err(|e| err("CA certificate", e))?;
    let issuer = Issuer::new(ca, ca_key);

    // DataStorage's serving certificate.
    let leaf_key =
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| err("TLS key", e))?;
    let mut leaf =
        CertificateParams::new(dns_names(namespace)).map_err(|e| err("TLS certificate", e))?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    leaf.distinguished_name.push(DnType::CommonName, SERVICE);
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .map_err(|e| err("TLS certificate", e))?;

    // Signing certificate: RSA 2048, self-signed (ring cannot generate RSA keys; the rsa crate can).
    let signing_key = rsa_key()?;
    let mut signing = CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| err("signing certificate", e))?;
    signing
        .distinguished_name
        .push(DnType::CommonName, "datastorage-signing");
    signing.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    signing.not_before = not_before;
    signing.not_after = not_after;
    let signing_cert = signing
        .self_signed(&signing_key)
        .map_err(|e| err("signing certificate", e))?;

    Ok(CertSet {
        ca_pem: ca_cert.pem(),
        tls_crt: leaf_cert.pem(),
        tls_key: leaf_key.serialize_pem(),
        signing_crt: signing_cert.pem(),
        signing_key: signing_key.serialize_pem(),
        not_after: not_after.unix_timestamp() as u64,
        made_for: made_for(namespace),
    })
}

fn rsa_key() -> Result<KeyPair, CliError> {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| err("RSA signing key", e))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| err("RSA signing key", e))?;
    KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| err("RSA signing key", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_set_for_the_namespace() {
        let set = generate("team-a").unwrap();
        assert!(set.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(set.tls_key.contains("PRIVATE KEY"));
        assert!(set.signing_key.contains("PRIVATE KEY"));
        assert_eq!(set.made_for, "data-storage-service.team-a");
        assert!(reusable(
            set.not_after,
            &set.made_for,
            "team-a",
            SystemTime::now()
        ));
        // Another namespace needs other names; a set about to expire is made again.
        assert!(!reusable(
            set.not_after,
            &set.made_for,
            "team-b",
            SystemTime::now()
        ));
        let late = SystemTime::now() + Duration::from_secs(23 * 3600 + 1800);
        assert!(!reusable(set.not_after, &set.made_for, "team-a", late));
    }

    #[test]
    fn names_match_upstream() {
        let n = dns_names("kubernaut-system");
        assert!(n.contains(&"data-storage-service.kubernaut-system.svc.cluster.local".to_string()));
        assert_eq!(n[0], "localhost");
    }
}

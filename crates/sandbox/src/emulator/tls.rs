//! TLS material for the emulator: the serving configuration (optional client certificates from the
//! sandbox client CA) and x509 user extraction (CN = user, O = groups, as kube-apiserver's
//! `k8s.io/apiserver/pkg/authentication/request/x509` `CommonNameUserConversion`).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use tekton_retry::api::UserInfo;
use tekton_retry_pki::CertPem;

/// A TLS setup error.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("bad PEM: {0}")]
    Pem(String),
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(String),
}

/// Every certificate in a PEM bundle.
pub fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let out: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_bytes()).collect();
    let out = out.map_err(|e| TlsError::Pem(e.to_string()))?;
    if out.is_empty() {
        return Err(TlsError::Pem("no certificate".into()));
    }
    Ok(out)
}

/// The private key in a PEM document.
pub fn key(pem: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| TlsError::Pem(e.to_string()))?
        .ok_or_else(|| TlsError::Pem("no private key".into()))
}

/// Roots from a PEM bundle.
pub fn roots(pem: &str) -> Result<RootCertStore, TlsError> {
    let mut r = RootCertStore::empty();
    for c in certs(pem)? {
        r.add(c)?;
    }
    Ok(r)
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The emulator's server configuration: serving certificate, client certificates optional but
/// verified against `client_ca_pem` when presented, ALPN h2 and http/1.1.
pub fn server_config(
    serving: &CertPem,
    client_ca_pem: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_ca_pem)?), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&serving.cert)?, key(&serving.key)?)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The user a verified client certificate names: CN → username, each O → a group, plus
/// `system:authenticated`.
pub fn user_from_cert(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push(crate::policy::AUTHENTICATED.into());
    Some(UserInfo {
        username: cn,
        groups,
        ..Default::default()
    })
}

//! The certificates the server keeps in its Secret, made with rcgen and read with x509-parser:
//! a CA, a serving certificate it signs, and the bundle of CAs clients must trust.

use chrono::{DateTime, TimeZone, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Errors making or reading certificates.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{what} is not a PEM certificate: {detail}")]
    BadCert { what: &'static str, detail: String },
    #[error("validity {0:?} is out of range")]
    Validity(std::time::Duration),
}

/// What one certificate says, as far as rotation cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub not_after: DateTime<Utc>,
    /// DNS names of the subjectAltName extension.
    pub dns_names: Vec<String>,
    /// DER bytes (to check signatures and compare).
    pub der: Vec<u8>,
}

/// A CA and its key, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedCert {
    pub cert: String,
    pub key: String,
}

fn to_offset(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Certificates start being valid this long before they are made, for clocks that lag.
const BACKDATE: chrono::Duration = chrono::Duration::minutes(5);

/// A new self-signed CA valid until `now + validity`. Its common name carries the time, as
/// client-go's `GenerateSelfSignedCertKey` does (`<host>-ca@<unix time>`), so that successive CAs
/// are told apart in logs and in the bundle.
pub fn new_ca(
    name: &str,
    now: DateTime<Utc>,
    validity: std::time::Duration,
) -> Result<KeyedCert, MaterialError> {
    let lifetime =
        chrono::Duration::from_std(validity).map_err(|_| MaterialError::Validity(validity))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("{name}-ca@{}", now.timestamp_millis()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = to_offset(now - BACKDATE);
    params.not_after = to_offset(now + lifetime);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok(KeyedCert {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A serving certificate for `dns_names`, signed by `ca`, valid until `not_after`.
pub fn new_leaf(
    ca: &KeyedCert,
    dns_names: &[String],
    now: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<KeyedCert, MaterialError> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        dns_names.first().map(String::as_str).unwrap_or("localhost"),
    );
    params.distinguished_name = dn;
    params.subject_alt_names = dns_names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
        })
        .collect::<Result<_, rcgen::Error>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = to_offset(now - BACKDATE);
    params.not_after = to_offset(not_after);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(KeyedCert {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Every certificate in a PEM text, DER-encoded.
pub fn pem_blocks(pem: &str, what: &'static str) -> Result<Vec<Vec<u8>>, MaterialError> {
    let mut out = Vec::new();
    for item in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let item = item.map_err(|e| MaterialError::BadCert {
            what,
            detail: e.to_string(),
        })?;
        if item.label == "CERTIFICATE" {
            out.push(item.contents);
        }
    }
    Ok(out)
}

/// What the first certificate of `pem` says.
pub fn info(pem: &str, what: &'static str) -> Result<CertInfo, MaterialError> {
    let der = pem_blocks(pem, what)?
        .into_iter()
        .next()
        .ok_or(MaterialError::BadCert {
            what,
            detail: "no CERTIFICATE block".into(),
        })?;
    info_der(der, what)
}

/// What a DER certificate says.
pub fn info_der(der: Vec<u8>, what: &'static str) -> Result<CertInfo, MaterialError> {
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| MaterialError::BadCert {
        what,
        detail: e.to_string(),
    })?;
    let not_after = Utc
        .timestamp_opt(cert.validity().not_after.timestamp(), 0)
        .single()
        .ok_or(MaterialError::BadCert {
            what,
            detail: "notAfter out of range".into(),
        })?;
    let dns_names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_string()),
                    GeneralName::IPAddress(b) => ip_from_bytes(b).map(|ip| ip.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CertInfo {
        not_after,
        dns_names,
        der,
    })
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// Whether `leaf` carries a valid signature of `ca`'s key.
pub fn signed_by(leaf: &CertInfo, ca: &CertInfo) -> bool {
    let (Ok((_, leaf)), Ok((_, ca))) = (
        X509Certificate::from_der(&leaf.der),
        X509Certificate::from_der(&ca.der),
    ) else {
        return false;
    };
    leaf.issuer() == ca.subject() && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

/// PEM of one DER certificate.
pub fn to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn names() -> Vec<String> {
        vec!["svc.ns.svc".into(), "127.0.0.1".into()]
    }

    #[test]
    fn a_leaf_verifies_against_its_ca_only() {
        let now = Utc::now();
        let ca = new_ca("t", now, Duration::from_secs(3600)).expect("ca");
        let other = new_ca("t", now, Duration::from_secs(3600)).expect("ca");
        let leaf = new_leaf(&ca, &names(), now, now + chrono::Duration::hours(1)).expect("leaf");
        let l = info(&leaf.cert, "leaf").expect("leaf info");
        assert!(signed_by(&l, &info(&ca.cert, "ca").expect("ca info")));
        assert!(!signed_by(&l, &info(&other.cert, "ca").expect("ca info")));
        assert_eq!(l.dns_names, names());
        assert_eq!(
            l.not_after.timestamp(),
            (now + chrono::Duration::hours(1)).timestamp()
        );
    }

    #[test]
    fn pem_round_trips_and_garbage_is_an_error() {
        let now = Utc::now();
        let ca = new_ca("t", now, Duration::from_secs(60)).expect("ca");
        let i = info(&ca.cert, "ca").expect("info");
        assert_eq!(info(&to_pem(&i.der), "ca").expect("again"), i);
        assert!(info("not a certificate", "x").is_err());
        assert!(info("", "x").is_err());
    }
}

//! Certificates made with rcgen: the sandbox's CAs and the test certificates. Nothing here is used
//! by `serve` in production, where certificates come from files.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// A PEM certificate and its PEM private key.
#[derive(Clone, Debug)]
pub struct CertPem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that can issue serving and client certificates.
pub struct Ca {
    pub pem: CertPem,
    issuer: Issuer<'static, KeyPair>,
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("a client certificate made here carries at most two groups, {0} were asked for")]
    TooManyGroups(usize),
}

impl Ca {
    /// A new self-signed CA valid from one hour ago for ten years.
    pub fn new(common_name: &str) -> Result<Ca, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(common_name, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let pem = CertPem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        let issuer = Issuer::new(params, key);
        Ok(Ca { pem, issuer })
    }

    /// A serving certificate for the given DNS names and IP addresses.
    pub fn issue_server(&self, names: &[&str]) -> Result<CertPem, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(names.first().copied().unwrap_or("localhost"), &[]);
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*n).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(
            params,
            OffsetDateTime::now_utc() - Duration::hours(1),
            Duration::days(365),
        )
    }

    /// A client certificate with CN `user` and O = each group (how Kubernetes reads x509 users).
    /// At most two groups (an rcgen limit); more is an error.
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> Result<CertPem, PkiError> {
        self.issue_client_valid(
            user,
            groups,
            OffsetDateTime::now_utc() - Duration::hours(1),
            Duration::days(365),
        )
    }

    /// A client certificate with an explicit validity window (for expired / not-yet-valid tests).
    pub fn issue_client_valid(
        &self,
        user: &str,
        groups: &[&str],
        not_before: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<CertPem, PkiError> {
        if groups.len() > 2 {
            return Err(PkiError::TooManyGroups(groups.len()));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(user, groups);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, not_before, lifetime)
    }

    /// A client certificate whose subject has two CN attributes, `first` then `last` (for the
    /// tests of which CN counts; rcgen keeps one value per attribute type, so the second is
    /// written under the CN OID 2.5.4.3 as a "custom" type).
    pub fn issue_client_two_cns(&self, first: &str, last: &str) -> Result<CertPem, PkiError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, first);
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 3]), last);
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        self.sign(params, not_before, Duration::days(365))
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        not_before: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<CertPem, PkiError> {
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.not_before = not_before;
        params.not_after = not_before + lifetime;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(CertPem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

fn dn(common_name: &str, orgs: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    // rcgen keeps one value per attribute type, so the second group is written under the same
    // OID (2.5.4.10, organizationName) as a "custom" type. Kubernetes reads every O as a group.
    if let Some(first) = orgs.first() {
        dn.push(DnType::OrganizationName, *first);
    }
    if let Some(second) = orgs.get(1) {
        dn.push(DnType::CustomDnType(vec![2, 5, 4, 10]), *second);
    }
    dn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_client_cert_with_cn_and_orgs() {
        let ca = Ca::new("test-ca").expect("ca");
        let c = ca.issue_client("alice", &["dev", "ops"]).expect("client");
        let (_, pem) = x509_parser::pem::parse_x509_pem(c.cert.as_bytes()).expect("pem");
        let cert = pem.parse_x509().expect("x509");
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .collect();
        let orgs: Vec<_> = cert
            .subject()
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .collect();
        assert_eq!(cn, vec!["alice"]);
        assert_eq!(orgs, vec!["dev", "ops"]);
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(ca.pem.cert.as_bytes()).expect("pem");
        let ca_cert = ca_pem.parse_x509().expect("x509");
        cert.verify_signature(Some(ca_cert.public_key()))
            .expect("signed by the CA");
    }
}

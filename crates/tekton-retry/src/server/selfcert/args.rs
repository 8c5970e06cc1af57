//! Flags of the self-managed serving certificate (used when `--tls-cert-file` is not given).

use std::time::Duration;

use clap::Args;

use super::SelfCertOptions;
use crate::server::duration_flag::parse_duration;

/// Flags of `tekton-retry serve` for the self-managed certificate.
#[derive(Clone, Debug, Args)]
pub struct SelfCertArgs {
    /// The server's own namespace, where the certificate Secret and the attempt records are kept
    /// (the Role `tekton-retry-server` grants the records' ConfigMaps there only; the Deployment
    /// sets it from the pod's namespace).
    #[arg(long, env = "TEKTON_RETRY_NAMESPACE", default_value = "tekton-retry")]
    pub namespace: String,

    /// Secret holding the self-managed CA and serving certificate (created when missing).
    #[arg(
        long,
        env = "TEKTON_RETRY_CERT_SECRET",
        default_value = crate::rbac::CERT_SECRET
    )]
    pub cert_secret: String,

    /// Service kube-apiserver dials (the APIService's `spec.service.name`); the certificate is
    /// for `<service>`, `<service>.<namespace>`, `<service>.<namespace>.svc` and
    /// `<service>.<namespace>.svc.cluster.local`.
    #[arg(
        long,
        env = "TEKTON_RETRY_SERVICE_NAME",
        default_value = "tekton-retry"
    )]
    pub service_name: String,

    /// Extra names (DNS or IP) for the self-managed serving certificate.
    #[arg(long, env = "TEKTON_RETRY_CERT_EXTRA_NAMES", value_delimiter = ',')]
    pub cert_extra_names: Vec<String>,

    /// The APIService whose `caBundle` the server keeps current.
    #[arg(long, env = "TEKTON_RETRY_APISERVICE", default_value = crate::api::APISERVICE_NAME)]
    pub apiservice: String,

    /// Lifetime of a self-managed CA and its serving certificates; a new CA is made when a third
    /// is left, and the old one stays trusted until it expires.
    #[arg(long, env = "TEKTON_RETRY_CERT_VALIDITY", default_value = "2160h", value_parser = parse_duration)]
    pub cert_validity: Duration,

    /// How long a new CA must have been in the APIService `caBundle` before the server serves a
    /// certificate it signed (kube-apiserver must have seen the new bundle).
    #[arg(long, env = "TEKTON_RETRY_CERT_PROPAGATION_DELAY", default_value = "1m", value_parser = parse_duration)]
    pub cert_propagation_delay: Duration,

    /// How often the certificate Secret is re-read and the APIService `caBundle` re-applied.
    #[arg(long, env = "TEKTON_RETRY_CERT_RESYNC", default_value = "1m", value_parser = parse_duration)]
    pub cert_resync: Duration,
}

impl SelfCertArgs {
    /// The options these flags describe.
    pub fn options(&self) -> SelfCertOptions {
        let svc = &self.service_name;
        let ns = &self.namespace;
        let mut dns_names = vec![
            format!("{svc}.{ns}.svc"),
            svc.clone(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc.cluster.local"),
        ];
        dns_names.extend(self.cert_extra_names.iter().cloned());
        SelfCertOptions {
            namespace: ns.clone(),
            secret: self.cert_secret.clone(),
            apiservice: self.apiservice.clone(),
            dns_names,
            validity: self.cert_validity,
            propagation_delay: self.cert_propagation_delay,
            resync: self.cert_resync,
        }
    }
}

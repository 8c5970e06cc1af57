//! The serving certificate the server makes and rotates itself when no `--tls-cert-file` is
//! given, so that no cert-manager and no script is needed before the APIService turns Available.
//!
//! Every replica, on start and then every `resync`:
//! 1. reads the Secret `<namespace>/<secret>` ([`store`]);
//! 2. patches the `caBundle` of its own APIService with the Secret's CA bundle (a no-op patch
//!    when nothing changed, so a bundle reset by hand is restored);
//! 3. decides the next write ([`plan`]): create the Secret with a new CA and serving certificate,
//!    stage a new CA next to the old one when the CA has less than a third of its life left, issue
//!    a serving certificate from the new CA once the bundle holding it has been accepted for
//!    `propagation_delay`, drop expired CAs;
//! 4. writes it only as a create (409 when another replica created it first) or as an update at
//!    the resourceVersion it read (409 when another replica wrote meanwhile); after a 409 it reads
//!    again and decides again, so replicas racing converge on the Secret one of them wrote;
//! 5. serves the Secret's serving certificate from the next TLS handshake on.
//!
//! knative's webhook certificate reconciler (`knative.dev/pkg/webhook/certificates/certificates.go`)
//! does the same kind of work for Tekton's webhook, swapping CA and certificate in one step; serving
//! a new certificate without restart is what `k8s.io/apiserver/pkg/server/dynamiccertificates`
//! (`DynamicServingCertificateController`) does for kube-apiserver.

pub mod args;
pub mod material;
pub mod plan;
pub mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Secret;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

pub use args::SelfCertArgs;
use material::KeyedCert;
use plan::{Policy, Step, Stored};
use store::{CertStore, StoreError, Written};

/// Where the certificate lives and how it rotates.
#[derive(Clone, Debug)]
pub struct SelfCertOptions {
    /// The server's own namespace (where the Secret is).
    pub namespace: String,
    /// Name of the Secret.
    pub secret: String,
    /// Name of the APIService whose `caBundle` is kept current.
    pub apiservice: String,
    /// Names the serving certificate is for.
    pub dns_names: Vec<String>,
    /// Lifetime of a CA and its serving certificates; rotation starts with a third left.
    pub validity: Duration,
    /// How long a new CA must be in the APIService `caBundle` before it signs the served
    /// certificate (kube-apiserver's APIService informer must have seen it).
    pub propagation_delay: Duration,
    /// How often the Secret is read and the APIService patched.
    pub resync: Duration,
}

/// Errors of the self-managed certificate.
#[derive(Debug, thiserror::Error)]
pub enum SelfCertError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Material(#[from] material::MaterialError),
    #[error("the Secret kept changing under this replica: {0} attempts conflicted")]
    Contended(usize),
    #[error("no serving certificate after {0:?}: {1}")]
    Timeout(Duration, String),
}

/// Metrics of the self-managed certificate.
#[derive(Clone, Default)]
pub struct CertMetrics {
    /// `tekton_retry_serving_certificate_expiration_timestamp_seconds`
    pub expiration: Gauge,
    /// `tekton_retry_serving_certificate_sync_errors_total`
    pub sync_errors: Counter,
    /// `tekton_retry_serving_certificate_rotations_total`
    pub writes: Counter,
}

impl CertMetrics {
    /// Registers under the server's `tekton_retry` prefix.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "serving_certificate_expiration_timestamp_seconds",
            "When the serving certificate in use expires (Unix time)",
            self.expiration.clone(),
        );
        registry.register(
            "serving_certificate_sync_errors",
            "Failed reads or writes of the certificate Secret or the APIService caBundle",
            self.sync_errors.clone(),
        );
        registry.register(
            "serving_certificate_writes",
            "Writes of the certificate Secret by this replica (creation, CA staged, certificate issued, expired CA dropped)",
            self.writes.clone(),
        );
    }
}

/// A running self-managed certificate: the PEM pair to serve now, and later ones.
pub struct SelfCert {
    /// The serving certificate and key (PEM) as last read; changes on rotation.
    pub serving: watch::Receiver<crate::server::tls::PemPair>,
    /// The bundle of trusted CAs (PEM) as last written to the APIService.
    pub bundle: watch::Receiver<String>,
    pub task: tokio::task::JoinHandle<()>,
}

struct Replica {
    store: CertStore,
    opts: SelfCertOptions,
    policy: Policy,
    metrics: CertMetrics,
    /// The CA (PEM) last seen accepted in a patched bundle, and since when.
    trusted: Option<(String, DateTime<Utc>)>,
}

impl SelfCert {
    /// Reads or creates the certificate (retrying for at most `startup_timeout`), then keeps it
    /// current every `resync` until `stop` turns true.
    pub async fn start(
        client: kube::Client,
        opts: SelfCertOptions,
        metrics: CertMetrics,
        startup_timeout: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> Result<SelfCert, SelfCertError> {
        let mut replica = Replica {
            store: CertStore::new(client, &opts.namespace, &opts.secret, &opts.apiservice),
            policy: Policy {
                name: "tekton-retry".into(),
                dns_names: opts.dns_names.clone(),
                validity: opts.validity,
                propagation_delay: opts.propagation_delay,
            },
            opts,
            metrics,
            trusted: None,
        };
        let deadline = tokio::time::Instant::now() + startup_timeout;
        let first = loop {
            match replica.sync().await {
                Ok(s) => break s,
                Err(e) => {
                    replica.metrics.sync_errors.inc();
                    if tokio::time::Instant::now() >= deadline {
                        return Err(SelfCertError::Timeout(startup_timeout, e.to_string()));
                    }
                    tracing::warn!(error = %e, "serving certificate not ready yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500).min(replica.opts.resync)).await;
                }
            }
        };
        let (serving_tx, serving) = watch::channel(pem_pair(&first.leaf));
        let (bundle_tx, bundle) = watch::channel(first.bundle.clone());
        replica.record_expiry(&first);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(replica.opts.resync);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.changed() => { if *stop.borrow() { return; } }
                    _ = tick.tick() => {}
                }
                match replica.sync().await {
                    Ok(s) => {
                        let pair = pem_pair(&s.leaf);
                        if *serving_tx.borrow() != pair {
                            tracing::info!(secret = %replica.opts.secret, "serving certificate changed; serving it from the next handshake");
                            replica.record_expiry(&s);
                            serving_tx.send_replace(pair);
                        }
                        bundle_tx.send_if_modified(|b| {
                            let changed = *b != s.bundle;
                            if changed {
                                b.clone_from(&s.bundle);
                            }
                            changed
                        });
                    }
                    Err(e) => {
                        replica.metrics.sync_errors.inc();
                        tracing::warn!(error = %e, "keeping the serving certificate current failed; serving the one in use");
                    }
                }
            }
        });
        Ok(SelfCert {
            serving,
            bundle,
            task,
        })
    }
}

fn pem_pair(leaf: &KeyedCert) -> crate::server::tls::PemPair {
    (leaf.cert.as_bytes().to_vec(), leaf.key.as_bytes().to_vec())
}

/// How many writes one sync tries when other replicas keep writing.
const MAX_ATTEMPTS: usize = 5;

impl Replica {
    fn record_expiry(&self, s: &Stored) {
        if let Ok(i) = material::info(&s.leaf.cert, "tls.crt") {
            self.metrics.expiration.set(i.not_after.timestamp());
        }
    }

    /// One round: read, patch the bundle, plan, write (again after a conflict). Returns what the
    /// Secret holds afterwards.
    async fn sync(&mut self) -> Result<Stored, SelfCertError> {
        for _ in 0..MAX_ATTEMPTS {
            let secret = self.store.read().await?;
            let current = secret.as_ref().map(store::stored);
            if let Some(cur) = &current {
                self.publish_bundle(cur).await?;
            }
            let trusted_at = match (&self.trusted, &current) {
                (Some((ca, at)), Some(cur)) if *ca == cur.ca.cert => Some(*at),
                _ => None,
            };
            let step = plan::plan(current.as_ref(), Utc::now(), &self.policy, trusted_at)?;
            let (next, why) = match step {
                Step::Keep => match current {
                    Some(cur) => return Ok(cur),
                    None => continue,
                },
                Step::Write { next, why } => (next, why),
            };
            match self.store.write(secret.as_ref(), &next).await? {
                Written::Ok(written) => {
                    self.metrics.writes.inc();
                    tracing::info!(secret = %self.opts.secret, namespace = %self.opts.namespace, "certificate Secret: {why}");
                    self.publish_bundle(&next).await?;
                    return Ok(store::stored(&written));
                }
                Written::Conflict => {
                    tracing::debug!("certificate Secret changed meanwhile; reading it again");
                }
            }
        }
        Err(SelfCertError::Contended(MAX_ATTEMPTS))
    }

    /// Patches the APIService `caBundle` and notes since when the current CA is trusted.
    async fn publish_bundle(&mut self, s: &Stored) -> Result<(), SelfCertError> {
        self.store.patch_bundle(&s.bundle).await?;
        let holds_ca = material::info(&s.ca.cert, "ca.crt").is_ok_and(|ca| {
            material::pem_blocks(&s.bundle, "ca-bundle.crt").is_ok_and(|b| b.contains(&ca.der))
        });
        if holds_ca && self.trusted.as_ref().is_none_or(|(ca, _)| *ca != s.ca.cert) {
            self.trusted = Some((s.ca.cert.clone(), Utc::now()));
        }
        Ok(())
    }
}

/// The Secret as read, for tests.
pub async fn read_secret(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Secret>, StoreError> {
    CertStore::new(client, namespace, name, "").read().await
}

/// What a Secret holds, for tests and tools.
pub fn stored(secret: &Secret) -> Stored {
    store::stored(secret)
}

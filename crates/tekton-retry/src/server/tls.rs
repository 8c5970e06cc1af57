//! TLS for the secure port: rustls, TLS 1.2 and 1.3 only, ALPN `h2` and `http/1.1`, a serving
//! certificate reloaded from disk without restart, and client certificates *requested* but not
//! required at the handshake.
//!
//! Like kube-apiserver (`staging/src/k8s.io/apiserver/pkg/server/secure_serving.go`,
//! `tlsConfig.ClientAuth = tls.RequestClientCert`), the handshake only checks that the client
//! holds the key of the certificate it presents; whether the certificate chains to the
//! requestheader CA or the client CA is decided per request by [`super::authn`], so that a
//! certificate from an unknown CA gets a `401 Status` instead of a broken handshake, and a CA
//! rotation applies to connections already open. The handshake does advertise both CAs' subjects
//! (Go clients, kube-apiserver's proxy among them, only send a certificate whose issuer is
//! advertised), so the TLS config is rebuilt whenever the CAs change.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio::sync::watch;

/// Largest client certificate chain accepted at the handshake. Go's TLS stack accepts a
/// Certificate message up to 64 KiB; the chain is held for the life of the connection, so a
/// thousand idle clients with 60 KB chains would hold 60 MB (twice, counting the copy the
/// request path reads). Real client chains (a leaf and an intermediate or two) are 1–5 KB.
pub const MAX_CLIENT_CHAIN_BYTES: usize = 16 * 1024;
/// Most certificates in a client chain accepted at the handshake.
pub const MAX_CLIENT_CHAIN_CERTS: usize = 8;

/// Where the serving certificate and key come from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// PEM files, watched and reloaded when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// PEM text held in memory (sandbox and tests).
    Pem { cert: String, key: String },
}

/// Errors loading TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no PEM certificate found in the serving certificate")]
    NoCertificate,
    #[error("no PEM private key found in the serving key")]
    NoKey,
    #[error("invalid PEM: {0}")]
    Pem(std::io::Error),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider used everywhere in the server (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain and key into a rustls `CertifiedKey`, checking they match.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = parse_certs(cert_pem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(TlsError::Pem)?
        .ok_or(TlsError::NoKey)?;
    let signing = provider().key_provider.load_private_key(key)?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()?;
    Ok(Arc::new(ck))
}

/// All PEM certificates in `pem`.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::Pem)
}

/// Resolves the current serving certificate (swapped on reload).
#[derive(Debug)]
struct CurrentCert(ArcSwap<CertifiedKey>);

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

/// Asks for a client certificate, accepts the connection without one, and checks only that the
/// client proves possession of the key of the certificate it sends (see the module docs).
#[derive(Debug)]
struct RequestClientCert {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The chain is verified per request against the CAs current at that time (authn.rs).
        // Only its size is checked here: the chain is kept for the life of the connection.
        let bytes = end_entity.len() + intermediates.iter().map(|c| c.len()).sum::<usize>();
        if bytes > MAX_CLIENT_CHAIN_BYTES || intermediates.len() > MAX_CLIENT_CHAIN_CERTS - 1 {
            return Err(rustls::Error::General(format!(
                "client certificate chain of {} certificates and {bytes} bytes: at most {MAX_CLIENT_CHAIN_CERTS} and {MAX_CLIENT_CHAIN_BYTES} bytes are accepted",
                intermediates.len() + 1
            )));
        }
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The live TLS configuration: the serving certificate and the advertised client CAs can change
/// while the server runs; each new connection uses the latest [`ServerConfig`].
pub struct TlsState {
    cert: Arc<CurrentCert>,
    config: ArcSwap<ServerConfig>,
}

impl TlsState {
    /// A TLS state serving `cert`, advertising no client CA yet.
    pub fn new(cert: Arc<CertifiedKey>) -> Result<Self, TlsError> {
        let cert = Arc::new(CurrentCert(ArcSwap::new(cert)));
        let config = build_config(cert.clone(), Vec::new())?;
        Ok(TlsState {
            cert,
            config: ArcSwap::new(Arc::new(config)),
        })
    }

    /// The configuration for the next handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// Serve `cert` from the next handshake on.
    pub fn set_cert(&self, cert: Arc<CertifiedKey>) {
        self.cert.0.store(cert);
    }

    /// The certificate currently served (its chain, leaf first).
    pub fn current_chain(&self) -> Vec<CertificateDer<'static>> {
        self.cert.0.load().cert.clone()
    }

    /// Advertise these CA subjects in the CertificateRequest from the next handshake on.
    pub fn set_client_ca_hints(&self, hints: Vec<DistinguishedName>) -> Result<(), TlsError> {
        let config = build_config(self.cert.clone(), hints)?;
        self.config.store(Arc::new(config));
        Ok(())
    }
}

fn build_config(
    cert: Arc<CurrentCert>,
    hints: Vec<DistinguishedName>,
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(RequestClientCert {
        hints,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The bytes of a certificate file and its key file, as last loaded.
pub type PemPair = (Vec<u8>, Vec<u8>);

/// Loads the serving certificate from `source` (first load: errors are fatal to the caller).
pub fn load(source: &TlsSource) -> Result<(Arc<CertifiedKey>, Option<PemPair>), TlsError> {
    match source {
        TlsSource::Pem { cert, key } => Ok((certified_key(cert.as_bytes(), key.as_bytes())?, None)),
        TlsSource::Files { cert, key } => {
            let (c, k) = read_pair(cert, key)?;
            Ok((certified_key(&c, &k)?, Some((c, k))))
        }
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let c = std::fs::read(cert).map_err(|source| TlsError::Read {
        path: cert.to_path_buf(),
        source,
    })?;
    let k = std::fs::read(key).map_err(|source| TlsError::Read {
        path: key.to_path_buf(),
        source,
    })?;
    Ok((c, k))
}

/// Labels of [`ReloadCounter`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `reloaded`; `invalid` (the pair does not parse or does not match) or `unreadable` (a file
    /// is missing): the certificate in use is kept.
    pub result: &'static str,
}

/// Changes of the serving certificate files the reloader acted on, by result (exported as
/// `serving_certificate_reloads_total`).
pub type ReloadCounter = Family<ReloadLabels, Counter>;

/// Keeps the serving certificate in step with its files until `stop` turns true: a `notify` watch
/// on the directories holding them (a Secret volume swaps a `..data` symlink in that directory),
/// plus a re-check every `recheck` in case an event is missed. A pair that fails to parse (e.g.
/// the cert written before the key) is skipped and retried on the next event or tick; the old
/// certificate keeps being served meanwhile.
pub fn spawn_reloader(
    state: Arc<TlsState>,
    cert: PathBuf,
    key: PathBuf,
    loaded: (Vec<u8>, Vec<u8>),
    recheck: Duration,
    reloads: ReloadCounter,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(16);
        let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            let _ = tx.try_send(());
        });
        let _watcher = match watcher {
            Ok(mut w) => {
                let mut dirs: Vec<PathBuf> = [&cert, &key]
                    .iter()
                    .filter_map(|p| {
                        p.parent().map(|d| {
                            if d.as_os_str().is_empty() {
                                PathBuf::from(".")
                            } else {
                                d.to_path_buf()
                            }
                        })
                    })
                    .collect();
                dirs.dedup();
                for d in &dirs {
                    if let Err(e) = w.watch(d, RecursiveMode::NonRecursive) {
                        tracing::warn!(dir = %d.display(), error = %e, "cannot watch the serving certificate directory; relying on the periodic re-check");
                    }
                }
                Some(w)
            }
            Err(e) => {
                tracing::warn!(error = %e, "file watching unavailable; relying on the periodic re-check");
                None
            }
        };
        let mut last = loaded;
        let mut tick = tokio::time::interval(recheck);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => { if *stop.borrow() { return; } }
                Some(()) = rx.recv() => {
                    // Let a burst of events (symlink swap, several files) settle.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while rx.try_recv().is_ok() {}
                    reload_if_changed(&state, &cert, &key, &mut last, &reloads);
                }
                _ = tick.tick() => reload_if_changed(&state, &cert, &key, &mut last, &reloads),
            }
        }
    })
}

fn reload_if_changed(
    state: &TlsState,
    cert: &Path,
    key: &Path,
    last: &mut (Vec<u8>, Vec<u8>),
    reloads: &ReloadCounter,
) {
    let count = |result| reloads.get_or_create(&ReloadLabels { result }).inc();
    let pair = match read_pair(cert, key) {
        Ok(p) => p,
        Err(e) => {
            count("unreadable");
            tracing::warn!(error = %e, "serving certificate not readable; keeping the current one");
            return;
        }
    };
    if pair == *last {
        return;
    }
    match certified_key(&pair.0, &pair.1) {
        Ok(ck) => {
            state.set_cert(ck);
            *last = pair;
            count("reloaded");
            tracing::info!(cert = %cert.display(), "serving certificate reloaded");
        }
        Err(e) => {
            count("invalid");
            tracing::warn!(error = %e, "new serving certificate invalid; keeping the current one")
        }
    }
}

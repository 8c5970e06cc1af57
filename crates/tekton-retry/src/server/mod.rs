//! The aggregated API server (`tekton-retry serve`), one concern per file along the request path:
//! [`config`] (flags) → [`tls`] (rustls, reloaded certificates) → [`authn`] (requestheader, client
//! certificates, TokenReview) → [`authz`] (SubjectAccessReview, cached) → [`routes`] (router, the
//! retry route, [`body`] decoding) with [`discovery`], [`openapi`], [`health`] and [`metrics`];
//! [`handler`] strings the pipeline together and [`logging`] sets up tracing.
//!
//! [`Server::start`] starts it; the composition root (`crate::app`) calls it for `serve` and the
//! sandbox, and integration tests call it directly in-process.

pub mod authn;
pub mod authn_configmap;
pub mod authz;
pub mod body;
pub mod config;
pub mod conn;
pub mod discovery;
pub mod documents;
pub mod duration_flag;
pub mod handler;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod review;
pub mod routes;
pub mod selfcert;
#[cfg(test)]
mod test_engine;
#[cfg(test)]
mod test_reviews;
pub mod tls;
pub mod token_cache;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{LogFormat, ServeArgs};
pub use conn::{ConnLimits, MAX_HTTP1_HEADERS};
pub use metrics::Metrics;
pub use tls::TlsSource;

use crate::retry::RetryService;
use authn::{AuthState, Authenticator, TokenLimits};
use authz::Authorizer;
use handler::Shared;
use health::Health;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("serving certificate: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Default `--request-timeout`: below kube-apiserver's own 60 s, so that the caller gets this
/// server's message rather than the aggregator's bare timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(50);

/// Default `--max-requests-inflight` (kube-apiserver's `--max-requests-inflight` default).
pub const DEFAULT_MAX_REQUESTS_IN_FLIGHT: usize = 400;

/// Default `--authentication-config-resync`: the watch carries changes; this re-read is the
/// fallback should a watch stall without an error.
pub const DEFAULT_AUTH_CONFIG_RESYNC: Duration = Duration::from_secs(60);

/// Default `--authentication-config-max-staleness`: five missed re-reads in a row.
pub const DEFAULT_AUTH_CONFIG_MAX_STALENESS: Duration = Duration::from_secs(300);

/// Everything [`Server::start`] needs: the server's identity, its certificate and address, and
/// its [`ServerSettings`].
#[derive(Clone)]
pub struct ServerOptions {
    /// Client for TokenReview, SubjectAccessReview and the authentication ConfigMap.
    pub client: kube::Client,
    pub tls: TlsSource,
    /// Address to listen on (port 0 = any free port; see [`ServerHandle::addr`]).
    pub bind: SocketAddr,
    /// Later serving certificates (PEM pair) from elsewhere, e.g. [`selfcert::SelfCert`].
    pub tls_feed: Option<watch::Receiver<tls::PemPair>>,
    pub settings: ServerSettings,
}

/// How the server behaves: caches, limits, timeouts (the `serve` flags of this component).
#[derive(Clone, Debug)]
pub struct ServerSettings {
    /// How long SubjectAccessReview answers are reused.
    pub authz_ttl: Duration,
    /// How long TokenReview answers are reused.
    pub authn_ttl: Duration,
    /// Requests taking longer are answered 504.
    pub request_timeout: Duration,
    /// Requests answered at once (health probes aside); more are answered 429.
    pub max_requests_in_flight: usize,
    /// Connection limits and timeouts.
    pub conn: ConnLimits,
    /// Bounds of bearer-token authentication.
    pub tokens: TokenLimits,
    /// How often the authentication ConfigMap is re-read besides the watch.
    pub auth_config_resync: Duration,
    /// Readiness fails when the Kubernetes API has not answered for the authentication ConfigMap
    /// for longer than this (the configuration loaded before is used all the same).
    pub auth_config_max_staleness: Duration,
    /// How often certificate files are re-checked besides file-change events.
    pub tls_recheck: Duration,
}

impl Default for ServerSettings {
    /// The defaults of the `serve` flags.
    fn default() -> Self {
        ServerSettings {
            authz_ttl: Duration::from_secs(10),
            authn_ttl: Duration::from_secs(10),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_requests_in_flight: DEFAULT_MAX_REQUESTS_IN_FLIGHT,
            conn: ConnLimits::default(),
            tokens: TokenLimits::default(),
            auth_config_resync: DEFAULT_AUTH_CONFIG_RESYNC,
            auth_config_max_staleness: DEFAULT_AUTH_CONFIG_MAX_STALENESS,
            tls_recheck: Duration::from_secs(60),
        }
    }
}

impl ServerOptions {
    /// Options with the defaults of the `serve` flags.
    pub fn new(client: kube::Client, tls: TlsSource, bind: SocketAddr) -> Self {
        ServerOptions {
            client,
            tls,
            bind,
            tls_feed: None,
            settings: ServerSettings::default(),
        }
    }
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    health: Arc<Health>,
    stop: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether `/readyz` passes now.
    pub fn ready(&self) -> bool {
        self.health.ready()
    }

    /// A probe of readiness that stays usable after [`ServerHandle::shutdown`] consumed the handle.
    pub fn ready_probe(&self) -> ReadyProbe {
        ReadyProbe(self.health.clone())
    }

    /// Waits until ready, at most `timeout`; returns whether it became ready.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.ready() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Readiness turns false; the listener stays open (the shutdown delay before
    /// [`ServerHandle::shutdown`]).
    pub fn begin_shutdown(&self) {
        self.health.begin_shutdown();
    }

    /// Readiness turns false, the listener closes, and requests in flight get `grace` to finish
    /// (connections still open after that are dropped).
    pub async fn shutdown(self, grace: Duration) {
        self.health.begin_shutdown();
        let _ = self.stop.send(true);
        let mut accept_loop = self.accept_loop;
        if tokio::time::timeout(grace, &mut accept_loop).await.is_err() {
            tracing::warn!("shutdown grace period over; dropping the connections still open");
            accept_loop.abort();
        }
        for task in self.background {
            task.abort();
        }
    }
}

/// Answers whether the server is ready (what `/readyz` says).
#[derive(Clone)]
pub struct ReadyProbe(Arc<Health>);

impl ReadyProbe {
    pub fn ready(&self) -> bool {
        self.0.ready()
    }
}

/// The server, started with [`Server::start`].
pub struct Server;

impl Server {
    /// Binds, loads the serving certificate, starts watching the certificate files and the
    /// authentication ConfigMap, and serves until [`ServerHandle::shutdown`].
    pub async fn start(
        opts: ServerOptions,
        retry: Arc<dyn RetryService>,
        metrics: Arc<Metrics>,
    ) -> Result<ServerHandle, ServerError> {
        let (cert, files) = tls::load(&opts.tls)?;
        let tls_state = Arc::new(tls::TlsState::new(cert)?);
        let listener = TcpListener::bind(opts.bind)
            .await
            .map_err(|source| ServerError::Bind {
                addr: opts.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: opts.bind,
            source,
        })?;
        let (stop, stop_rx) = watch::channel(false);

        let auth_state = Arc::new(AuthState::default());
        let health = Arc::new(Health::new(
            auth_state.clone(),
            opts.settings.auth_config_max_staleness,
        ));
        let mut background = vec![authn_configmap::spawn_config_watcher(
            opts.client.clone(),
            auth_state.clone(),
            tls_state.clone(),
            opts.settings.auth_config_resync,
            stop_rx.clone(),
        )];
        if let (TlsSource::Files { cert, key }, Some(loaded)) = (&opts.tls, files) {
            let reloads = tls::ReloadCounter::default();
            metrics.register(
                "serving_certificate_reloads",
                "Changes of the serving certificate files acted on, by result: reloaded, or invalid or unreadable (the certificate in use is kept)",
                reloads.clone(),
            );
            background.push(tls::spawn_reloader(
                tls_state.clone(),
                cert.clone(),
                key.clone(),
                loaded,
                opts.settings.tls_recheck,
                reloads,
                stop_rx.clone(),
            ));
        }
        if let Some(feed) = opts.tls_feed.clone() {
            background.push(spawn_feed(tls_state.clone(), feed));
        }
        let shared = Arc::new(Shared {
            authn: Authenticator::with_limits(
                auth_state,
                opts.client.clone(),
                opts.settings.authn_ttl,
                opts.settings.tokens,
            ),
            authz: Authorizer::new(
                opts.client.clone(),
                opts.settings.authz_ttl,
                metrics.clone(),
            ),
            retry,
            metrics,
            health: health.clone(),
            request_timeout: opts.settings.request_timeout,
            in_flight: tokio::sync::Semaphore::new(opts.settings.max_requests_in_flight.max(1)),
        });
        let accept_loop = tokio::spawn(conn::accept_loop(
            listener,
            tls_state,
            shared,
            opts.settings.conn.clone(),
            stop_rx,
        ));
        tracing::info!(%addr, "serving retry.tekton.dev/v1alpha1");
        Ok(ServerHandle {
            addr,
            health,
            stop,
            accept_loop,
            background,
        })
    }
}

/// Serves each certificate `feed` yields from the next handshake on (one that does not parse is
/// logged and the current one kept).
fn spawn_feed(
    state: Arc<tls::TlsState>,
    mut feed: watch::Receiver<tls::PemPair>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while feed.changed().await.is_ok() {
            let (cert, key) = feed.borrow_and_update().clone();
            match tls::certified_key(&cert, &key) {
                Ok(ck) => state.set_cert(ck),
                Err(e) => {
                    tracing::warn!(error = %e, "new serving certificate invalid; keeping the current one")
                }
            }
        }
    })
}

/// A kube client from `--kubeconfig`, else in-cluster config, else the usual kubeconfig lookup.
pub async fn kube_client(kubeconfig: Option<PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(&path)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

//! The composition root: the one place where the parts of the process are wired together — the
//! metrics registry, the serving certificate, the retry engine, the recorder and the server.
//! `tekton-retry serve` starts an [`App`] from its flags ([`serve`]); the sandbox starts the same
//! [`App`] against its in-process cluster, so both run exactly the same wiring.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::recorder::{Recorder, RecorderOptions};
use crate::retry::metrics::RetryMetrics;
use crate::retry::{Engine, EngineOptions, RetryService};
use crate::server::selfcert::{CertMetrics, SelfCert, SelfCertError, SelfCertOptions};
use crate::server::{
    Metrics, ServeArgs, ServerError, ServerHandle, ServerOptions, ServerSettings, TlsSource,
};

/// Where the serving certificate comes from.
#[derive(Clone)]
pub enum ServingCert {
    /// Given: files (reloaded when they change) or PEM text held in memory.
    Given(TlsSource),
    /// Made and rotated by the server itself, kept in a Secret of its namespace and published in
    /// the APIService's `caBundle`. `first_wait` bounds the wait for the first certificate.
    SelfManaged {
        options: SelfCertOptions,
        first_wait: Duration,
    },
}

/// Everything [`App::start`] needs, one typed part per component.
#[derive(Clone)]
pub struct AppOptions {
    /// Address of the HTTPS port (port 0: any free port, see [`App::addr`]).
    pub bind: SocketAddr,
    pub cert: ServingCert,
    pub server: ServerSettings,
    pub engine: EngineOptions,
    /// The recorder (none: not started, for tests of the engine alone).
    pub recorder: Option<RecorderOptions>,
}

/// Errors starting the process.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("starting the retry server: {0}")]
    Server(#[from] ServerError),
    #[error("self-managed serving certificate: {0}")]
    SelfCert(#[from] Box<SelfCertError>),
}

/// The running process: server, engine, recorder and (if self-managed) the certificate manager.
pub struct App {
    server: Option<ServerHandle>,
    engine: Engine,
    metrics: RetryMetrics,
    self_cert: Option<SelfCert>,
    recorder: Option<JoinHandle<()>>,
    _stop_self_cert: watch::Sender<bool>,
}

impl App {
    /// Starts every component on the current tokio runtime with `client` as the server's own
    /// identity (TokenReview, SubjectAccessReview, the engine's and recorder's calls).
    pub async fn start(client: kube::Client, opts: AppOptions) -> Result<App, AppError> {
        let registry = Arc::new(Metrics::new());
        let metrics = RetryMetrics::default();
        registry.with_registry(|r| metrics.register(r));
        let engine = Engine::with_observer(client.clone(), opts.engine, Arc::new(metrics.clone()));

        let (stop_self_cert, stop_rx) = watch::channel(false);
        let (tls, tls_feed, self_cert) = match opts.cert {
            ServingCert::Given(tls) => (tls, None, None),
            ServingCert::SelfManaged {
                options,
                first_wait,
            } => {
                let cert_metrics = CertMetrics::default();
                registry.with_registry(|r| cert_metrics.register(r));
                let managed =
                    SelfCert::start(client.clone(), options, cert_metrics, first_wait, stop_rx)
                        .await
                        .map_err(Box::new)?;
                let (cert, key) = managed.serving.borrow().clone();
                let tls = TlsSource::Pem {
                    cert: String::from_utf8_lossy(&cert).into_owned(),
                    key: String::from_utf8_lossy(&key).into_owned(),
                };
                (tls, Some(managed.serving.clone()), Some(managed))
            }
        };

        let mut server_opts = ServerOptions::new(client.clone(), tls, opts.bind);
        server_opts.settings = opts.server;
        server_opts.tls_feed = tls_feed;
        let retry: Arc<dyn RetryService> = Arc::new(engine.clone());
        let server = crate::server::Server::start(server_opts, retry, registry).await?;

        let recorder = opts.recorder.map(|recorder_opts| {
            let recorder = Recorder::new(engine.clone(), metrics.clone(), recorder_opts);
            tokio::spawn(recorder.run(client))
        });
        Ok(App {
            server: Some(server),
            engine,
            metrics,
            self_cert,
            recorder,
            _stop_self_cert: stop_self_cert,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server
            .as_ref()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), ServerHandle::addr)
    }

    /// The retry engine the server calls.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The retry metrics (also served at `/metrics`).
    pub fn metrics(&self) -> &RetryMetrics {
        &self.metrics
    }

    /// The self-managed certificate, when the server makes its own.
    pub fn self_cert(&self) -> Option<&SelfCert> {
        self.self_cert.as_ref()
    }

    /// Whether the server is ready (readiness probe).
    pub fn ready(&self) -> bool {
        self.server.as_ref().is_some_and(ServerHandle::ready)
    }

    /// Waits up to `timeout` for readiness.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        match &self.server {
            Some(s) => s.ready() || s.wait_ready(timeout).await,
            None => false,
        }
    }

    /// Readiness turns false; connections are still accepted (the shutdown delay starts).
    pub fn begin_shutdown(&self) {
        if let Some(recorder) = &self.recorder {
            recorder.abort();
        }
        if let Some(s) = &self.server {
            s.begin_shutdown();
        }
    }

    /// Stops accepting connections, lets requests in flight finish within `grace`, then stops
    /// the recorder and the certificate manager.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(s) = self.server.take() {
            s.shutdown(grace).await;
        }
        if let Some(r) = self.recorder.take() {
            r.abort();
        }
        if let Some(c) = self.self_cert.take() {
            c.task.abort();
        }
    }
}

/// The composition root reads the `serve` flags (kept in `server::config`, which knows nothing of
/// the components they configure).
impl ServeArgs {
    /// The flags as typed options, one part per component: the server's certificate and settings,
    /// the engine (and its executor and API rate limit) and the recorder.
    pub fn app_options(&self) -> AppOptions {
        let cert = match (&self.tls_cert_file, &self.tls_private_key_file) {
            (Some(cert), Some(key)) => ServingCert::Given(TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => ServingCert::SelfManaged {
                options: self.self_cert.options(),
                first_wait: Duration::from_secs(120),
            },
        };
        let mut server = ServerSettings {
            authz_ttl: self.authorization_cache_ttl,
            authn_ttl: self.authentication_cache_ttl,
            request_timeout: self.request_timeout,
            max_requests_in_flight: self.max_requests_inflight as usize,
            auth_config_resync: self.authentication_config_resync,
            auth_config_max_staleness: self.authentication_config_max_staleness,
            ..ServerSettings::default()
        };
        server.conn.max_connections = self.max_connections as usize;
        server.conn.first_request_timeout = self.first_request_timeout;
        server.conn.idle_timeout = self.idle_timeout;
        let engine = crate::retry::EngineOptions {
            claim_grace: self.retry_claim_grace,
            max_concurrent: usize::from(self.max_concurrent_retries),
            namespace: self.self_cert.namespace.clone(),
            api_rate: crate::retry::ratelimit::RateLimit {
                qps: self.kube_api_qps,
                burst: self.kube_api_burst,
            },
            limits: crate::retry::PlanLimits {
                min_timeout_budget: self.min_timeout_budget,
            },
            executor: crate::retry::executor::ExecutorOptions {
                archive_logs: self.archive_logs,
                ..Default::default()
            },
            ..Default::default()
        };
        AppOptions {
            bind: SocketAddr::new(self.bind_address, self.secure_port),
            cert,
            server,
            engine,
            recorder: Some(crate::recorder::RecorderOptions {
                grace: self.retry_claim_grace * 2,
                ..Default::default()
            }),
        }
    }
}

/// `tekton-retry serve`: logging, the kube client, an [`App`] from the flags, and a graceful
/// shutdown on SIGTERM/SIGINT (readiness false for `--shutdown-delay`, then no new connections,
/// then `--shutdown-grace-period` for requests in flight).
pub async fn serve(args: crate::server::ServeArgs) -> anyhow::Result<()> {
    crate::server::logging::init(args.log_format);
    let client = crate::server::kube_client(args.kubeconfig.clone()).await?;
    let app = App::start(client, args.app_options()).await?;
    shutdown_signal().await;
    app.begin_shutdown();
    tracing::info!(delay = ?args.shutdown_delay, "shutting down: readiness is false; still accepting connections during the shutdown delay");
    tokio::time::sleep(args.shutdown_delay).await;
    tracing::info!(grace = ?args.shutdown_grace_period, "shutting down: no new connections");
    app.shutdown(args.shutdown_grace_period).await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only ctrl-c stops the server");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

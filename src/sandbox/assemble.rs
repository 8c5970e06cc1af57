//! The whole sandbox in one process (DESIGN §5): API emulator + aggregator front proxy, the real
//! `serve` code with the real engine and recorder, and the Tekton simulator; seeded on request.
//! Integration tests start exactly this.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::emulator::{Emulator, EmulatorError, EmulatorOptions};
use super::seed;
use super::simulator::{Simulator, SimulatorHandle, SimulatorOptions};
use crate::pki::Ca;
use crate::recorder::{Recorder, RecorderOptions, RetryMetrics};
use crate::retry::engine::{Engine, EngineOptions};
use crate::server::metrics::Metrics;
use crate::server::{Server, ServerHandle, ServerOptions, TlsSource};

/// How to start the sandbox.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Port of the API front door on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Where kubeconfigs and `endpoints.json` are written (none: nothing is written).
    pub dir: Option<PathBuf>,
    /// Create and drive the `demo` objects.
    pub seed: bool,
    pub engine: EngineOptions,
    pub recorder: RecorderOptions,
    pub simulator: SimulatorOptions,
    /// Run the recorder inside `serve` (as in production).
    pub recorder_enabled: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            port: 0,
            dir: None,
            seed: true,
            engine: EngineOptions::default(),
            recorder: RecorderOptions::default(),
            simulator: SimulatorOptions::default(),
            recorder_enabled: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error("starting the retry server: {0}")]
    Server(#[from] crate::server::ServerError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error("kube client: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
    #[error("writing {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("{0}")]
    NotReady(String),
}

/// A running sandbox.
pub struct Sandbox {
    pub emulator: Emulator,
    server: Option<ServerHandle>,
    pub simulator: Option<SimulatorHandle>,
    pub engine: Engine,
    pub metrics: RetryMetrics,
    serving_ca: String,
    retry_addr: SocketAddr,
    recorder_task: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// Starts everything on the current tokio runtime and, if asked, seeds `demo`.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let emulator = Emulator::start(EmulatorOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], opts.port)),
            ..Default::default()
        })
        .await?;

        // The retry server, with its own serving CA (the APIService caBundle in a cluster).
        let ca = Ca::new("tekton-retry-serving-ca")?;
        let cert = ca.issue_server(&["127.0.0.1", "localhost", "tekton-retry.tekton-retry.svc"])?;
        let server_client = kube::Client::try_from(emulator.server_kube_config()?)?;
        let metrics = Arc::new(Metrics::new());
        let retry_metrics = RetryMetrics::default();
        metrics.with_registry(|r| retry_metrics.register(r));
        let engine = Engine::with_observer(
            server_client.clone(),
            opts.engine.clone(),
            Arc::new(retry_metrics.clone()),
        );
        let server_opts = ServerOptions::new(
            server_client.clone(),
            TlsSource::Pem {
                cert: cert.cert,
                key: cert.key,
            },
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        let server = Server::start(server_opts, Arc::new(engine.clone()), metrics).await?;
        let retry_addr = server.addr();
        emulator.set_aggregated_backend(&format!("https://{retry_addr}"), &ca.pem.cert)?;

        let recorder_task = if opts.recorder_enabled {
            let recorder =
                Recorder::new(engine.clone(), retry_metrics.clone(), opts.recorder.clone());
            Some(tokio::spawn(recorder.run(server_client)))
        } else {
            None
        };

        // The Tekton controller's identity is an admin here (it is not what is under test).
        let admin = kube::Client::try_from(emulator.kube_config("admin")?)?;
        let simulator = Simulator::start(admin.clone(), opts.simulator.clone());

        let sandbox = Sandbox {
            emulator,
            server: Some(server),
            simulator: Some(simulator),
            engine,
            metrics: retry_metrics,
            serving_ca: ca.pem.cert.clone(),
            retry_addr,
            recorder_task,
        };
        if !sandbox.server.as_ref().is_some_and(|s| s.ready()) {
            let ready = match &sandbox.server {
                Some(s) => s.wait_ready(Duration::from_secs(20)).await,
                None => false,
            };
            if !ready {
                return Err(SandboxError::NotReady(
                    "the retry server did not become ready in 20s".into(),
                ));
            }
        }
        if !sandbox
            .emulator
            .wait_aggregated_available(Duration::from_secs(20))
            .await
        {
            return Err(SandboxError::NotReady(format!(
                "the front proxy found the retry server unavailable: {}",
                sandbox.emulator.aggregated_availability().message
            )));
        }
        if opts.seed {
            seed::seed(admin, Duration::from_secs(30)).await?;
        }
        if let Some(dir) = &opts.dir {
            sandbox.write_files(dir)?;
        }
        Ok(sandbox)
    }

    /// The API front door (what kubectl talks to).
    pub fn url(&self) -> String {
        self.emulator.url()
    }

    /// The retry server's own address (bypassing the front proxy).
    pub fn retry_url(&self) -> String {
        format!("https://{}", self.retry_addr)
    }

    /// The CA that signed the retry server's serving certificate.
    pub fn retry_ca_pem(&self) -> &str {
        &self.serving_ca
    }

    /// A kube-rs client for `user` through the front door.
    pub fn client(&self, user: &str) -> Result<kube::Client, SandboxError> {
        Ok(kube::Client::try_from(self.emulator.kube_config(user)?)?)
    }

    /// Writes `kubeconfig`, `kubeconfig-viewer` and `endpoints.json` into `dir`.
    pub fn write_files(&self, dir: &Path) -> Result<(), SandboxError> {
        std::fs::create_dir_all(dir).map_err(|e| SandboxError::Write(dir.to_path_buf(), e))?;
        let write = |name: &str, text: String| {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(|e| SandboxError::Write(p, e))
        };
        write("kubeconfig", self.emulator.kubeconfig_yaml("admin")?)?;
        write(
            "kubeconfig-viewer",
            self.emulator.kubeconfig_yaml("viewer")?,
        )?;
        write("retry-server-ca.crt", self.serving_ca.clone())?;
        let endpoints = json!({
            "apiServer": self.url(),
            "retryServer": self.retry_url(),
            "retryServerCA": dir.join("retry-server-ca.crt"),
            "kubeconfig": dir.join("kubeconfig"),
            "kubeconfigViewer": dir.join("kubeconfig-viewer"),
        });
        write(
            "endpoints.json",
            serde_json::to_string_pretty(&endpoints).unwrap_or_default(),
        )
    }

    /// Stops the retry server first (readiness false, in-flight requests finish), then the rest.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(s) = self.server.take() {
            s.shutdown(grace).await;
        }
        if let Some(t) = self.recorder_task.take() {
            t.abort();
        }
        if let Some(s) = self.simulator.take() {
            s.shutdown().await;
        }
        self.emulator.shutdown();
    }
}

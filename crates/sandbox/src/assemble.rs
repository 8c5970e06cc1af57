//! The whole sandbox in one process: API emulator + aggregator front proxy, the real
//! `serve` code with the real engine and recorder, and the Tekton simulator; seeded on request.
//! Integration tests start exactly this.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::emulator::{BackendTrust, Emulator, EmulatorError, EmulatorOptions, Gvr};
use super::seed;
use super::simulator::{Simulator, SimulatorHandle, SimulatorOptions};
use tekton_retry::app::{App, AppOptions, ServingCert};
use tekton_retry::recorder::{RecorderOptions, RetryMetrics};
use tekton_retry::retry::engine::{Engine, EngineOptions};
use tekton_retry::server::selfcert::{SelfCertArgs, SelfCertOptions};
use tekton_retry::server::{ServerSettings, TlsSource};
use tekton_retry_pki::Ca;

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
    /// Let `serve` make and rotate its own certificate, as it does in a cluster when no
    /// `--tls-cert-file` is given: the APIService of `apiservice/apiservice.yaml` is created
    /// without a `caBundle`, the server keeps its CA in a Secret and the bundle in the
    /// APIService, and the front proxy trusts only that `caBundle`. None: a fixed CA made here.
    pub self_cert: Option<SelfCertOptions>,
}

/// The APIService the install registers (`apiservice/apiservice.yaml`).
pub const APISERVICE_YAML: &str = include_str!("../../../apiservice/apiservice.yaml");

impl SandboxOptions {
    /// Self-managed certificate options as `serve` derives them from its default flags, with
    /// the given timing.
    pub fn self_cert_options(
        validity: Duration,
        propagation_delay: Duration,
        resync: Duration,
    ) -> SelfCertOptions {
        use clap::Parser;
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            cert: SelfCertArgs,
        }
        // Parsing no arguments gives the defaults; it only fails on a clap definition error.
        let mut opts = match Flags::try_parse_from(["serve"]) {
            Ok(f) => f.cert.options(),
            Err(e) => panic!("self-managed certificate flags: {e}"),
        };
        opts.validity = validity;
        opts.propagation_delay = propagation_delay;
        opts.resync = resync;
        opts
    }
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
            self_cert: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    App(#[from] tekton_retry::app::AppError),
    #[error(transparent)]
    Pki(#[from] tekton_retry_pki::PkiError),
    #[error("kube client: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
    #[error("writing {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("{0}")]
    NotReady(String),
    #[error("registering the APIService: {0}")]
    ApiService(String),
}

/// Creates the APIService of `apiservice/apiservice.yaml` (no `caBundle` yet) as the install does.
fn register_apiservice(emulator: &Emulator) -> Result<(), SandboxError> {
    let obj: serde_json::Value = serde_yaml::from_str(APISERVICE_YAML)
        .map_err(|e| SandboxError::ApiService(e.to_string()))?;
    emulator
        .store()
        .create(&Gvr::apiservices(), obj)
        .map_err(|e| SandboxError::ApiService(e.to_string()))?;
    Ok(())
}

/// A running sandbox.
pub struct Sandbox {
    pub emulator: Emulator,
    /// The retry server, engine and recorder, wired exactly as `serve` wires them.
    app: Option<App>,
    pub simulator: Option<SimulatorHandle>,
    pub engine: Engine,
    pub metrics: RetryMetrics,
    serving_ca: String,
    retry_addr: SocketAddr,
}

impl Sandbox {
    /// Starts everything on the current tokio runtime and, if asked, seeds `demo`.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let emulator = Emulator::start(EmulatorOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], opts.port)),
            ..Default::default()
        })
        .await?;

        let server_client = kube::Client::try_from(emulator.server_kube_config()?)?;
        let (cert, fixed_ca) = match &opts.self_cert {
            None => {
                // A serving CA made here (the APIService caBundle in a cluster).
                let ca = Ca::new("tekton-retry-serving-ca")?;
                let cert =
                    ca.issue_server(&["127.0.0.1", "localhost", "tekton-retry.tekton-retry.svc"])?;
                let tls = TlsSource::Pem {
                    cert: cert.cert,
                    key: cert.key,
                };
                (ServingCert::Given(tls), Some(ca.pem.cert))
            }
            Some(cert_opts) => {
                register_apiservice(&emulator)?;
                let cert = ServingCert::SelfManaged {
                    options: cert_opts.clone(),
                    first_wait: Duration::from_secs(20),
                };
                (cert, None)
            }
        };
        let app = App::start(
            server_client,
            AppOptions {
                bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                cert,
                server: ServerSettings::default(),
                engine: opts.engine.clone(),
                recorder: opts.recorder_enabled.then(|| opts.recorder.clone()),
            },
        )
        .await?;
        let retry_addr = app.addr();
        let serving_ca = match (&fixed_ca, app.self_cert()) {
            (Some(ca), _) => {
                emulator.set_aggregated_backend(&format!("https://{retry_addr}"), ca)?;
                ca.clone()
            }
            (None, Some(managed)) => {
                emulator.set_aggregated_backend(
                    &format!("https://{retry_addr}"),
                    BackendTrust::ApiService(tekton_retry::api::APISERVICE_NAME),
                )?;
                managed.bundle.borrow().clone()
            }
            (None, None) => String::new(),
        };

        // The Tekton controller's identity is an admin here (it is not what is under test).
        let admin = kube::Client::try_from(emulator.kube_config("admin")?)?;
        let simulator = Simulator::start(admin.clone(), opts.simulator.clone());

        let sandbox = Sandbox {
            emulator,
            engine: app.engine().clone(),
            metrics: app.metrics().clone(),
            app: Some(app),
            simulator: Some(simulator),
            serving_ca,
            retry_addr,
        };
        let ready = match &sandbox.app {
            Some(app) => app.wait_ready(Duration::from_secs(20)).await,
            None => false,
        };
        if !ready {
            return Err(SandboxError::NotReady(
                "the retry server did not become ready in 20s".into(),
            ));
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

    /// The CA that signed the retry server's serving certificate (with a self-managed
    /// certificate: the bundle when the server started; see [`Sandbox::retry_ca_bundle`]).
    pub fn retry_ca_pem(&self) -> &str {
        &self.serving_ca
    }

    /// The CAs the retry server's certificate chains to now: the self-managed bundle as last
    /// written, else the fixed CA.
    pub fn retry_ca_bundle(&self) -> String {
        match self.app.as_ref().and_then(App::self_cert) {
            Some(c) => c.bundle.borrow().clone(),
            None => self.serving_ca.clone(),
        }
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
        if let Some(app) = self.app.take() {
            app.begin_shutdown();
            app.shutdown(grace).await;
        }
        if let Some(s) = self.simulator.take() {
            s.shutdown().await;
        }
        self.emulator.shutdown();
    }
}

//! An in-process Kubernetes API emulator over real TLS (127.0.0.1 only), for the sandbox and tests.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tekton_retry_sandbox::emulator::{Emulator, EmulatorOptions, Gvr};
//! let emu = Emulator::start(EmulatorOptions::default()).await?;
//! // Seed objects directly (status kept as given):
//! emu.store().create(&Gvr::pipelineruns(), serde_json::json!({
//!     "metadata": {"name": "demo-failed", "namespace": "demo"}, "spec": {}}))?;
//! // A kube-rs client as user `admin` (group system:masters), `viewer`, or any added user:
//! let client = kube::Client::try_from(emu.kube_config("admin")?)?;
//! // The retry server's own identity (service account, by client certificate):
//! let server_client = kube::Client::try_from(emu.server_kube_config()?)?;
//! // Send /apis/retry.tekton.dev/v1alpha1/** to a running `serve`:
//! emu.set_aggregated_backend("https://127.0.0.1:8443", "<backend CA PEM>")?;
//! emu.shutdown();
//! # Ok(()) }
//! ```
//!
//! Public surface: [`Emulator::start`], [`Emulator::url`], [`Emulator::ca_pem`],
//! [`Emulator::kube_config`], [`Emulator::kubeconfig_yaml`], [`Emulator::server_kube_config`],
//! [`Emulator::server_token`], [`Emulator::add_user`], [`Emulator::policy`], [`Emulator::faults`],
//! [`Emulator::store`], [`Emulator::set_aggregated_backend`], [`Emulator::front_proxy_client`],
//! [`Emulator::rotate_front_proxy`], [`Emulator::aggregated_availability`],
//! [`Emulator::wait_aggregated_available`], [`Emulator::shutdown`].
//!
//! Behaviour worth knowing (each rule cites its upstream source where it is implemented):
//! - errors are `metav1.Status` with kube-apiserver's messages; the front proxy's own 503s are plain
//!   text `service unavailable`, as kube-aggregator's are;
//! - HTTP creates drop `status` for resources with a status subresource (direct
//!   [`Store::create`] keeps it, for seeding); `/status` writes change only status;
//! - Tekton's defaulting (timeouts, service account, `taskRef.kind`) and validating webhook rules
//!   (spec changes on done/running runs, Pending after start; [`crate::tekton_webhook`]) apply to every main-resource write,
//!   also through [`Store`]; unknown top-level `status` fields of runs are pruned (warning header;
//!   400 with `?fieldValidation=Strict`);
//! - users authenticate by client certificate (sandbox client CA) or bearer token; impersonation
//!   headers are honoured and authorized; every request is authorized by [`Policy`];
//! - garbage collection runs in-process shortly after each write ([`EmulatorOptions::gc_delay`]);
//! - `events.k8s.io/v1` Events are a converted view of core `v1` Events (one storage);
//! - discovery orders groups by `groupPriorityMinimum` (the aggregated group's is
//!   [`EmulatorOptions::aggregated_group_priority`]), so kubectl resolves names as in a cluster.
//!
//! What is approximate: strategic merge patch is applied as a JSON merge patch; server-side apply
//! is not served (415); `limit`/`continue` are ignored (lists answer in full); answers are JSON
//! only (protobuf is read only for review requests); namespaces need not exist; pruning checks
//! only the top level of run status; the aggregated group's OpenAPI is not merged into ours.

pub mod aggregator;
pub mod discovery;
pub mod events_view;
pub mod gc;
pub mod handlers;
pub mod http;
pub mod protobuf;
pub mod pruning;
pub mod request_info;
pub mod resources;
pub mod reviews;
pub mod selectors;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::sync::watch as tokio_watch;

pub use aggregator::BackendTrust;
pub use resources::Gvr;
pub use status::StatusError;
pub use store::{DeleteOptions, Part, Patch, Propagation, Store, WriteOptions};

use crate::faults::Faults;
use crate::policy::{self, Policy};
use tekton_retry::api::UserInfo;
use tekton_retry_pki::{Ca, CertPem};

use aggregator::{Availability, FrontProxy, FrontProxyIdentity, ProxyError};

/// How to start the emulator.
#[derive(Clone, Debug)]
pub struct EmulatorOptions {
    /// Where to listen; only loopback addresses are accepted. Default `127.0.0.1:0`.
    pub bind: SocketAddr,
    /// Watch events kept for watches that resume from a resourceVersion (older: 410 Gone).
    pub watch_history: usize,
    /// Delay before the garbage collector reacts to a write.
    pub gc_delay: Duration,
    /// How often the front proxy probes the aggregated backend.
    pub probe_interval: Duration,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    /// The aggregated group the front proxy forwards (default `retry.tekton.dev`).
    pub aggregated_group: String,
    /// Its version (default `v1alpha1`).
    pub aggregated_version: String,
    /// The APIService's `groupPriorityMinimum` (default 100: it must be below the
    /// 1000 of Tekton's CRD groups, or `kubectl get pipelineruns` resolves to this group).
    pub aggregated_group_priority: u32,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            watch_history: 5000,
            gc_delay: Duration::from_millis(20),
            probe_interval: Duration::from_secs(2),
            bookmark_interval: Duration::from_secs(5),
            aggregated_group: tekton_retry::api::GROUP.into(),
            aggregated_version: tekton_retry::api::VERSION.into(),
            aggregated_group_priority: 100,
        }
    }
}

/// Why the emulator could not start or produce credentials.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("the emulator only listens on loopback addresses, not {0}")]
    NotLoopback(SocketAddr),
    #[error("binding {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Pki(#[from] tekton_retry_pki::PkiError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("building the kubeconfig: {0}")]
    Kubeconfig(String),
}

/// A running emulator. Dropping it does not stop it; call [`Emulator::shutdown`].
pub struct Emulator {
    addr: SocketAddr,
    serving_ca: Ca,
    client_ca: Ca,
    store: Arc<Store>,
    policy: Arc<Policy>,
    faults: Arc<Faults>,
    proxy: Arc<FrontProxy>,
    server_token: String,
    stop: tokio_watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Emulator {
    /// Start on the current tokio runtime.
    pub async fn start(opts: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        if !opts.bind.ip().is_loopback() {
            return Err(EmulatorError::NotLoopback(opts.bind));
        }
        let serving_ca = Ca::new("sandbox-apiserver-ca")?;
        let client_ca = Ca::new("sandbox-client-ca")?;
        let serving = serving_ca.issue_server(&["127.0.0.1", "localhost", "::1"])?;
        let tls_cfg = tls::server_config(&serving, &client_ca.pem.cert)?;
        let listener = tokio::net::TcpListener::bind(opts.bind)
            .await
            .map_err(|e| EmulatorError::Bind(opts.bind, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| EmulatorError::Bind(opts.bind, e))?;
        let store = Arc::new(Store::new(opts.watch_history));
        let policy = Arc::new(Policy::with_defaults());
        let server_token = format!("sandbox-sa-{}", uuid::Uuid::new_v4().simple());
        policy.add_token(&server_token, policy::server_user());
        let faults = Arc::new(Faults::default());
        let proxy = FrontProxy::new(
            &opts.aggregated_group,
            &opts.aggregated_version,
            opts.aggregated_group_priority,
            store.clone(),
            &client_ca.pem.cert,
        )?;
        let shared = Arc::new(server::Shared {
            ctx: handlers::Ctx {
                store: store.clone(),
                policy: policy.clone(),
                bookmark_interval: opts.bookmark_interval,
            },
            faults: faults.clone(),
            proxy: proxy.clone(),
            server_address: addr.to_string(),
        });
        let (stop, stop_rx) = tokio_watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::run(listener, tls_cfg, shared, stop_rx)),
            gc::spawn(store.clone(), opts.gc_delay),
            proxy.spawn_prober(opts.probe_interval),
        ];
        Ok(Emulator {
            addr,
            serving_ca,
            client_ca,
            store,
            policy,
            faults,
            proxy,
            server_token,
            stop,
            tasks,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA (PEM) that signed the emulator's serving certificate.
    pub fn ca_pem(&self) -> String {
        self.serving_ca.pem.cert.clone()
    }

    /// The CA (PEM) that signs user client certificates (`client-ca-file`).
    pub fn client_ca_pem(&self) -> String {
        self.client_ca.pem.cert.clone()
    }

    /// The object store (sync access for tests and seeding).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Users, tokens and rules.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Fault injection and the request log.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// The front proxy (availability, rotation, identity).
    pub fn proxy(&self) -> &Arc<FrontProxy> {
        &self.proxy
    }

    /// Register a client-certificate user with these groups (bind rules with [`Emulator::policy`]).
    pub fn add_user(&self, name: &str, groups: &[&str]) {
        self.policy.add_user(name, groups);
    }

    /// A client certificate for a registered user (`admin`, `viewer`, or one added), or for the
    /// retry server's service account name.
    pub fn client_cert(&self, user: &str) -> Result<CertPem, EmulatorError> {
        let groups: Vec<String> = if user == policy::server_user().username {
            policy::server_user()
                .groups
                .into_iter()
                .filter(|g| g != policy::AUTHENTICATED)
                .collect()
        } else {
            self.policy.user_groups(user).ok_or_else(|| {
                EmulatorError::Kubeconfig(format!("unknown user {user:?}: add it with add_user"))
            })?
        };
        let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        Ok(self.client_ca.issue_client(user, &refs)?)
    }

    fn base_config(&self) -> Result<kube::Config, EmulatorError> {
        let uri = self
            .url()
            .parse::<::http::Uri>()
            .map_err(|e| EmulatorError::Kubeconfig(e.to_string()))?;
        let mut cfg = kube::Config::new(uri);
        let der = tls::certs(&self.ca_pem())?;
        cfg.root_cert = Some(der.into_iter().map(|c| c.to_vec()).collect());
        Ok(cfg)
    }

    /// A kube-rs configuration for a client-certificate user.
    pub fn kube_config(&self, user: &str) -> Result<kube::Config, EmulatorError> {
        let cert = self.client_cert(user)?;
        let mut cfg = self.base_config()?;
        let b64 = base64::engine::general_purpose::STANDARD;
        cfg.auth_info.client_certificate_data = Some(b64.encode(&cert.cert));
        cfg.auth_info.client_key_data = Some(b64.encode(&cert.key).into());
        Ok(cfg)
    }

    /// A kube-rs configuration with a bearer token.
    pub fn kube_config_token(&self, token: &str) -> Result<kube::Config, EmulatorError> {
        let mut cfg = self.base_config()?;
        cfg.auth_info.token = Some(token.to_string().into());
        Ok(cfg)
    }

    /// The retry server's identity (`system:serviceaccount:tekton-retry:tekton-retry`) by client
    /// certificate.
    pub fn server_kube_config(&self) -> Result<kube::Config, EmulatorError> {
        self.kube_config(&policy::server_user().username)
    }

    /// A kubeconfig file (YAML) for the retry server's identity, for `serve --kubeconfig`.
    pub fn server_kubeconfig_yaml(&self) -> Result<String, EmulatorError> {
        self.kubeconfig_yaml(&policy::server_user().username)
    }

    /// The retry server's service-account bearer token (TokenReview knows it).
    pub fn server_token(&self) -> &str {
        &self.server_token
    }

    /// A kubeconfig file (YAML) for a client-certificate user, context `sandbox`.
    pub fn kubeconfig_yaml(&self, user: &str) -> Result<String, EmulatorError> {
        let cert = self.client_cert(user)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let doc = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "sandbox", "cluster": {
                "server": self.url(),
                "certificate-authority-data": b64.encode(self.ca_pem()),
            }}],
            "users": [{"name": user, "user": {
                "client-certificate-data": b64.encode(&cert.cert),
                "client-key-data": b64.encode(&cert.key),
            }}],
            "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": user, "namespace": "demo"}}],
            "current-context": "sandbox",
        });
        serde_yaml::to_string(&doc).map_err(|e| EmulatorError::Kubeconfig(e.to_string()))
    }

    /// Send the aggregated group to `url`, trusting a backend CA (a PEM string) or the `caBundle`
    /// of a stored APIService (see [`BackendTrust`]).
    pub fn set_aggregated_backend<'a>(
        &self,
        url: &str,
        trust: impl Into<BackendTrust<'a>>,
    ) -> Result<(), EmulatorError> {
        Ok(self.proxy.set_backend(url, trust.into())?)
    }

    /// The requestheader CA and the front-proxy client certificate.
    pub fn front_proxy_client(&self) -> FrontProxyIdentity {
        self.proxy.identity()
    }

    /// Rotate the requestheader CA and front-proxy client certificate; republishes the ConfigMap.
    pub fn rotate_front_proxy(
        &self,
        keep_previous_ca: bool,
    ) -> Result<FrontProxyIdentity, EmulatorError> {
        Ok(self.proxy.rotate(keep_previous_ca)?)
    }

    /// What the last probe of the aggregated backend found.
    pub fn aggregated_availability(&self) -> Availability {
        self.proxy.availability()
    }

    /// Probe until the backend is available or `timeout` passes; returns availability.
    pub async fn wait_aggregated_available(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.proxy.probe().await.available {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The user a request with this client certificate user name is, as the emulator sees it.
    pub fn user_info(&self, user: &str) -> Option<UserInfo> {
        let mut groups = self.policy.user_groups(user)?;
        groups.push(policy::AUTHENTICATED.into());
        Some(UserInfo {
            username: user.into(),
            groups,
            ..Default::default()
        })
    }

    /// Stop serving (open connections are closed, background tasks end).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        for t in &self.tasks[1..] {
            t.abort();
        }
    }
}

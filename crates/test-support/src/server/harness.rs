//! The real server started in-process over real TLS (rcgen certificates) in front of the fake
//! Kubernetes API and the recording engine.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tekton_retry::server::{Metrics, Server, ServerHandle, ServerOptions, TlsSource};
use tekton_retry_pki::{Ca, CertPem};

use super::fake_kube::{auth_configmap, FakeKube, FRONT_PROXY_CN};
use super::recording_engine::{RecordingEngine, Shared};
use super::tls_client::TestClient;

/// A server under test with its CAs, fake API and fake engine.
pub struct Harness {
    pub front_ca: Ca,
    pub client_ca: Ca,
    pub serving_ca: Ca,
    pub kube: FakeKube,
    pub engine: Arc<RecordingEngine>,
    pub handle: Option<ServerHandle>,
    pub addr: SocketAddr,
}

/// Test options of the server.
pub struct Knobs {
    pub authz_ttl: Duration,
    pub request_timeout: Duration,
    pub tls: Option<TlsSource>,
    pub resync: Duration,
    pub tls_recheck: Duration,
    pub conn: tekton_retry::server::ConnLimits,
    pub max_in_flight: usize,
    /// Readiness fails when the API has not answered for the authentication ConfigMap this long.
    pub max_staleness: Duration,
    /// Whether [`Harness::start_with`] waits until the server is ready (and fails if it is not).
    pub wait_ready: bool,
    /// The fake API: reads of the authentication ConfigMap fail from the start.
    pub configmap_fails: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            authz_ttl: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            tls: None,
            resync: Duration::from_millis(100),
            tls_recheck: Duration::from_millis(200),
            conn: tekton_retry::server::ConnLimits::default(),
            max_in_flight: 400,
            max_staleness: Duration::from_secs(300),
            wait_ready: true,
            configmap_fails: false,
        }
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Knobs::default()).await
    }

    /// [`Harness::start_with`] the default [`Knobs`] as `tune` changes them.
    pub async fn start_tuned(tune: impl FnOnce(&mut Knobs)) -> Harness {
        let mut knobs = Knobs::default();
        tune(&mut knobs);
        Self::start_with(knobs).await
    }

    pub async fn start_with(knobs: Knobs) -> Harness {
        let front_ca = Ca::new("front-proxy-ca").expect("ca");
        let client_ca = Ca::new("client-ca").expect("ca");
        let serving_ca = Ca::new("serving-ca").expect("ca");
        let kube = FakeKube::new(auth_configmap(&front_ca, &client_ca, &[FRONT_PROXY_CN]));
        kube.set_configmap_fails(knobs.configmap_fails);
        let tls = knobs.tls.unwrap_or_else(|| {
            let s = serving_ca
                .issue_server(&["localhost", "127.0.0.1"])
                .expect("serving");
            TlsSource::Pem {
                cert: s.cert,
                key: s.key,
            }
        });
        let mut opts = ServerOptions::new(kube.client(), tls, "127.0.0.1:0".parse().expect("addr"));
        opts.settings.authz_ttl = knobs.authz_ttl;
        opts.settings.authn_ttl = Duration::from_secs(60);
        opts.settings.request_timeout = knobs.request_timeout;
        opts.settings.auth_config_resync = knobs.resync;
        opts.settings.auth_config_max_staleness = knobs.max_staleness;
        opts.settings.tls_recheck = knobs.tls_recheck;
        opts.settings.conn = knobs.conn;
        opts.settings.max_requests_in_flight = knobs.max_in_flight;
        let engine = RecordingEngine::new();
        let metrics = Arc::new(Metrics::new());
        let handle = Server::start(opts, Arc::new(Shared(engine.clone())), metrics)
            .await
            .expect("start");
        assert!(
            !knobs.wait_ready || handle.wait_ready(Duration::from_secs(20)).await,
            "server became ready"
        );
        let addr = handle.addr();
        Harness {
            front_ca,
            client_ca,
            serving_ca,
            kube,
            engine,
            handle: Some(handle),
            addr,
        }
    }

    /// A client that trusts the serving CA, presenting `cert` if given.
    pub fn client(&self, cert: Option<&CertPem>) -> TestClient {
        TestClient::new(self.addr, &self.serving_ca.pem.cert, cert, false)
    }

    /// A client with a client-CA certificate for `user` in `groups`.
    pub fn client_as(&self, user: &str, groups: &[&str]) -> TestClient {
        let cert = self.client_ca.issue_client(user, groups).expect("cert");
        self.client(Some(&cert))
    }

    /// The same over HTTP/2.
    pub fn client_h2(&self, cert: Option<&CertPem>) -> TestClient {
        TestClient::new(self.addr, &self.serving_ca.pem.cert, cert, true)
    }

    /// [`Harness::client_as`] over HTTP/2.
    pub fn client_h2_as(&self, user: &str, groups: &[&str]) -> TestClient {
        let cert = self.client_ca.issue_client(user, groups).expect("cert");
        self.client_h2(Some(&cert))
    }

    /// The kube-apiserver front proxy: a requestheader-CA certificate with the allowed CN.
    pub fn front_proxy(&self) -> TestClient {
        let cert = self
            .front_ca
            .issue_client(FRONT_PROXY_CN, &[])
            .expect("cert");
        self.client(Some(&cert))
    }

    /// A kubeconfig pointing straight at the server, as the client-CA user `user`.
    pub fn kubeconfig(&self, user: &str, groups: &[&str]) -> String {
        let cert = self.client_ca.issue_client(user, groups).expect("cert");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: demo}}\ncurrent-context: x\n",
            self.addr.port(),
            b64(&self.serving_ca.pem.cert),
            b64(&cert.cert),
            b64(&cert.key)
        )
    }

    /// A kube client talking to the server (as a client-CA user).
    pub async fn kube_client(&self, user: &str, groups: &[&str]) -> kube::Client {
        let kc = kube::config::Kubeconfig::from_yaml(&self.kubeconfig(user, groups))
            .expect("kubeconfig");
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("config");
        kube::Client::try_from(cfg).expect("client")
    }

    pub async fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown(Duration::from_secs(5)).await;
        }
    }
}

//! Shared pieces of the server tests: a fake Kubernetes API at the HTTP boundary (the
//! authentication ConfigMap, SubjectAccessReview, TokenReview), a recording fake engine, the
//! server started in-process over real TLS with rcgen certificates, and a TLS client.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::authorization::v1::SubjectAccessReviewSpec;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tekton_retry::api::{ApiError, PipelineRunRetry, RetrySpec, RetryStatus, UserInfo};
use tekton_retry::retry::{RetryRequest, RetryService};
use tekton_retry::server::{Metrics, Server, ServerHandle, ServerOptions, TlsSource};
use tekton_retry_pki::{Ca, CertPem};

/// The CN kube-apiserver's front proxy certificate has in these tests.
pub const FRONT_PROXY_CN: &str = "front-proxy-client";

/// What the fake SubjectAccessReview answers.
#[derive(Clone, Debug)]
pub enum SarAnswer {
    Allow,
    Deny(String),
    /// The API fails (HTTP 500).
    Fail,
}

type Policy = Arc<dyn Fn(&SubjectAccessReviewSpec) -> SarAnswer + Send + Sync>;

/// The state behind the fake Kubernetes API.
pub struct FakeState {
    pub configmap: Option<BTreeMap<String, String>>,
    pub policy: Policy,
    pub sar_calls: Vec<SubjectAccessReviewSpec>,
    pub tokens: HashMap<String, UserInfo>,
    pub token_calls: usize,
    pub configmap_gets: usize,
    /// `Audit-ID` headers of the SubjectAccessReview requests, in order.
    pub review_audit_ids: Vec<String>,
    /// `Audit-ID` headers of the TokenReview requests, in order ("" when absent).
    pub token_review_audit_ids: Vec<String>,
    /// Query strings of the watches of the authentication ConfigMap, in order.
    pub configmap_watches: Vec<String>,
    /// While true, every read and watch of the authentication ConfigMap fails (HTTP 500) and
    /// open watches end: the API is down for the server.
    pub configmap_fails: bool,
    /// Bumped by every change of the ConfigMap (its resourceVersion) or of `configmap_fails`.
    pub configmap_changes: tokio::sync::watch::Sender<u64>,
}

/// Response body of the fake: whole, or a stream of watch events.
pub type FakeBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// Namespace-scoped URL of ConfigMaps in kube-system (list and watch).
const KUBE_SYSTEM_CONFIGMAPS: &str = "/api/v1/namespaces/kube-system/configmaps";
/// The field selector the server must list and watch the ConfigMap with: RBAC grants
/// `extension-apiserver-authentication-reader` list/watch of that name only.
const BY_NAME: &str = "metadata.name=extension-apiserver-authentication";

/// A fake Kubernetes API answering the server's own calls.
#[derive(Clone)]
pub struct FakeKube(pub Arc<Mutex<FakeState>>);

impl FakeKube {
    pub fn new(configmap: BTreeMap<String, String>) -> Self {
        FakeKube(Arc::new(Mutex::new(FakeState {
            configmap: Some(configmap),
            policy: Arc::new(|_| SarAnswer::Allow),
            sar_calls: Vec::new(),
            tokens: HashMap::new(),
            token_calls: 0,
            configmap_gets: 0,
            review_audit_ids: Vec::new(),
            token_review_audit_ids: Vec::new(),
            configmap_watches: Vec::new(),
            configmap_fails: false,
            configmap_changes: tokio::sync::watch::channel(1).0,
        })))
    }

    pub fn set_policy(
        &self,
        f: impl Fn(&SubjectAccessReviewSpec) -> SarAnswer + Send + Sync + 'static,
    ) {
        self.0.lock().expect("lock").policy = Arc::new(f);
    }
    pub fn sar_calls(&self) -> Vec<SubjectAccessReviewSpec> {
        self.0.lock().expect("lock").sar_calls.clone()
    }
    pub fn token_calls(&self) -> usize {
        self.0.lock().expect("lock").token_calls
    }
    pub fn review_audit_ids(&self) -> Vec<String> {
        self.0.lock().expect("lock").review_audit_ids.clone()
    }
    pub fn token_review_audit_ids(&self) -> Vec<String> {
        self.0.lock().expect("lock").token_review_audit_ids.clone()
    }
    pub fn configmap_gets(&self) -> usize {
        self.0.lock().expect("lock").configmap_gets
    }
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.0
            .lock()
            .expect("lock")
            .tokens
            .insert(token.to_string(), user);
    }
    pub fn set_configmap(&self, data: BTreeMap<String, String>) {
        let st = &mut *self.0.lock().expect("lock");
        st.configmap = Some(data);
        st.configmap_changes.send_modify(|v| *v += 1);
    }
    /// Query strings of the watches of the authentication ConfigMap so far.
    pub fn configmap_watches(&self) -> Vec<String> {
        self.0.lock().expect("lock").configmap_watches.clone()
    }
    /// From now on reads and watches of the authentication ConfigMap fail (`true`) or work.
    pub fn set_configmap_fails(&self, fails: bool) {
        let st = &mut *self.0.lock().expect("lock");
        st.configmap_fails = fails;
        st.configmap_changes.send_modify(|_| {});
    }

    /// The authentication ConfigMap as the API returns it, if it exists.
    fn configmap_object(st: &FakeState) -> Option<Value> {
        st.configmap.as_ref().map(|data| {
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "extension-apiserver-authentication", "namespace": "kube-system",
                    "resourceVersion": st.configmap_changes.borrow().to_string(),
                },
                "data": data,
            })
        })
    }

    /// A list (or, with `watch=true`, a watch) of ConfigMaps in kube-system.
    fn configmap_collection(&self, query: &str) -> Response<FakeBody> {
        let param = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("fieldSelector").as_deref() != Some(BY_NAME) {
            return reply(
                403,
                status(403, "Forbidden", "configmaps is forbidden: list and watch only by metadata.name=extension-apiserver-authentication"),
            );
        }
        let mut st = self.0.lock().expect("lock");
        if st.configmap_fails {
            return reply(500, status(500, "InternalError", "etcd is on fire"));
        }
        if param("watch").is_some_and(|w| w == "true" || w == "1") {
            st.configmap_watches.push(query.to_string());
            let from: u64 = param("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            return self.configmap_watch(st.configmap_changes.subscribe(), from);
        }
        let rv = st.configmap_changes.borrow().to_string();
        let items: Vec<Value> = Self::configmap_object(&st).into_iter().collect();
        reply(
            200,
            json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": rv}, "items": items}),
        )
    }

    /// Watch events for each change after resourceVersion `from`, until the API "fails".
    fn configmap_watch(
        &self,
        changes: tokio::sync::watch::Receiver<u64>,
        from: u64,
    ) -> Response<FakeBody> {
        let me = self.clone();
        let events = futures::stream::unfold((changes, from), move |(mut changes, mut sent)| {
            let me = me.clone();
            async move {
                loop {
                    {
                        let st = me.0.lock().expect("lock");
                        if st.configmap_fails {
                            return None;
                        }
                        let now = *changes.borrow_and_update();
                        if now > sent {
                            sent = now;
                            let event = match Self::configmap_object(&st) {
                                Some(obj) => json!({"type": "MODIFIED", "object": obj}),
                                None => json!({"type": "DELETED", "object": {
                                    "apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system", "resourceVersion": now.to_string()},
                                }}),
                            };
                            let mut line = serde_json::to_vec(&event).expect("json");
                            line.push(b'\n');
                            let frame = http_body::Frame::data(Bytes::from(line));
                            return Some((Ok::<_, Infallible>(frame), (changes, sent)));
                        }
                    }
                    if changes.changed().await.is_err() {
                        return None;
                    }
                }
            }
        });
        let mut r = Response::new(FakeBody::new(http_body_util::StreamBody::new(events)));
        r.headers_mut()
            .insert("content-type", "application/json".parse().expect("ct"));
        r
    }

    /// Serves this fake over plain HTTP/1 on 127.0.0.1 (for a `tekton-retry serve` process).
    pub async fn serve_http(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let me = me.clone();
                            async move { Ok::<_, Infallible>(me.answer(req).await) }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        addr
    }

    /// A kube client whose requests this fake answers in-process.
    pub fn client(&self) -> kube::Client {
        let me = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let me = me.clone();
            async move { Ok::<_, Infallible>(me.answer(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    async fn answer<B>(&self, req: Request<B>) -> Response<FakeBody>
    where
        B: http_body::Body<Data = Bytes>,
    {
        let (parts, body) = req.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let path = parts.uri.path().to_string();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if path.ends_with("reviews") {
            let id = parts
                .headers
                .get("audit-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut st = self.0.lock().expect("lock");
            if path.ends_with("tokenreviews") {
                st.token_review_audit_ids.push(id);
            } else {
                st.review_audit_ids.push(id);
            }
        }
        match (parts.method.as_str(), path.as_str()) {
            ("GET", KUBE_SYSTEM_CONFIGMAPS) => {
                self.configmap_collection(parts.uri.query().unwrap_or(""))
            }
            (
                "GET",
                "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
            ) => {
                let mut st = self.0.lock().expect("lock");
                st.configmap_gets += 1;
                if st.configmap_fails {
                    return reply(500, status(500, "InternalError", "etcd is on fire"));
                }
                match Self::configmap_object(&st) {
                    Some(obj) => reply(200, obj),
                    None => reply(
                        404,
                        status(
                            404,
                            "NotFound",
                            "configmaps \"extension-apiserver-authentication\" not found",
                        ),
                    ),
                }
            }
            ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews") => {
                let spec: SubjectAccessReviewSpec =
                    serde_json::from_value(body["spec"].clone()).expect("SAR spec");
                let policy = {
                    let mut st = self.0.lock().expect("lock");
                    st.sar_calls.push(spec.clone());
                    st.policy.clone()
                };
                match policy(&spec) {
                    SarAnswer::Fail => reply(500, status(500, "InternalError", "etcd is on fire")),
                    answer => {
                        let (allowed, reason) = match answer {
                            SarAnswer::Allow => (true, String::new()),
                            SarAnswer::Deny(r) => (false, r),
                            SarAnswer::Fail => unreachable!(),
                        };
                        let mut out = body.clone();
                        out["status"] = json!({"allowed": allowed, "reason": reason});
                        reply(201, out)
                    }
                }
            }
            ("POST", "/apis/authentication.k8s.io/v1/tokenreviews") => {
                let token = body["spec"]["token"].as_str().unwrap_or("").to_string();
                let user = {
                    let mut st = self.0.lock().expect("lock");
                    st.token_calls += 1;
                    st.tokens.get(&token).cloned()
                };
                let mut out = body.clone();
                out["status"] = match user {
                    Some(u) => {
                        json!({"authenticated": true, "user": {"username": u.username, "uid": u.uid, "groups": u.groups, "extra": u.extra}})
                    }
                    None => json!({"authenticated": false, "error": "invalid bearer token"}),
                };
                reply(201, out)
            }
            _ => reply(
                404,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            ),
        }
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason, "message": message, "code": code})
}

fn reply(code: u16, v: Value) -> Response<FakeBody> {
    let mut r = Response::new(FakeBody::new(Full::new(Bytes::from(
        serde_json::to_vec(&v).expect("json"),
    ))));
    *r.status_mut() = StatusCode::from_u16(code).expect("code");
    r.headers_mut()
        .insert("content-type", "application/json".parse().expect("ct"));
    r
}

/// The ConfigMap data kube-apiserver publishes, for these CAs.
pub fn auth_configmap(
    front_ca: &Ca,
    client_ca: &Ca,
    allowed_names: &[&str],
) -> BTreeMap<String, String> {
    let mut d = BTreeMap::new();
    d.insert("client-ca-file".into(), client_ca.pem.cert.clone());
    d.insert(
        "requestheader-client-ca-file".into(),
        front_ca.pem.cert.clone(),
    );
    d.insert(
        "requestheader-allowed-names".into(),
        serde_json::to_string(allowed_names).expect("json"),
    );
    d.insert(
        "requestheader-username-headers".into(),
        r#"["X-Remote-User"]"#.into(),
    );
    d.insert(
        "requestheader-uid-headers".into(),
        r#"["X-Remote-Uid"]"#.into(),
    );
    d.insert(
        "requestheader-group-headers".into(),
        r#"["X-Remote-Group"]"#.into(),
    );
    d.insert(
        "requestheader-extra-headers-prefix".into(),
        r#"["X-Remote-Extra-"]"#.into(),
    );
    d
}

/// What the fake engine answers.
pub type EngineFn = Arc<dyn Fn(&RetryRequest) -> Result<PipelineRunRetry, ApiError> + Send + Sync>;

/// A fake engine that records what it receives.
pub struct RecordingEngine {
    pub calls: Mutex<Vec<RetryRequest>>,
    pub answer: Mutex<EngineFn>,
    pub delay: Mutex<Duration>,
    pub finished: Mutex<usize>,
    /// When set, each call waits for a permit: the test decides when the engine answers.
    pub gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

impl RecordingEngine {
    pub fn new() -> Arc<Self> {
        Arc::new(RecordingEngine {
            calls: Mutex::new(Vec::new()),
            answer: Mutex::new(Arc::new(|r: &RetryRequest| Ok(success(r)))),
            delay: Mutex::new(Duration::ZERO),
            finished: Mutex::new(0),
            gate: Mutex::new(None),
        })
    }
    pub fn calls(&self) -> Vec<RetryRequest> {
        self.calls.lock().expect("lock").clone()
    }
    pub fn answer_with(
        &self,
        f: impl Fn(&RetryRequest) -> Result<PipelineRunRetry, ApiError> + Send + Sync + 'static,
    ) {
        *self.answer.lock().expect("lock") = Arc::new(f);
    }
    /// From now on every call waits until the test adds a permit to the returned semaphore.
    pub fn hold(&self) -> Arc<tokio::sync::Semaphore> {
        let sem = Arc::new(tokio::sync::Semaphore::new(0));
        *self.gate.lock().expect("lock") = Some(sem.clone());
        sem
    }
    pub fn finished(&self) -> usize {
        *self.finished.lock().expect("lock")
    }
}

/// The engine's default answer: attempt 2 started.
pub fn success(r: &RetryRequest) -> PipelineRunRetry {
    PipelineRunRetry::response(
        &r.namespace,
        &r.name,
        r.spec.clone(),
        RetryStatus {
            attempt: 2,
            dry_run: r.dry_run,
            pipeline_run_uid: "uid-1".into(),
            ..Default::default()
        },
    )
}

/// Lets tests hand the engine over as a `RetryService` while keeping a handle on it.
pub struct Shared(pub Arc<RecordingEngine>);

impl RetryService for Shared {
    /// The fake answers every history with one recorded attempt, so routing and authorization
    /// of the subresource can be seen end to end.
    fn history(
        &self,
        namespace: String,
        name: String,
        _audit_id: Option<String>,
    ) -> BoxFuture<'static, Result<serde_json::Value, ApiError>> {
        Box::pin(async move {
            Ok(serde_json::json!({
                "apiVersion": "retry.tekton.dev/v1alpha1", "kind": "PipelineRunRetryHistory",
                "metadata": {"name": name, "namespace": namespace},
                "data": {"attempts.json": "[{\"attempt\":2,\"start\":\"t\",\"by\":\"alice\"}]"},
            }))
        })
    }

    fn retry(&self, req: RetryRequest) -> BoxFuture<'static, Result<PipelineRunRetry, ApiError>> {
        let engine = self.0.clone();
        Box::pin(async move {
            engine.calls.lock().expect("lock").push(req.clone());
            let gate = engine.gate.lock().expect("lock").clone();
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate").forget();
            }
            let delay = *engine.delay.lock().expect("lock");
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let answer = engine.answer.lock().expect("lock").clone();
            let out = answer(&req);
            *engine.finished.lock().expect("lock") += 1;
            out
        })
    }
}

/// A server under test with its CAs, fake API and fake engine.
pub struct Harness {
    pub front_ca: Ca,
    pub client_ca: Ca,
    pub serving_ca: Ca,
    pub kube: FakeKube,
    pub engine: Arc<RecordingEngine>,
    pub metrics: Arc<Metrics>,
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
        let handle = Server::start(opts, Arc::new(Shared(engine.clone())), metrics.clone())
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
            metrics,
            handle: Some(handle),
            addr,
        }
    }

    /// A client that trusts the serving CA, presenting `cert` if given.
    pub fn client(&self, cert: Option<&CertPem>) -> TestClient {
        TestClient::new(self.addr, &self.serving_ca.pem.cert, cert, false)
    }

    /// The same over HTTP/2.
    pub fn client_h2(&self, cert: Option<&CertPem>) -> TestClient {
        TestClient::new(self.addr, &self.serving_ca.pem.cert, cert, true)
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

/// Path of the retry subresource of `ns/name`.
pub fn retry_path(ns: &str, name: &str) -> String {
    format!("/apis/retry.tekton.dev/v1alpha1/namespaces/{ns}/pipelineruns/{name}/retry")
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Asserts a `metav1.Status` with this code and reason; returns its message.
    pub fn expect_status(&self, code: u16, reason: &str) -> String {
        assert_eq!(self.status.as_u16(), code, "{}", self.text());
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let s: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status =
            serde_json::from_slice(&self.body).expect("a metav1.Status");
        assert_eq!(s.code, Some(code as i32));
        assert_eq!(s.reason.as_deref(), Some(reason));
        assert_eq!(s.status.as_deref(), Some("Failure"));
        s.message.unwrap_or_default()
    }
}

/// A TLS client opening one connection per request.
pub struct TestClient {
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    pub http2: bool,
}

impl TestClient {
    pub fn new(addr: SocketAddr, ca_pem: &str, cert: Option<&CertPem>, http2: bool) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots.add(c.expect("ca")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let mut config = match cert {
            Some(c) => {
                let chain: Vec<CertificateDer<'static>> =
                    rustls_pemfile::certs(&mut c.cert.as_bytes())
                        .collect::<Result<_, _>>()
                        .expect("chain");
                let key = rustls_pemfile::private_key(&mut c.key.as_bytes())
                    .expect("key")
                    .expect("a key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        TestClient {
            addr,
            config: Arc::new(config),
            http2,
        }
    }

    /// A new TLS connection to the server (ALPN as the client was made).
    pub async fn connect(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake")
    }

    /// The server's certificate chain as seen in a fresh handshake.
    pub async fn peer_certificate(&self) -> Vec<CertificateDer<'static>> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        tls.get_ref().1.peer_certificates().expect("certs").to_vec()
    }

    /// Sends `req` (path-only URI is fine) on a new connection.
    pub async fn send<B>(&self, mut req: Request<B>) -> Answer
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        let io = TokioIo::new(tls);
        let authority = format!("localhost:{}", self.addr.port());
        let uri: http::Uri = format!("https://{authority}{}", req.uri())
            .parse()
            .expect("uri");
        *req.uri_mut() = uri;
        let resp = if self.http2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .expect("h2 handshake");
            tokio::spawn(conn);
            sender.send_request(req).await.expect("response")
        } else {
            req.headers_mut()
                .insert("host", authority.parse().expect("host"));
            *req.uri_mut() = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
                .parse()
                .expect("uri");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("h1 handshake");
            tokio::spawn(conn);
            sender.send_request(req).await.expect("response")
        };
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
            version: parts.version,
        }
    }

    /// Writes raw bytes on a new TLS connection and returns what comes back until the server
    /// closes it (or 10 s pass).
    pub async fn raw(&self, bytes: &[u8]) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let mut tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        tls.write_all(bytes).await.expect("write");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out)).await;
        out
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(
            Request::get(path)
                .body(Full::new(Bytes::new()))
                .expect("req"),
        )
        .await
    }

    /// POST to the retry route with `headers` and `body`.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut b = Request::post(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(
            b.body(Full::new(Bytes::from(body.to_string())))
                .expect("req"),
        )
        .await
    }
}

/// `spec` as the engine received it, for comparing.
pub fn spec_of(calls: &[RetryRequest]) -> Vec<RetrySpec> {
    calls.iter().map(|c| c.spec.clone()).collect()
}

/// Waits (polling) until `f` holds, at most `secs` seconds.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    f()
}

//! A fake Kubernetes API at the HTTP boundary, answering the server's own calls: the
//! authentication ConfigMap (get, list and watch by name), SubjectAccessReview and TokenReview.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::authorization::v1::SubjectAccessReviewSpec;
use serde_json::{json, Value};
use tekton_retry::api::UserInfo;
use tekton_retry_pki::Ca;

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
    /// Every SubjectAccessReview is denied, without a reason.
    pub fn deny_all(&self) {
        self.set_policy(|_| SarAnswer::Deny(String::new()));
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
        let (parts, body) = super::json_request(req).await;
        let path = parts.uri.path().to_string();
        if path.ends_with("reviews") {
            let id = super::header(&parts.headers, "audit-id")
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
    let allowed_names = serde_json::to_string(allowed_names).expect("json");
    [
        ("client-ca-file", client_ca.pem.cert.as_str()),
        ("requestheader-client-ca-file", front_ca.pem.cert.as_str()),
        ("requestheader-allowed-names", allowed_names.as_str()),
        ("requestheader-username-headers", r#"["X-Remote-User"]"#),
        ("requestheader-uid-headers", r#"["X-Remote-Uid"]"#),
        ("requestheader-group-headers", r#"["X-Remote-Group"]"#),
        (
            "requestheader-extra-headers-prefix",
            r#"["X-Remote-Extra-"]"#,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

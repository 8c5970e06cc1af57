//! Shared helpers for the emulator integration tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use tekton_retry_pki::Ca;

use kube::api::{Api, ApiResource, DynamicObject};
use kube::api::{Patch, PatchParams};
use kube::{Client, Result};
use serde_json::{json, Value};
use tekton_retry_sandbox::emulator::{Emulator, EmulatorOptions};

/// An emulator with fast garbage collection and probing.
pub async fn start() -> Emulator {
    start_with(EmulatorOptions {
        gc_delay: Duration::from_millis(5),
        probe_interval: Duration::from_millis(200),
        bookmark_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await
}

pub async fn start_with(opts: EmulatorOptions) -> Emulator {
    Emulator::start(opts).await.expect("emulator starts")
}

/// [`start`] and a client as `admin` (group `system:masters`): how most tests begin.
pub async fn start_as_admin() -> (Emulator, Client) {
    let emu = start().await;
    let c = client(&emu, "admin");
    (emu, c)
}

/// Create the PipelineRun [`pipelinerun`]`(name)` through `api`.
pub async fn create_pipelinerun(api: &Api<DynamicObject>, name: &str) -> DynamicObject {
    api.create(
        &kube::api::PostParams::default(),
        &dynamic(pipelinerun(name)),
    )
    .await
    .unwrap_or_else(|e| panic!("create PipelineRun {name}: {e}"))
}

/// What kube-rs reads back from a patch.
pub trait Object: Clone + serde::de::DeserializeOwned + std::fmt::Debug {}
impl<K: Clone + serde::de::DeserializeOwned + std::fmt::Debug> Object for K {}

/// A JSON merge patch of `name` (`kubectl patch --type merge`).
pub async fn merge_patch<K: Object>(api: &Api<K>, name: &str, patch: Value) -> Result<K> {
    let merge = Patch::Merge(patch);
    api.patch(name, &PatchParams::default(), &merge).await
}

/// A JSON merge patch of the `/status` subresource of `name`.
pub async fn merge_patch_status<K: Object>(api: &Api<K>, name: &str, patch: Value) -> Result<K> {
    let merge = Patch::Merge(patch);
    api.patch_status(name, &PatchParams::default(), &merge)
        .await
}

/// A kube-rs client for a user, without kube's automatic retries (tests see every answer).
pub fn client(emu: &Emulator, user: &str) -> Client {
    let mut cfg = emu.kube_config(user).expect("config");
    cfg.default_retry = false;
    Client::try_from(cfg).expect("client")
}

pub fn pipelinerun_resource() -> ApiResource {
    crate::sandbox::resource("PipelineRun", "pipelineruns")
}

pub fn taskrun_resource() -> ApiResource {
    crate::sandbox::resource("TaskRun", "taskruns")
}

pub fn prs(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &pipelinerun_resource())
}

pub fn trs(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &taskrun_resource())
}

/// A PipelineRun body.
pub fn pipelinerun(name: &str) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": "demo", "labels": {"app": "demo"}},
        "spec": {"pipelineRef": {"name": "build-and-deploy"}}
    })
}

/// The `name` field of each item of a JSON list (a Table's `columnDefinitions`, an archive's
/// `runs`); an item without one is left out.
pub fn names_in(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a JSON list")
        .iter()
        .filter_map(|item| item["name"].as_str())
        .collect()
}

/// A DynamicObject from JSON.
pub fn dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("a DynamicObject")
}

/// The API error of a kube call that must fail.
pub fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(e)) => *e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Poll `f` until it returns true (generous timeout, only to avoid hangs).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- a TLS backend for the front proxy tests ----

/// What the backend saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub client_cn: String,
}

impl Seen {
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn one(&self, k: &str) -> Option<&str> {
        self.all(k).first().copied()
    }
}

pub struct Backend {
    pub url: String,
    pub ca_pem: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The requestheader CA bundle the backend trusts (changeable, as `serve` reloads the ConfigMap).
    pub trusted: Arc<Mutex<String>>,
}

fn cn_of(der: &CertificateDer<'_>) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).expect("x509");
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or("")
        .to_string();
    cn
}

pub async fn backend(requestheader_ca: &str) -> Backend {
    let ca = Ca::new("backend-ca").expect("ca");
    let serving = ca.issue_server(&["127.0.0.1"]).expect("serving");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let trusted = Arc::new(Mutex::new(requestheader_ca.to_string()));
    let (seen2, trusted2) = (seen.clone(), trusted.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let mut roots = rustls::RootCertStore::empty();
            let bundle = trusted2.lock().expect("lock").clone();
            for c in rustls_pemfile::certs(&mut bundle.as_bytes()) {
                roots.add(c.expect("pem")).expect("root");
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .expect("verifier");
            let cert = rustls_pemfile::certs(&mut serving.cert.as_bytes())
                .map(|c| c.expect("cert"))
                .collect();
            let key = rustls_pemfile::private_key(&mut serving.key.as_bytes())
                .expect("key")
                .expect("key");
            let cfg = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_client_cert_verifier(verifier)
                .with_single_cert(cert, key)
                .expect("cfg");
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cn = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(cn_of)
                    .unwrap_or_default();
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        let cn = cn.clone();
                        async move {
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let s = Seen {
                                method,
                                path: path.clone(),
                                headers,
                                body: String::from_utf8_lossy(&body).into(),
                                client_cn: cn,
                            };
                            seen.lock().expect("lock").push(s.clone());
                            let out = match path.as_str() {
                                "/apis/retry.tekton.dev/v1alpha1" => {
                                    json!({"kind": "APIResourceList", "apiVersion": "v1",
                                "groupVersion": "retry.tekton.dev/v1alpha1", "resources": [
                                {"name": "pipelineruns", "singularName": "", "namespaced": true, "kind": "PipelineRunRetry", "verbs": []},
                                {"name": "pipelineruns/retry", "singularName": "", "namespaced": true, "kind": "PipelineRunRetry", "verbs": ["create"]}]})
                                }
                                "/openapi/v3" => json!({"paths": {}}),
                                _ => json!({"echo": true, "user": s.one("x-remote-user")}),
                            };
                            let code = if path.ends_with("/retry") { 201 } else { 200 };
                            let mut r =
                                http::Response::new(Full::new(Bytes::from(out.to_string())));
                            *r.status_mut() = http::StatusCode::from_u16(code).expect("code");
                            r.headers_mut().insert(
                                "content-type",
                                http::HeaderValue::from_static("application/json"),
                            );
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Backend {
        url: format!("https://{addr}"),
        ca_pem: ca.pem.cert.clone(),
        seen,
        trusted,
    }
}

//! The aggregator front proxy, as kube-apiserver's kube-aggregator does it
//! (`staging/src/k8s.io/kube-aggregator/pkg/apiserver/handler_proxy.go`,
//! `client-go/transport` `SetAuthProxyHeaders`, the `requestheader` authenticator's ConfigMap):
//!
//! - requests under `/apis/<group>/<version>/…` go to the backend set at runtime, over TLS verified
//!   against the backend CA, presenting the front-proxy client certificate (CN `front-proxy-client`,
//!   signed by a requestheader CA separate from the client CA);
//! - the user (already authenticated and authorized by the emulator) travels as `X-Remote-User`, one
//!   `X-Remote-Group` per group, `X-Remote-Extra-<escaped key>`, `X-Remote-Uid`; incoming
//!   `Authorization`, `Impersonate-*` and `X-Remote-*` are dropped; `Audit-ID` and `X-Forwarded-For/Proto/Host/Uri`
//!   are added; the body is streamed chunked;
//! - until a backend is set, or while its discovery fails, the group answers 503 `service
//!   unavailable` as plain text, like kube-aggregator (`handler_proxy.go` `proxyError`);
//! - a prober fetches the backend's `/apis/<group>/<version>` and `/openapi/v3` as
//!   `system:kube-aggregator` with no groups, records availability, and feeds discovery;
//! - `kube-system/extension-apiserver-authentication` is published with the CAs and header names.

pub mod backend_pool;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, BodyStream, Empty, StreamBody};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::emulator::discovery::AggregatedGroup;
use crate::emulator::http::{text, Body, BoxError};
use crate::emulator::resources::Gvr;
use crate::emulator::status::StatusError;
use crate::emulator::store::Store;
use crate::emulator::tls;
use tekton_retry::api::UserInfo;
use tekton_retry_pki::{Ca, CertPem};

use backend_pool::{BackendPool, PoolKey};

/// kube-aggregator's error answer: `http.Error`, a plain-text body (`handler_proxy.go`
/// `proxyError`, `responder.Error`), not a `metav1.Status`.
fn plain_error(code: u16, message: &str) -> Response<Body> {
    let mut r = text(code, &format!("{message}\n"));
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// CN of the front-proxy client certificate (`requestheader-allowed-names`).
pub const FRONT_PROXY_CN: &str = "front-proxy-client";
/// The user the availability prober presents (no groups), as kube-aggregator does.
pub const AGGREGATOR_USER: &str = "system:kube-aggregator";
/// Namespace and name of the published authentication ConfigMap.
pub const AUTH_CONFIGMAP: (&str, &str) = ("kube-system", "extension-apiserver-authentication");

/// A front-proxy setup error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Pki(#[from] tekton_retry_pki::PkiError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("bad backend URL {0:?}")]
    Url(String),
    #[error("publishing the authentication ConfigMap: {0}")]
    Publish(StatusError),
}

/// The requestheader CA and the front-proxy client certificate, for tests and for `serve`.
#[derive(Clone, Debug)]
pub struct FrontProxyIdentity {
    /// The requestheader client CA (PEM) that signs the front-proxy client certificate.
    pub requestheader_ca_pem: String,
    /// The front-proxy client certificate and key (CN `front-proxy-client`).
    pub client: CertPem,
}

/// What the front proxy trusts as the aggregated group's backend.
#[derive(Clone, Copy, Debug)]
pub enum BackendTrust<'a> {
    /// A certificate chaining to this CA (PEM), valid for the URL's host.
    Ca(&'a str),
    /// What the stored APIService of this name says, as kube-aggregator does (`handler_proxy.go`
    /// `updateAPIService`): its `spec.caBundle` is the only CA the backend's certificate may chain
    /// to, and the certificate must be valid for `<spec.service.name>.<spec.service.namespace>.svc`.
    /// The APIService is re-read at each probe (kube-aggregator's informer also sees a change some
    /// time after it is written); without a `caBundle` the backend is unavailable.
    ApiService(&'a str),
}

/// A CA PEM: trust that CA.
impl<'a> From<&'a str> for BackendTrust<'a> {
    fn from(ca_pem: &'a str) -> Self {
        BackendTrust::Ca(ca_pem)
    }
}

impl<'a> From<&'a String> for BackendTrust<'a> {
    fn from(ca_pem: &'a String) -> Self {
        BackendTrust::Ca(ca_pem)
    }
}

/// What the last availability probe found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Availability {
    /// The backend answered its discovery with a valid `APIResourceList`.
    pub available: bool,
    /// Why not (or `"Passed"`), like the APIService `Available` condition's message.
    pub message: String,
    /// How many probes ran.
    pub probes: u64,
    /// HTTP code of the last `/openapi/v3` fetch.
    pub openapi_v3_status: Option<u16>,
    /// The backend's discovery document, when available.
    pub discovery: Option<Value>,
}

#[derive(Clone)]
struct Backend {
    url: url::Url,
    /// CAs the backend's certificate must chain to.
    ca_pem: String,
    /// The name the certificate must be valid for (the URL's host unless the APIService says).
    server_name: String,
    /// Read `ca_pem` and `server_name` from this APIService at each probe.
    apiservice: Option<String>,
}

struct Identity {
    ca: Arc<Ca>,
    /// Published CA bundle (the current CA, plus the previous one during a rotation overlap).
    bundle: String,
    client: CertPem,
}

/// The front proxy for one aggregated group version.
pub struct FrontProxy {
    group: String,
    version: String,
    priority: u32,
    client_ca_pem: String,
    store: Arc<Store>,
    backend: RwLock<Option<Backend>>,
    identity: RwLock<Identity>,
    availability: RwLock<Availability>,
    wake: Notify,
    pool: BackendPool,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The host of a backend URL, without IPv6 brackets.
fn host_of(u: &url::Url) -> String {
    u.host_str()
        .unwrap_or_default()
        .trim_matches(|c| c == '[' || c == ']')
        .to_string()
}

/// `client-go/transport` `headerKeyEscape`: percent-encode bytes that are not legal in a header
/// key (and `%` itself).
pub fn escape_extra_key(k: &str) -> String {
    let mut out = String::new();
    for b in k.bytes() {
        let legal = b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b);
        if legal {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn new_identity(previous: Option<&str>) -> Result<Identity, ProxyError> {
    let ca = Ca::new("sandbox-requestheader-ca")?;
    let client = ca.issue_client(FRONT_PROXY_CN, &[])?;
    let mut bundle = ca.pem.cert.clone();
    if let Some(p) = previous {
        bundle.push_str(p);
    }
    Ok(Identity {
        ca: Arc::new(ca),
        bundle,
        client,
    })
}

impl FrontProxy {
    /// A proxy for `group/version` (APIService `groupPriorityMinimum` = `priority`) with no backend
    /// yet; publishes the authentication ConfigMap.
    pub fn new(
        group: &str,
        version: &str,
        priority: u32,
        store: Arc<Store>,
        client_ca_pem: &str,
    ) -> Result<Arc<FrontProxy>, ProxyError> {
        let p = Arc::new(FrontProxy {
            group: group.into(),
            version: version.into(),
            priority,
            client_ca_pem: client_ca_pem.into(),
            store,
            backend: RwLock::new(None),
            identity: RwLock::new(new_identity(None)?),
            availability: RwLock::new(Availability {
                message: "no backend set".into(),
                ..Default::default()
            }),
            wake: Notify::new(),
            pool: BackendPool::default(),
        });
        p.publish()?;
        Ok(p)
    }

    /// The aggregated group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The aggregated version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Whether a request path belongs to the aggregated group version.
    pub fn owns(&self, path: &str) -> bool {
        let prefix = format!("/apis/{}/{}", self.group, self.version);
        path == prefix || path.starts_with(&format!("{prefix}/"))
    }

    /// Point the group at `url` (e.g. `https://127.0.0.1:8443`), trusting `trust`, and probe it
    /// at once.
    pub fn set_backend(&self, url: &str, trust: BackendTrust<'_>) -> Result<(), ProxyError> {
        let u = url::Url::parse(url).map_err(|_| ProxyError::Url(url.into()))?;
        if u.host_str().is_none() {
            return Err(ProxyError::Url(url.into()));
        }
        let (ca_pem, apiservice) = match trust {
            BackendTrust::Ca(pem) => {
                tls::roots(pem)?;
                (pem.to_string(), None)
            }
            BackendTrust::ApiService(name) => (String::new(), Some(name.to_string())),
        };
        *self.backend.write().unwrap_or_else(|e| e.into_inner()) = Some(Backend {
            server_name: host_of(&u),
            url: u,
            ca_pem,
            apiservice,
        });
        self.wake.notify_one();
        Ok(())
    }

    /// Refreshes the backend's trust from its APIService; `Err` says why it cannot be trusted.
    fn refresh_from_apiservice(&self) -> Result<(), String> {
        let Some(b) = self.backend() else {
            return Ok(());
        };
        let Some(name) = &b.apiservice else {
            return Ok(());
        };
        let obj = self
            .store
            .get(&Gvr::apiservices(), "", name)
            .map_err(|_| format!("APIService {name} not found"))?;
        let spec = &obj["spec"];
        let ca_pem = spec["caBundle"]
            .as_str()
            .filter(|b| !b.is_empty())
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                format!("failing or missing response from {}: APIService {name} has no valid caBundle: x509: certificate signed by unknown authority", b.url)
            })?;
        tls::roots(&ca_pem).map_err(|e| format!("APIService {name} caBundle: {e}"))?;
        let server_name = match (
            spec["service"]["name"].as_str(),
            spec["service"]["namespace"].as_str(),
        ) {
            (Some(svc), Some(ns)) => format!("{svc}.{ns}.svc"),
            _ => host_of(&b.url),
        };
        let mut g = self.backend.write().unwrap_or_else(|e| e.into_inner());
        if let Some(cur) = g.as_mut().filter(|c| c.apiservice.as_ref() == Some(name)) {
            cur.ca_pem = ca_pem;
            cur.server_name = server_name;
        }
        Ok(())
    }

    /// The CAs (PEM) and the name the proxy verifies the backend with now (as last refreshed
    /// from the APIService, when it trusts one).
    pub fn backend_trust(&self) -> Option<(String, String)> {
        self.backend().map(|b| (b.ca_pem, b.server_name))
    }

    /// Remove the backend: the group answers 503 and leaves discovery.
    pub fn clear_backend(&self) {
        *self.backend.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.pool.clear();
        *self.availability.write().unwrap_or_else(|e| e.into_inner()) = Availability {
            message: "no backend set".into(),
            ..Default::default()
        };
    }

    /// The requestheader CA and front-proxy client certificate in use.
    pub fn identity(&self) -> FrontProxyIdentity {
        let g = self.identity.read().unwrap_or_else(|e| e.into_inner());
        FrontProxyIdentity {
            requestheader_ca_pem: g.bundle.clone(),
            client: g.client.clone(),
        }
    }

    /// The requestheader CA itself (to issue other client certificates in tests, e.g. with a CN
    /// that is not allowed).
    pub fn requestheader_ca(&self) -> Arc<Ca> {
        self.identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .ca
            .clone()
    }

    /// Rotate the requestheader CA and the front-proxy client certificate, and republish the
    /// ConfigMap. With `keep_previous`, the published bundle holds the new and the old CA.
    pub fn rotate(&self, keep_previous: bool) -> Result<FrontProxyIdentity, ProxyError> {
        {
            let mut g = self.identity.write().unwrap_or_else(|e| e.into_inner());
            let prev = keep_previous.then(|| g.ca.pem.cert.clone());
            *g = new_identity(prev.as_deref())?;
        }
        self.publish()?;
        Ok(self.identity())
    }

    /// Write `kube-system/extension-apiserver-authentication` as kube-apiserver does
    /// (`pkg/controlplane/controller/clusterauthenticationtrust`): CA bundles as PEM, header names
    /// as JSON-array strings.
    pub fn publish(&self) -> Result<(), ProxyError> {
        let bundle = self.identity().requestheader_ca_pem;
        let data = json!({
            "client-ca-file": self.client_ca_pem,
            "requestheader-client-ca-file": bundle,
            "requestheader-allowed-names": format!("[\"{FRONT_PROXY_CN}\"]"),
            "requestheader-username-headers": "[\"X-Remote-User\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            "requestheader-uid-headers": "[\"X-Remote-Uid\"]",
        });
        let gvr = Gvr::configmaps();
        let (ns, name) = AUTH_CONFIGMAP;
        let result = match self.store.get(&gvr, ns, name) {
            Ok(mut cm) => {
                cm["data"] = data;
                self.store.update(&gvr, cm)
            }
            Err(_) => self.store.create(
                &gvr,
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}),
            ),
        };
        result.map(|_| ()).map_err(ProxyError::Publish)
    }

    /// The last probe's result.
    pub fn availability(&self) -> Availability {
        self.availability
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The group for discovery, when the backend is available.
    pub fn aggregated_group(&self) -> Option<AggregatedGroup> {
        let a = self.availability();
        if !a.available {
            return None;
        }
        Some(AggregatedGroup {
            group: self.group.clone(),
            version: self.version.clone(),
            resources: a.discovery?,
            priority: self.priority,
        })
    }

    fn client_config(&self, backend: &Backend) -> Result<Arc<rustls::ClientConfig>, tls::TlsError> {
        let id = self.identity();
        let mut cfg = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(tls::roots(&backend.ca_pem)?)
            .with_client_auth_cert(tls::certs(&id.client.cert)?, tls::key(&id.client.key)?)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    async fn send(
        &self,
        backend: &Backend,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, BoxError> {
        let host = host_of(&backend.url);
        let port = backend.url.port_or_known_default().unwrap_or(443);
        let key = PoolKey {
            url: backend.url.to_string(),
            ca_pem: backend.ca_pem.clone(),
            server_name: backend.server_name.clone(),
            client_cert_pem: self.identity().client.cert,
        };
        self.pool
            .send(&key, &host, port, || Ok(self.client_config(backend)?), req)
            .await
    }

    /// New connections the proxy opened to the backend so far (idle ones are reused).
    pub fn backend_connects(&self) -> u64 {
        self.pool.connects()
    }

    fn backend(&self) -> Option<Backend> {
        self.backend
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn target(backend: &Backend, path_and_query: &str) -> Result<Uri, BoxError> {
        let mut base = backend.url.as_str().trim_end_matches('/').to_string();
        base.push_str(path_and_query);
        Ok(base.parse::<Uri>()?)
    }

    /// One probe: discovery and OpenAPI as `system:kube-aggregator` with no groups.
    pub async fn probe(&self) -> Availability {
        if let Err(message) = self.refresh_from_apiservice() {
            let mut a = self.availability();
            a.probes += 1;
            a.available = false;
            a.message = message;
            a.discovery = None;
            if self.backend().is_some() {
                *self.availability.write().unwrap_or_else(|e| e.into_inner()) = a.clone();
            }
            return a;
        }
        let Some(b) = self.backend() else {
            return self.availability();
        };
        let get = |path: String| {
            let b = b.clone();
            async move {
                let uri = Self::target(&b, &path)?;
                let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
                let req = Request::get(uri)
                    .header(http::header::HOST, host)
                    .header(http::header::ACCEPT, "application/json")
                    .header("X-Remote-User", AGGREGATOR_USER)
                    .body(Empty::<Bytes>::new().map_err(|n| match n {}).boxed())?;
                let resp = self.send(&b, req).await?;
                let code = resp.status().as_u16();
                let body = resp.into_body().collect().await?.to_bytes();
                Ok::<(u16, Bytes), BoxError>((code, body))
            }
        };
        let gv = format!("{}/{}", self.group, self.version);
        let disc = get(format!("/apis/{gv}")).await;
        let openapi = get("/openapi/v3".to_string()).await;
        let mut a = self.availability();
        a.probes += 1;
        a.openapi_v3_status = openapi.ok().map(|(c, _)| c);
        match disc {
            Ok((200, body)) => match serde_json::from_slice::<Value>(&body) {
                Ok(v) if v["groupVersion"] == gv.as_str() => {
                    a.available = true;
                    a.message = "Passed".into();
                    a.discovery = Some(v);
                }
                _ => {
                    a.available = false;
                    a.message = "failing or missing response: invalid APIResourceList".into();
                    a.discovery = None;
                }
            },
            Ok((code, _)) => {
                a.available = false;
                a.message = format!(
                    "failing or missing response from {}: bad status from {}: {code}",
                    b.url, b.url
                );
                a.discovery = None;
            }
            Err(e) => {
                a.available = false;
                a.message = format!("failing or missing response from {}: {e}", b.url);
                a.discovery = None;
            }
        }
        // A backend cleared meanwhile stays cleared.
        if self.backend().is_some() {
            *self.availability.write().unwrap_or_else(|e| e.into_inner()) = a.clone();
        }
        a
    }

    /// Probe every `interval`, and at once when the backend changes.
    pub fn spawn_prober(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(p) = weak.upgrade() else { return };
                p.probe().await;
                let wake = async {
                    p.wake.notified().await;
                };
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = wake => {}
                }
            }
        })
    }

    /// Forward an authenticated, authorized request to the backend.
    pub async fn forward(
        &self,
        req: Request<Incoming>,
        user: &UserInfo,
        remote: SocketAddr,
    ) -> Response<Body> {
        let Some(backend) = self.backend() else {
            return plain_error(503, "service unavailable");
        };
        if !self.availability().available {
            return plain_error(503, "service unavailable");
        }
        let (parts, body) = req.into_parts();
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let uri = match Self::target(&backend, &pq) {
            Ok(u) => u,
            Err(e) => return plain_error(500, &e.to_string()),
        };
        let original_host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let mut headers = http::HeaderMap::new();
        for (k, v) in parts.headers.iter() {
            let n = k.as_str().to_ascii_lowercase();
            if HOP_BY_HOP.contains(&n.as_str())
                || n == "authorization"
                || n == "content-length"
                || n == "host"
                || n.starts_with("impersonate-")
                || n.starts_with("x-remote-")
            {
                continue;
            }
            headers.append(k.clone(), v.clone());
        }
        let add = |h: &mut http::HeaderMap, k: &str, v: &str| {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                h.append(k, v);
            }
        };
        add(&mut headers, "X-Remote-User", &user.username);
        for g in &user.groups {
            add(&mut headers, "X-Remote-Group", g);
        }
        for (k, vs) in &user.extra {
            for v in vs {
                add(
                    &mut headers,
                    &format!("X-Remote-Extra-{}", escape_extra_key(k)),
                    v,
                );
            }
        }
        if let Some(uid) = &user.uid {
            add(&mut headers, "X-Remote-Uid", uid);
        }
        if !headers.contains_key("audit-id") {
            add(&mut headers, "Audit-ID", &uuid::Uuid::new_v4().to_string());
        }
        let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {}", remote.ip()),
            None => remote.ip().to_string(),
        };
        headers.remove("x-forwarded-for");
        add(&mut headers, "X-Forwarded-For", &xff);
        headers.remove("x-forwarded-proto");
        add(&mut headers, "X-Forwarded-Proto", "https");
        headers.remove("x-forwarded-host");
        add(&mut headers, "X-Forwarded-Host", &original_host);
        if !headers.contains_key("x-forwarded-uri") {
            add(&mut headers, "X-Forwarded-Uri", &pq);
        }
        if let Some(a) = uri.authority() {
            add(&mut headers, "Host", a.as_str());
        }
        // No size hint and no Content-Length: hyper sends the body chunked, as kube-apiserver does.
        let stream = BodyStream::new(body.map_err(|e| -> BoxError { Box::new(e) }));
        let out_body: Body = StreamBody::new(stream).boxed();
        let mut out = Request::new(out_body);
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = uri;
        *out.headers_mut() = headers;
        match self.send(&backend, out).await {
            Ok(resp) => {
                let (mut rparts, rbody) = resp.into_parts();
                for h in HOP_BY_HOP {
                    rparts.headers.remove(*h);
                }
                Response::from_parts(
                    rparts,
                    rbody.map_err(|e| -> BoxError { Box::new(e) }).boxed(),
                )
            }
            Err(e) => plain_error(503, &e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_keys_are_escaped() {
        assert_eq!(escape_extra_key("scopes"), "scopes");
        assert_eq!(
            escape_extra_key("example.org/foo bar"),
            "example.org%2Ffoo%20bar"
        );
        assert_eq!(escape_extra_key("a%b"), "a%25b");
    }
}

//! The emulator's HTTPS server: accept loop, authentication (client certificate, then bearer
//! token), fault injection, authorization, the front proxy for the aggregated group, and routing
//! to discovery and resource handlers. Request order follows kube-apiserver's filter chain
//! (`k8s.io/apiserver/pkg/server/config.go` `DefaultBuildHandlerChain`: authentication →
//! authorization → aggregator/proxy → API handlers).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::aggregator::FrontProxy;
use super::discovery;
use super::handlers::{self, Call, Ctx};
use super::http::{json_response, json_typed, query_pairs, status_response, text, Body, BoxError};
use super::request_info::RequestInfo;
use super::status::StatusError;
use super::tls::user_from_cert;
use crate::faults::{FaultAction, Faults, RequestRecord};
use tekton_retry::api::UserInfo;

/// kube-apiserver's default request body limit (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Everything a request needs.
pub struct Shared {
    pub ctx: Ctx,
    pub faults: Arc<Faults>,
    pub proxy: Arc<FrontProxy>,
    /// `host:port` for `/api` `serverAddressByClientCIDRs`.
    pub server_address: String,
}

/// Accept connections until `shutdown` turns true.
pub async fn run(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, remote)) = accepted else {
            continue;
        };
        // As kube-apiserver's (Go sets TCP_NODELAY on every TCP connection): without it a watch
        // event written while the previous one is unacknowledged waits for the client's delayed
        // ACK, which held the wait for a deleted TaskRun at 85-116 ms instead of ~50 ms.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp))
                    .await;
            let Ok(Ok(stream)) = handshake else { return };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| user_from_cert(c));
            let svc = hyper::service::service_fn(move |req| {
                handle(shared.clone(), peer.clone(), remote, req)
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

fn authenticate(
    shared: &Shared,
    peer: Option<UserInfo>,
    headers: &http::HeaderMap,
) -> Result<Option<UserInfo>, StatusError> {
    if let Some(u) = peer {
        return Ok(Some(u));
    }
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(v) => {
            let token = v.strip_prefix("Bearer ").map(str::trim).unwrap_or("");
            match shared.ctx.policy.authenticate_token(token) {
                Some(u) => Ok(Some(u)),
                None => Err(StatusError::unauthorized()),
            }
        }
        None => Ok(None),
    }
}

/// Every request gets an audit ID (the client's `Audit-ID` or a new one), answered in the `Audit-Id`
/// response header and forwarded to aggregated servers (`k8s.io/apiserver/pkg/endpoints/filters`
/// `WithAuditInit`, `util/proxy` `NewRequestForProxy`).
async fn handle(
    shared: Arc<Shared>,
    peer: Option<UserInfo>,
    remote: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let audit_id = req
        .headers()
        .get("audit-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let Ok(v) = http::HeaderValue::from_str(&audit_id) else {
        return handle_inner(shared, peer, remote, req).await;
    };
    req.headers_mut().insert("audit-id", v.clone());
    let mut resp = handle_inner(shared, peer, remote, req).await?;
    resp.headers_mut().insert("audit-id", v);
    Ok(resp)
}

async fn handle_inner(
    shared: Arc<Shared>,
    peer: Option<UserInfo>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let path = req.uri().path().to_string();
    let query = query_pairs(req.uri().query());
    if req.method() == Method::GET && matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return Ok(text(200, "ok"));
    }
    let user = match authenticate(&shared, peer, req.headers()) {
        Ok(Some(u)) => u,
        Ok(None) if req.method() == Method::GET && path == "/version" => {
            UserInfo::new("system:anonymous", &["system:unauthenticated"])
        }
        Ok(None) | Err(_) => return Ok(status_response(&StatusError::unauthorized())),
    };
    let user = match impersonate(&shared, user, req.headers()) {
        Ok(u) => u,
        Err(e) => return Ok(status_response(&e)),
    };
    let info = RequestInfo::parse(req.method(), &path, &query);
    let record = RequestRecord {
        verb: info.verb.clone(),
        group: info.group.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        user: user.username.clone(),
    };
    for action in shared.faults.on_request(record) {
        match action {
            FaultAction::Latency(d) => tokio::time::sleep(d).await,
            FaultAction::Drop => return Err("connection dropped by fault injection".into()),
            FaultAction::Timeout(d) => {
                tokio::time::sleep(d).await;
                return Ok(status_response(&StatusError::timeout(
                    "the server was unable to return a response in the time allotted, but may still be processing the request",
                )));
            }
            FaultAction::Error { code, retry_after } => {
                return Ok(status_response(&injected(&info, code, retry_after)));
            }
        }
    }
    let attrs = info.attributes();
    if !shared.ctx.policy.authorize(&user, &attrs).allowed {
        let why = attrs.forbidden_message(&user.username);
        let e = if info.resource_request {
            StatusError::forbidden(&info.group, &info.resource, &info.name, &why)
        } else {
            StatusError::forbidden("", "", "", &why)
        };
        return Ok(status_response(&e));
    }
    if shared.proxy.owns(&path) {
        return Ok(shared.proxy.forward(req, &user, remote).await);
    }
    let accept = header_or(&req, header::ACCEPT, "");
    let content_type = header_or(&req, header::CONTENT_TYPE, "application/json");
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return Ok(status_response(&e)),
    };
    if !info.resource_request {
        return Ok(non_resource(&shared, &path, &accept));
    }
    let call = Call {
        info: &info,
        query: &query,
        accept: &accept,
        content_type: &content_type,
        body: &body,
        user: &user,
    };
    Ok(handlers::serve(&shared.ctx, &call))
}

/// Impersonation (`k8s.io/apiserver/pkg/endpoints/filters/impersonation.go`): `Impersonate-User`,
/// `Impersonate-Group`, `Impersonate-Uid`, `Impersonate-Extra-<key>`, each authorized as verb
/// `impersonate` on `users`, `groups`, `uids` or `userextras/<key>`.
fn impersonate(
    shared: &Shared,
    user: UserInfo,
    headers: &http::HeaderMap,
) -> Result<UserInfo, StatusError> {
    let get_all = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let names = get_all("impersonate-user");
    let groups = get_all("impersonate-group");
    let uid = get_all("impersonate-uid");
    let extras: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("impersonate-extra-")?;
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .into_owned();
            Some((key, v.to_str().ok()?.to_string()))
        })
        .collect();
    if names.is_empty() {
        if !groups.is_empty() || !uid.is_empty() || !extras.is_empty() {
            return Err(StatusError::internal(
                "requested [Impersonate-Group Impersonate-Extra-* Impersonate-Uid] without impersonating a user",
            ));
        }
        return Ok(user);
    }
    let check = |group: &str, resource: &str, sub: &str, name: &str| -> Result<(), StatusError> {
        let attrs =
            crate::policy::Attributes::resource("impersonate", group, resource, sub, "", name);
        if shared.ctx.policy.authorize(&user, &attrs).allowed {
            Ok(())
        } else {
            let why = attrs.forbidden_message(&user.username);
            Err(StatusError::forbidden(group, resource, name, &why))
        }
    };
    let name = names[0].clone();
    check("", "users", "", &name)?;
    for g in &groups {
        check("", "groups", "", g)?;
    }
    if let Some(u) = uid.first() {
        check("authentication.k8s.io", "uids", "", u)?;
    }
    let mut out = UserInfo::new(name, &[]);
    out.groups = groups;
    out.uid = uid.first().cloned();
    for (k, v) in extras {
        check("authentication.k8s.io", "userextras", &k, &v)?;
        out.extra.entry(k).or_default().push(v);
    }
    if out.username != "system:anonymous" && !out.in_group(crate::policy::AUTHENTICATED) {
        out.groups.push(crate::policy::AUTHENTICATED.into());
    }
    Ok(out)
}

fn injected(info: &RequestInfo, code: u16, retry_after: Option<u32>) -> StatusError {
    let mut e = match code {
        409 => StatusError::stale(&info.group, &info.resource, &info.name),
        429 => StatusError::too_many_requests(retry_after.unwrap_or(1)),
        503 => StatusError::service_unavailable("injected fault: service unavailable"),
        504 => StatusError::timeout("injected fault: timeout"),
        500 => StatusError::internal("injected fault: internal error"),
        other => StatusError::new(
            other,
            "InternalError",
            format!("injected fault: HTTP {other}"),
        ),
    };
    if let (Some(s), 503) = (retry_after, code) {
        e.details = Some(serde_json::json!({"retryAfterSeconds": s}));
    }
    e
}

/// The request's `name` header, or `default` when it is absent or not text.
fn header_or(req: &Request<Incoming>, name: header::HeaderName, default: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(default)
        .to_string()
}

async fn read_body(body: Incoming) -> Result<Bytes, StatusError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(StatusError::new(
                413,
                "RequestEntityTooLarge",
                "the server has received a request that is too large",
            ))
        }
        Err(e) => Err(StatusError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

fn non_resource(shared: &Shared, path: &str, accept: &str) -> Response<Body> {
    let agg = shared.proxy.aggregated_group();
    let v2 = discovery::wants_aggregated(accept);
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let found = match parts.as_slice() {
        ["version"] => Some(discovery::version()),
        ["api"] if v2 => {
            return json_typed(
                200,
                &discovery::aggregated(true, agg.as_ref()),
                discovery::AGGREGATED_V2,
            )
        }
        ["api"] => Some(discovery::api_versions(&shared.server_address)),
        ["apis"] if v2 => {
            return json_typed(
                200,
                &discovery::aggregated(false, agg.as_ref()),
                discovery::AGGREGATED_V2,
            )
        }
        ["apis"] => Some(discovery::group_list(agg.as_ref())),
        ["api", v] => discovery::resource_list("", v),
        ["apis", g] => discovery::group(g, agg.as_ref()),
        ["apis", g, v] => discovery::resource_list(g, v),
        ["openapi", "v3"] => Some(discovery::openapi_root()),
        ["openapi", "v3", rest @ ..] => discovery::openapi_group_version(&rest.join("/")),
        _ => None,
    };
    match found {
        Some(v) => json_response(200, &v),
        None => status_response(&StatusError::no_route()),
    }
}

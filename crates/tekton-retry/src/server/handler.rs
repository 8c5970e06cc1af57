//! The request pipeline, in order: audit id → health (no authentication) → authentication (401) →
//! route → authorization for the retry route and `/metrics` (403/500) → handler. The whole
//! pipeline runs under the request timeout (504). Every error is a `metav1.Status`. One log line
//! and one metrics sample per request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use rustls::pki_types::CertificateDer;
use serde_json::Value;

use super::authn::Authenticator;
use super::authz::Authorizer;
use super::health::Health;
use super::metrics::Metrics;
use super::routes::{self, PublicDoc, Route};
use super::{discovery, documents};
use crate::api::ApiError;
use crate::retry::RetryService;

/// Everything a request needs, shared by all connections.
pub struct Shared {
    pub authn: Authenticator,
    pub authz: Authorizer,
    pub retry: Arc<dyn RetryService>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub request_timeout: Duration,
    /// Slots for requests being answered (`--max-requests-inflight`).
    pub in_flight: tokio::sync::Semaphore,
}

/// What the TLS connection tells about its client.
#[derive(Clone, Debug, Default)]
pub struct ConnInfo {
    /// The client certificate chain presented at the handshake (leaf first), empty without one.
    pub peer_certs: Vec<CertificateDer<'static>>,
    /// Whether the connection speaks HTTP/2 (ALPN `h2`).
    pub http2: bool,
}

/// The response type of the server.
pub type Resp = Response<Full<Bytes>>;

#[derive(Default)]
struct Outcome {
    user: Option<String>,
    verb: &'static str,
    route: &'static str,
}

/// Answers one request.
pub async fn handle<B>(shared: Arc<Shared>, conn: Arc<ConnInfo>, req: Request<B>) -> Resp
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let start = Instant::now();
    let _in_flight = shared.metrics.in_flight();
    let audit_id = audit_id(req.headers().get("audit-id"));
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut outcome = Outcome {
        verb: method_verb(&method),
        route: "unknown",
        user: None,
    };
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let result = tokio::time::timeout(
        shared.request_timeout,
        dispatch(&shared, &conn, parts, &mut body, &audit_id, &mut outcome),
    )
    .await;
    let mut resp = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&ApiError::timeout(format!(
            "the request did not complete within {}s; a retry that had started keeps going: check the PipelineRun, or send the request again with spec.preconditions.attempt so that a repeat is refused if it already happened",
            shared.request_timeout.as_secs()
        ))),
    };
    if let Some(unread) = body {
        drain_small_body(unread).await;
    }
    if let Ok(v) = HeaderValue::from_str(&audit_id) {
        resp.headers_mut().insert("audit-id", v);
    }
    let code = resp.status().as_u16();
    let elapsed = start.elapsed();
    shared
        .metrics
        .observe_request(outcome.verb, code, outcome.route, elapsed.as_secs_f64());
    let user = outcome.user.as_deref().unwrap_or("");
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if outcome.route == "health" {
        tracing::debug!(target: "tekton_retry::access", user, verb = %outcome.verb, path, code, latency_ms, audit_id, "request");
    } else {
        tracing::info!(target: "tekton_retry::access", user, verb = %outcome.verb, path, code, latency_ms, audit_id, "request");
    }
    resp
}

/// The verb of a request that is not a retry: the lowercased HTTP method, `other` for methods
/// outside the standard set (so a client cannot grow the metrics' label values).
fn method_verb(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        Method::HEAD => "head",
        Method::OPTIONS => "options",
        _ => "other",
    }
}

/// The caller's `Audit-ID` if it is a sane token, else a new UUID (as kube-apiserver does).
fn audit_id(v: Option<&HeaderValue>) -> String {
    v.and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Most body bytes read (and dropped) from a request answered without reading its body.
pub const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Longest wait for such a body.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads and drops what is left of a request body the answer did not need (a 401 or 403 before a
/// POST body was read), up to [`DRAIN_MAX_BYTES`] within [`DRAIN_TIMEOUT`]. Over HTTP/2 an answer
/// that ends the stream while the client is still sending makes the server reset the stream, and
/// a client such as curl then reports the reset instead of the answer; a small body read to its
/// end first lets the answer through. A larger or slower body is given up (and reset).
async fn drain_small_body<B>(body: B)
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = http_body_util::Limited::new(body, DRAIN_MAX_BYTES);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, http_body_util::BodyExt::collect(limited)).await;
}

async fn dispatch<B>(
    shared: &Shared,
    conn: &ConnInfo,
    parts: http::request::Parts,
    body: &mut Option<B>,
    audit_id: &str,
    outcome: &mut Outcome,
) -> Result<Resp, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let route = Route::parse(parts.uri.path());
    outcome.route = route.label();
    if matches!(route, Route::Retry { .. }) && parts.method == Method::POST {
        outcome.verb = "create";
    } else if parts.method == Method::GET {
        outcome.verb = "get";
    }
    if let Route::Health { kind, check } = &route {
        if !route.allows(&parts.method) {
            return Err(routes::method_not_allowed(&parts.method, &route));
        }
        let (code, text) = shared
            .health
            .respond(*kind, check.as_deref(), parts.uri.query());
        return Ok(text_response(code, text));
    }

    let Some((user, _how)) = shared
        .authn
        .authenticate(&conn.peer_certs, &parts.headers)
        .await
    else {
        return Err(ApiError::unauthorized("Unauthorized"));
    };
    outcome.user = Some(user.username.clone());

    // `filters.WithMaxInFlightLimit` (`staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go`):
    // after authentication, `system:masters` exempt, a 429 with `Retry-After: 1` when full.
    let _slot = if user.in_group(super::authz::SYSTEM_MASTERS) {
        None
    } else {
        match shared.in_flight.try_acquire() {
            Ok(slot) => Some(slot),
            Err(_) => {
                return Err(ApiError::new(
                    crate::api::StatusReason::TooManyRequests,
                    "Too many requests, please try again later: the server is answering as many requests as --max-requests-inflight allows",
                )
                .with_retry_after(1));
            }
        }
    };

    if route == Route::NotFound {
        return Err(ApiError::not_found(
            "the server could not find the requested resource",
        ));
    }
    if let Route::BadName { namespace, name } = &route {
        return Err(ApiError::bad_request(format!(
            "invalid namespace {namespace:?} or PipelineRun name {name:?} in the URL: names are lowercase DNS subdomains"
        )));
    }
    if !route.allows(&parts.method) {
        return Err(routes::method_not_allowed(&parts.method, &route));
    }
    if let Some(attrs) = route.authorization() {
        shared.authz.authorize(&user, &attrs, audit_id).await?;
    }
    match route {
        Route::Public(doc) => Ok(public_document(
            doc,
            parts.headers.get(http::header::ACCEPT),
        )),
        Route::Metrics => {
            let text = shared
                .metrics
                .encode()
                .map_err(|_| ApiError::internal("encoding the metrics failed"))?;
            let mut r = text_response(200, text);
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(r)
        }
        Route::Retry { namespace, name } => {
            let body = body
                .take()
                .ok_or_else(|| ApiError::internal("the request body was already read"))?;
            let (code, object) = routes::retry(
                shared.retry.clone(),
                namespace,
                name,
                &parts,
                body,
                user,
                audit_id.to_string(),
            )
            .await?;
            let value = serde_json::to_value(&object)
                .map_err(|e| ApiError::internal(format!("encoding the answer failed: {e}")))?;
            Ok(json_response(code, &value, "application/json"))
        }
        Route::History { namespace, name } => {
            let value = shared
                .retry
                .history(namespace, name, Some(audit_id.to_string()))
                .await?;
            Ok(json_response(200, &value, "application/json"))
        }
        Route::Health { .. } | Route::BadName { .. } | Route::NotFound => Err(ApiError::not_found(
            "the server could not find the requested resource",
        )),
    }
}

fn public_document(doc: PublicDoc, accept: Option<&HeaderValue>) -> Resp {
    let aggregated =
        doc == PublicDoc::Apis && discovery::wants_aggregated(accept.and_then(|v| v.to_str().ok()));
    let d = documents::get(doc, aggregated);
    let mut r = response(200, d.body.clone(), d.content_type);
    if d.vary_accept {
        r.headers_mut()
            .insert(http::header::VARY, HeaderValue::from_static("Accept"));
    }
    if let Some(etag) = &d.etag {
        r.headers_mut().insert(http::header::ETAG, etag.clone());
    }
    r
}

fn response(code: u16, body: impl Into<Bytes>, content_type: &'static str) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = r.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

fn json_response(code: u16, value: &Value, content_type: &'static str) -> Resp {
    response(
        code,
        serde_json::to_vec(value).unwrap_or_default(),
        content_type,
    )
}

fn text_response(code: u16, text: String) -> Resp {
    response(code, text.into_bytes(), "text/plain; charset=utf-8")
}

/// The `metav1.Status` answer for an error, with `Retry-After` when it says when to come back.
pub fn error_response(e: &ApiError) -> Resp {
    let mut r = response(e.code(), e.to_body(), "application/json");
    if let Some(s) = e.retry_after_seconds {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

#[cfg(test)]
mod tests;

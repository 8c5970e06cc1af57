//! The response body type and small helpers shared by the emulator's handlers.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::Value;

use super::status::StatusError;

/// Any error a body or handler can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body the emulator sends (buffered JSON, a watch stream, a proxied body).
pub type Body = BoxBody<Bytes, BoxError>;

/// A buffered body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A JSON response.
pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    json_typed(code, v, "application/json")
}

/// A JSON response with a given content type.
pub fn json_typed(code: u16, v: &Value, content_type: &str) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}

/// A `metav1.Status` error response (with `Retry-After` when the status carries one).
pub fn status_response(e: &StatusError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_value());
    if let Some(s) = e
        .details
        .as_ref()
        .and_then(|d| d.get("retryAfterSeconds"))
        .and_then(Value::as_u64)
    {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// A plain-text response.
pub fn text(code: u16, t: &str) -> Response<Body> {
    let mut r = Response::new(full(t.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Decoded query parameters.
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

/// The first value of query parameter `k`.
pub fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

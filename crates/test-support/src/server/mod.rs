//! Shared pieces of the server tests, one concern a module: a fake Kubernetes API at the HTTP
//! boundary ([`fake_kube`]), a recording fake engine ([`recording_engine`]), the server started
//! in-process over real TLS ([`harness`]), `tekton-retry serve` as a child process
//! ([`serve_process`]) and a TLS client ([`tls_client`]).

pub mod fake_kube;
pub mod harness;
pub mod recording_engine;
pub mod serve_process;
pub mod tls_client;

pub use fake_kube::*;
pub use harness::*;
pub use recording_engine::*;
pub use serve_process::*;
pub use tls_client::*;

use std::time::Duration;

use tekton_retry::api::RetrySpec;
use tekton_retry::retry::RetryRequest;

/// The header `name` as text (`None` if absent or not visible ASCII).
pub fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A request split into its head and its body read as JSON (`null` when the body is empty, not
/// JSON or cannot be read): what the in-process fake APIs answer from.
pub async fn json_request<B>(req: http::Request<B>) -> (http::request::Parts, serde_json::Value)
where
    B: http_body::Body<Data = bytes::Bytes>,
{
    use http_body_util::BodyExt as _;
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts, body)
}

/// Path of the retry subresource of `ns/name`.
pub fn retry_path(ns: &str, name: &str) -> String {
    format!("/apis/retry.tekton.dev/v1alpha1/namespaces/{ns}/pipelineruns/{name}/retry")
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

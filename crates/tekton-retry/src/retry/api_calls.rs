//! `tekton_retry_kube_api_requests_total{method,result}`: the Kubernetes API requests the retry
//! engine made ([`super::cluster::Cluster`]), one count per request, process-wide.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Labels of one API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiCallLabels {
    /// HTTP method: `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: String,
    /// `ok` (2xx), `client_error` (4xx: also the expected 404 of a wait for deletion and the 409 of
    /// a lost race), `server_error` (5xx or no answer) or `timeout`.
    pub result: &'static str,
}

/// The counter (shared by every engine in the process).
pub fn api_calls() -> &'static Family<ApiCallLabels, Counter> {
    static CALLS: OnceLock<Family<ApiCallLabels, Counter>> = OnceLock::new();
    CALLS.get_or_init(Family::default)
}

/// Counts one request.
pub(crate) fn count(method: &http::Method, result: &'static str) {
    api_calls()
        .get_or_create(&ApiCallLabels {
            method: method.as_str().to_owned(),
            result,
        })
        .inc();
}

/// Registers the counter under the server's `tekton_retry` prefix.
pub fn register(registry: &mut prometheus_client::registry::Registry) {
    registry.register(
        "kube_api_requests",
        "Kubernetes API requests made by the retry engine, by method and result",
        api_calls().clone(),
    );
}

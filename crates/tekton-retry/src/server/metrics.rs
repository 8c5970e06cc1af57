//! Prometheus metrics (prometheus-client). One [`Metrics`] registry is shared by the whole process:
//! the server registers its HTTP metrics here, and other parts (engine, recorder) register theirs
//! with [`Metrics::register`] so that `/metrics` shows everything.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};

// Label values are static strings and numbers: a request costs no allocation here.

/// Labels of a served request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Kubernetes-style verb: `create`, `get`, … (lowercased HTTP method for non-resource paths,
    /// `other` for non-standard methods).
    pub verb: &'static str,
    /// HTTP status code.
    pub code: u16,
    /// Route template: `retry`, `discovery`, `openapi`, `health`, `metrics`, `unknown`.
    pub route: &'static str,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub verb: &'static str,
    pub route: &'static str,
}

/// Labels of the authorization cache counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit` or `miss`.
    pub result: &'static str,
}

/// The process-wide registry and the server's own metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    authz_cache: Family<CacheLabels, Counter>,
    in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the server's metrics under the prefix `tekton_retry`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tekton_retry");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let authz_cache = Family::<CacheLabels, Counter>::default();
        let in_flight = Gauge::default();
        registry.register(
            "apiserver_requests",
            "Requests served, by verb, HTTP code and route",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Time from request received to response headers sent, by verb and route",
            latency.clone(),
        );
        registry.register(
            "authorization_cache",
            "SubjectAccessReview decision cache lookups, by result (hit or miss)",
            authz_cache.clone(),
        );
        registry.register(
            "apiserver_requests_in_flight",
            "Requests being served now",
            in_flight.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            authz_cache,
            in_flight,
        }
    }

    /// Adds a metric (name without the `tekton_retry_` prefix) to the shared registry.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, metric);
        }
    }

    /// Runs `f` with the registry (e.g. to create a sub-registry).
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> Option<R> {
        self.registry.lock().ok().map(|mut r| f(&mut r))
    }

    /// The Prometheus text exposition of everything registered.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        let registry = self.registry.lock().map_err(|_| std::fmt::Error)?;
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
        Ok(out)
    }

    pub(crate) fn observe_request(
        &self,
        verb: &'static str,
        code: u16,
        route: &'static str,
        seconds: f64,
    ) {
        self.requests
            .get_or_create(&RequestLabels { verb, code, route })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { verb, route })
            .observe(seconds);
    }

    pub(crate) fn authz_cache(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.authz_cache
            .get_or_create(&CacheLabels { result })
            .inc();
    }

    /// A guard counting one in-flight request until dropped.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }
}

/// Decrements the in-flight gauge when dropped.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_server_and_registered_metrics() {
        let m = Metrics::new();
        m.observe_request("create", 201, "retry", 0.01);
        m.authz_cache(true);
        let extra = Counter::<u64>::default();
        m.register("retries_started", "Retries started", extra.clone());
        extra.inc();
        let _g = m.in_flight();
        let text = m.encode().expect("encode");
        assert!(
            text.contains(
                r#"tekton_retry_apiserver_requests_total{verb="create",code="201",route="retry"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"tekton_retry_authorization_cache_total{result="hit"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("tekton_retry_retries_started_total 1"),
            "{text}"
        );
        assert!(
            text.contains("tekton_retry_apiserver_requests_in_flight 1"),
            "{text}"
        );
    }
}

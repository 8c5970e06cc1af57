//! The retry metrics, registered into the server's Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::retry::engine::EngineObserver;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub namespace: String,
    /// `started`, `succeeded`, `failed`, `cancelled`, `timeout`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Counters and histograms of retries. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct RetryMetrics {
    /// `tekton_retry_retries_total{namespace,outcome}`
    pub retries: Family<OutcomeLabels, Counter>,
    /// `tekton_retry_refusals_total{reason}`
    pub refusals: Family<ReasonLabels, Counter>,
    /// `tekton_retry_attempt_duration_seconds`: from the retry to the run's new completion.
    pub attempt_duration: Histogram,
    /// `tekton_retry_time_to_recovery_seconds`: from the original failure to the successful end.
    pub time_to_recovery: Histogram,
    /// `tekton_retry_request_duration_seconds`: how long the engine took to answer a retry request.
    pub request_duration: Histogram,
    /// `tekton_retry_recorder_events_total`: watch events the recorder handled (retried runs and
    /// attempt records only: runs never retried are not watched).
    pub recorder_events: Counter,
}

impl Default for RetryMetrics {
    fn default() -> Self {
        RetryMetrics {
            retries: Family::default(),
            refusals: Family::default(),
            attempt_duration: Histogram::new(exponential_buckets(1.0, 2.0, 16)),
            time_to_recovery: Histogram::new(exponential_buckets(10.0, 2.0, 16)),
            request_duration: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            recorder_events: Counter::default(),
        }
    }
}

impl RetryMetrics {
    /// Registers every metric into a registry made with the prefix `tekton_retry` (as the
    /// server's is), giving the documented names, with the engine's Kubernetes API request
    /// counters.
    pub fn register(&self, registry: &mut Registry) {
        crate::retry::api_calls::register(registry);
        registry.register(
            "retries",
            "Retries started and how their attempts ended, by namespace and outcome",
            self.retries.clone(),
        );
        registry.register(
            "refusals",
            "Retry requests refused, by reason",
            self.refusals.clone(),
        );
        registry.register(
            "attempt_duration_seconds",
            "Duration of retried attempts, from the retry to the run's completion",
            self.attempt_duration.clone(),
        );
        registry.register(
            "time_to_recovery_seconds",
            "Time from a run's original failure to the end of the successful retry",
            self.time_to_recovery.clone(),
        );
        registry.register(
            "recorder_events",
            "Watch events the recorder handled (retried runs and their attempt records)",
            self.recorder_events.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time the retry engine took to answer a retry request (dry runs included)",
            self.request_duration.clone(),
        );
    }

    pub fn outcome(&self, namespace: &str, outcome: &str) {
        self.retries
            .get_or_create(&OutcomeLabels {
                namespace: namespace.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }
}

impl EngineObserver for RetryMetrics {
    fn refused(&self, reason: &str) {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }
    fn started(&self, namespace: &str, _attempt: u32) {
        self.outcome(namespace, "started");
    }
    fn request_finished(&self, seconds: f64) {
        self.request_duration.observe(seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_documented_ones() {
        let m = RetryMetrics::default();
        let mut r = Registry::with_prefix("tekton_retry");
        m.register(&mut r);
        m.refused("Succeeded");
        m.started("demo", 2);
        m.attempt_duration.observe(3.0);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).expect("encode");
        assert!(
            out.contains("tekton_retry_refusals_total{reason=\"Succeeded\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("tekton_retry_retries_total{namespace=\"demo\",outcome=\"started\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("tekton_retry_attempt_duration_seconds_count 1"),
            "{out}"
        );
        assert!(
            out.contains("tekton_retry_time_to_recovery_seconds_count 0"),
            "{out}"
        );
    }
}

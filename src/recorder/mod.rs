//! The recorder: a watch on retried PipelineRuns (DESIGN §3–§4, issue 5). When an attempt ends it
//! writes `end` and `outcome` into `retry.tekton.dev/last-retry` exactly once (a conditional write:
//! replicas may race, one wins), emits `RetrySucceeded`/`RetryFailed` and the retry metrics; and it
//! completes claims that were interrupted before the reset (roll forward).

pub mod decide;
pub mod metrics;
pub mod slim;

use crate::tekton::{parse_time as parse, str_at};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{info, warn};

pub use decide::{decide, Action};
pub use metrics::RetryMetrics;

use crate::api::{annotations, UserInfo};
use crate::retry::{Engine, RetryRequest};

/// Tunables of the recorder.
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    /// A claim older than this, still not reset, is rolled forward.
    pub grace: Duration,
    /// How often claimed runs are re-examined (a stuck claim produces no watch event).
    pub resync: Duration,
    /// Roll-forward attempts per claim before giving up with a Warning Event.
    pub max_roll_forward: u32,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            grace: Duration::from_secs(60),
            resync: Duration::from_secs(15),
            max_roll_forward: 5,
        }
    }
}

/// The identity the recorder acts as in records and Events.
pub const RECORDER_USER: &str = "system:serviceaccount:tekton-retry:recorder";

/// Handles one run at a time; shared by the watch loop and the resync tick.
pub struct Recorder {
    engine: Engine,
    metrics: RetryMetrics,
    opts: RecorderOptions,
    tries: Mutex<HashMap<String, u32>>,
}

fn seconds_between(a: &str, b: &str) -> Option<f64> {
    Some(
        parse(b)?
            .signed_duration_since(parse(a)?)
            .num_milliseconds() as f64
            / 1000.0,
    )
}

impl Recorder {
    pub fn new(engine: Engine, metrics: RetryMetrics, opts: RecorderOptions) -> Arc<Self> {
        Arc::new(Recorder {
            engine,
            metrics,
            opts,
            tries: Mutex::new(HashMap::new()),
        })
    }

    /// Examines one run and acts on it.
    pub async fn handle(&self, run: &Value) {
        let ns = str_at(run, "/metadata/namespace")
            .unwrap_or_default()
            .to_string();
        let name = str_at(run, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        match decide(run, Utc::now(), self.opts.grace) {
            Action::Nothing => {}
            Action::RecordOutcome {
                record,
                end,
                outcome,
            } => {
                let (attempt, end2, outcome2) = (record.attempt, end.clone(), outcome.clone());
                let wrote = self
                    .engine
                    .executor()
                    .update_last_retry(&ns, &name, None, move |r| {
                        if r.attempt == attempt && r.end.is_none() {
                            r.end = Some(end2.clone());
                            r.outcome = Some(outcome2.clone());
                            true
                        } else {
                            false
                        }
                    })
                    .await;
                match wrote {
                    Ok(Some(r)) => self.recorded(&ns, run, &r, &end, &outcome).await,
                    Ok(None) => {} // another replica recorded it
                    Err(e) => warn!(%ns, %name, error = %e, "could not record the retry outcome"),
                }
            }
            Action::RollForward { record } => {
                let key = format!(
                    "{}/{}",
                    str_at(run, "/metadata/uid").unwrap_or_default(),
                    record.attempt
                );
                let tries = {
                    let mut t = self.tries.lock().await;
                    let n = t.entry(key.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                if tries > self.opts.max_roll_forward {
                    if tries == self.opts.max_roll_forward + 1 {
                        let msg = format!(
                            "attempt {} (started by {} at {}) was interrupted and could not be completed after {} tries; \
                             check the server's logs, then run the retry again (`kubectl retry pr {name} -n {ns}`), \
                             which completes it",
                            record.attempt, record.by, record.start, self.opts.max_roll_forward
                        );
                        self.engine
                            .event(&ns, run, "Warning", "RetryStalled", &msg, None)
                            .await;
                    }
                    return;
                }
                info!(%ns, %name, attempt = record.attempt, tries, "rolling forward an interrupted retry");
                let req = RetryRequest {
                    namespace: ns.clone(),
                    name: name.clone(),
                    spec: Default::default(),
                    dry_run: false,
                    user: UserInfo::new(RECORDER_USER, &[]),
                    audit_id: None,
                };
                match self.engine.retry(req).await {
                    Ok(_) => {
                        self.tries.lock().await.remove(&key);
                    }
                    Err(e) => warn!(%ns, %name, error = %e, "roll-forward failed; will try again"),
                }
            }
        }
    }

    async fn recorded(
        &self,
        ns: &str,
        run: &Value,
        record: &crate::api::LastRetry,
        end: &str,
        outcome: &str,
    ) {
        let run_name = str_at(run, "/metadata/name").unwrap_or_default();
        self.engine
            .executor()
            .record_history_outcome(ns, run_name, record.attempt, end, outcome)
            .await;
        let duration = seconds_between(&record.start, end);
        if let Some(d) = duration {
            self.metrics.attempt_duration.observe(d.max(0.0));
        }
        let succeeded = outcome == "Succeeded";
        let label = match outcome {
            "Succeeded" | "Completed" => "succeeded",
            "Cancelled" | "CancelledRunFinally" | "StoppedRunFinally" => "cancelled",
            "PipelineRunTimeout" => "timeout",
            _ => "failed",
        };
        self.metrics.outcome(ns, label);
        let original_failure = run
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(annotations::ORIGINAL_COMPLETION_TIME))
            .and_then(Value::as_str)
            .map(str::to_string);
        let recovery = if succeeded {
            original_failure
                .as_deref()
                .and_then(|o| seconds_between(o, end))
        } else {
            None
        };
        if let Some(r) = recovery {
            self.metrics.time_to_recovery.observe(r.max(0.0));
        }
        let mut msg = format!(
            "attempt {} (started by {}) ended {outcome}",
            record.attempt, record.by
        );
        if let Some(d) = duration {
            msg.push_str(&format!(" after {d:.0}s"));
        }
        if let Some(r) = recovery {
            msg.push_str(&format!("; recovered {r:.0}s after the original failure"));
        }
        let (kind, reason) = if succeeded {
            ("Normal", "RetrySucceeded")
        } else {
            ("Warning", "RetryFailed")
        };
        self.engine.event(ns, run, kind, reason, &msg, None).await;
        info!(%ns, name = str_at(run, "/metadata/name").unwrap_or_default(), attempt = record.attempt, %outcome, "retry outcome recorded");
    }

    /// Watches PipelineRuns in all namespaces until the task is dropped.
    pub async fn run(self: Arc<Self>, client: kube::Client) {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("tekton.dev", "v1", "PipelineRun"),
            "pipelineruns",
        );
        let api: Api<DynamicObject> = Api::all_with(client, &ar);
        let writer = reflector::store::Writer::new(ar.clone());
        let reader = writer.as_reader();
        let stream = reflector(
            writer,
            watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(slim::slim),
        )
        .applied_objects();
        let mut stream = std::pin::pin!(stream);
        let mut tick = tokio::time::interval(self.opts.resync);
        loop {
            tokio::select! {
                ev = stream.next() => match ev {
                    Some(Ok(obj)) => {
                        if let Ok(v) = serde_json::to_value(&obj) {
                            self.handle(&v).await;
                        }
                    }
                    Some(Err(e)) => warn!(error = %e, "pipelinerun watch failed; retrying"),
                    None => return,
                },
                _ = tick.tick() => {
                    for obj in reader.state() {
                        let claimed = obj.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(annotations::LAST_RETRY));
                        if claimed {
                            if let Ok(v) = serde_json::to_value(obj.as_ref()) {
                                self.handle(&v).await;
                            }
                        }
                    }
                }
            }
        }
    }
}

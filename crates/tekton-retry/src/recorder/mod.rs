//! The recorder: watches retried PipelineRuns and their attempt records. When an attempt ends it
//! writes `end` and `outcome` into the record exactly once (a fenced write: replicas may race, one
//! wins), mirrors it onto the run, emits `RetrySucceeded`/`RetryFailed` and the retry metrics; it
//! completes claims that were interrupted (roll forward), writes the run's mirror again when Tekton's
//! `syncMetadata` or a user changed it, removes `chains.tekton.dev/*` again while an attempt runs,
//! and deletes the records of runs that are gone.
//!
//! It acts only on runs that have a record (keyed by uid, in the server's namespace): a run whose
//! annotations claim a retry that the server never recorded is left alone.

pub mod decide;
pub mod slim;

use crate::tekton::{parse_time as parse, ObjectView};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

pub use crate::retry::metrics::RetryMetrics;
pub use decide::{decide, Action};

use crate::api::{labels, UserInfo};
use crate::retry::cluster::{ClusterError, PIPELINERUNS, RUN};
use crate::retry::record::store::{self as record_store, Stored};
use crate::retry::record::{mirror, AttemptRecord, Phase};
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
    /// Runs (uid) a spawned roll-forward or repair is working on: one at a time per run.
    busy: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Takes the run `uid` for a spawned task; released when dropped.
struct Busy {
    set: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    uid: String,
}

impl Busy {
    fn take(
        set: &Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
        uid: &str,
    ) -> Option<Busy> {
        let mut s = set.lock().ok()?;
        s.insert(uid.to_string()).then(|| Busy {
            set: set.clone(),
            uid: uid.to_string(),
        })
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.uid);
        }
    }
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
            busy: Arc::default(),
        })
    }

    /// Examines one run with its record and acts on it.
    pub async fn handle(self: &Arc<Self>, run: &Value, record: &AttemptRecord) {
        let (ns, name) = (record.namespace.as_str(), record.name.as_str());
        match decide(run, record, Utc::now(), self.opts.grace) {
            Action::Nothing => {}
            Action::RecordOutcome { .. } => {
                // The watch caches of runs and records move apart: decide again on the run as it
                // is now, so a cached copy of the old failure is never taken for this attempt's end.
                let fresh = match self.read_run(record).await {
                    Ok(v) => v,
                    Err(e) => {
                        debug!(%ns, %name, error = %e, "could not re-read the run; next event");
                        return;
                    }
                };
                let Action::RecordOutcome { end, outcome } =
                    decide(&fresh, record, Utc::now(), self.opts.grace)
                else {
                    return;
                };
                let attempt = record.retry.attempt;
                let (end2, outcome2) = (end.clone(), outcome.clone());
                let wrote = self
                    .engine
                    .store()
                    .update(&record.uid, None, move |r| {
                        if r.retry.attempt == attempt && r.retry.end.is_none() {
                            r.retry.end = Some(end2.clone());
                            r.retry.outcome = Some(outcome2.clone());
                            r.retry.phase = Some(Phase::Ended);
                            true
                        } else {
                            false
                        }
                    })
                    .await;
                match wrote {
                    Ok(Some(s)) => self.recorded(run, &s.record, &end, &outcome).await,
                    Ok(None) => {} // another replica recorded it
                    Err(e) => warn!(%ns, %name, error = %e, "could not record the retry outcome"),
                }
            }
            // Both can take seconds: off the watch loop, so other runs' outcomes do not wait.
            Action::RollForward => {
                let Some(busy) = Busy::take(&self.busy, &record.uid) else {
                    return;
                };
                let (me, run, record) = (self.clone(), run.clone(), record.clone());
                tokio::spawn(async move {
                    me.roll_forward(&run, &record).await;
                    drop(busy);
                });
            }
            Action::Repair => {
                let Some(busy) = Busy::take(&self.busy, &record.uid) else {
                    return;
                };
                let (engine, record) = (self.engine.clone(), record.clone());
                tokio::spawn(async move {
                    let _busy = busy;
                    let (ns, name) = (&record.namespace, &record.name);
                    match engine.repair(ns, name, &record.uid).await {
                        Ok(true) => {
                            info!(%ns, %name, attempt = record.retry.attempt, "reset again after a stale write")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            warn!(%ns, %name, error = %e, "could not reset again after a stale write; next event")
                        }
                    }
                });
            }
            Action::RemoveAnnotations => {
                if let Some(patch) = mirror::removal_patch(run, record) {
                    match self
                        .engine
                        .executor()
                        .cluster()
                        .merge_patch(RUN, (ns, name), patch, None)
                        .await
                    {
                        Ok(_) => {
                            info!(%ns, %name, "removed annotations of other controllers again")
                        }
                        Err(e) => {
                            debug!(%ns, %name, error = %e, "annotation removal lost a race; next event")
                        }
                    }
                }
            }
            Action::ReassertMirror => {
                // Write what the record says now, fenced by the run as seen: a run changed since
                // is looked at again on its next event.
                let fresh = match self.engine.store().get(&record.uid, None).await {
                    Ok(Some(s)) => s.record,
                    Ok(None) => return,
                    Err(e) => {
                        warn!(%ns, %name, error = %e, "could not read the attempt record");
                        return;
                    }
                };
                if mirror::matches(run, &fresh) {
                    return;
                }
                let rv = ObjectView::new(run).resource_version();
                match self
                    .engine
                    .executor()
                    .cluster()
                    .merge_patch(RUN, (ns, name), mirror::patch(&fresh, rv), None)
                    .await
                {
                    Ok(_) => {
                        info!(%ns, %name, attempt = fresh.retry.attempt, "wrote the run's retry annotations again")
                    }
                    Err(e) => {
                        debug!(%ns, %name, error = %e, "mirror write lost a race; next event")
                    }
                }
            }
        }
    }

    async fn roll_forward(&self, run: &Value, record: &AttemptRecord) {
        let (ns, name) = (record.namespace.as_str(), record.name.as_str());
        let key = format!("{}/{}", record.uid, record.retry.attempt);
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
                    record.retry.attempt, record.retry.by, record.retry.start, self.opts.max_roll_forward
                );
                self.engine
                    .event(ns, run, "Warning", "RetryStalled", &msg, None)
                    .await;
            }
            return;
        }
        info!(%ns, %name, attempt = record.retry.attempt, tries, "rolling forward an interrupted retry");
        let req = RetryRequest {
            namespace: ns.to_string(),
            name: name.to_string(),
            spec: crate::api::RetrySpec {
                preconditions: Some(crate::api::Preconditions {
                    uid: Some(record.uid.clone()),
                    attempt: None,
                }),
                ..Default::default()
            },
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

    async fn recorded(&self, run: &Value, record: &AttemptRecord, end: &str, outcome: &str) {
        let (ns, name) = (record.namespace.as_str(), record.name.as_str());
        if let Err(e) = self.engine.executor().write_mirror(record, None).await {
            debug!(%ns, %name, error = %e, "mirror of the outcome deferred to the next event");
        }
        if let Err(e) = self.engine.store().index(record, None).await {
            warn!(%ns, %name, error = %e, "could not record the outcome in the attempt history");
        }
        let duration = seconds_between(&record.retry.start, end);
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
        let recovery = if succeeded {
            record
                .original
                .completion
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
            record.retry.attempt, record.retry.by
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
        info!(%ns, %name, attempt = record.retry.attempt, %outcome, "retry outcome recorded");
    }

    /// The record's run as it is now (whoever holds its name).
    async fn read_run(&self, record: &AttemptRecord) -> Result<Value, ClusterError> {
        let (ns, name) = (record.namespace.as_str(), record.name.as_str());
        let cluster = self.engine.executor().cluster();
        cluster.get(PIPELINERUNS, ns, name, None).await
    }

    /// Deletes the record of a run that no longer exists (records in the server's namespace
    /// cannot be owned by a run in another, so the garbage collector does not do it).
    async fn forget_if_gone(&self, record: &AttemptRecord) {
        let (ns, name) = (record.namespace.as_str(), record.name.as_str());
        let gone = match self.read_run(record).await {
            Ok(run) => !ObjectView::new(&run).has_uid(&record.uid),
            Err(e) if e.is_not_found() => true,
            Err(_) => false,
        };
        if gone {
            match self.engine.store().forget(&record.uid).await {
                Ok(()) => {
                    info!(%ns, %name, uid = %record.uid, "deleted the attempt record of a run that is gone")
                }
                Err(e) => {
                    warn!(%ns, %name, error = %e, "could not delete the record of a run that is gone")
                }
            }
        }
    }

    /// Watches the runs labelled as retried (server-side selected) and the records in the server's
    /// namespace until the task is dropped.
    pub async fn run(self: Arc<Self>, client: kube::Client) {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("tekton.dev", "v1", "PipelineRun"),
            "pipelineruns",
        );
        let runs_api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let run_writer = reflector::store::Writer::new(ar.clone());
        let runs = run_writer.as_reader();
        let run_events = reflector(
            run_writer,
            watcher(runs_api, watcher::Config::default().labels(labels::RETRIED))
                .default_backoff()
                .modify(slim::slim),
        )
        .applied_objects();

        let records_api: Api<ConfigMap> = Api::namespaced(client, self.engine.store().namespace());
        let record_writer = reflector::store::Writer::default();
        let records = record_writer.as_reader();
        let record_events = reflector(
            record_writer,
            watcher(
                records_api,
                watcher::Config::default().labels(record_store::RECORD_SELECTOR),
            )
            .default_backoff(),
        )
        .applied_objects();

        let mut run_events = std::pin::pin!(run_events);
        let mut record_events = std::pin::pin!(record_events);
        let mut tick = tokio::time::interval(self.opts.resync);
        loop {
            tokio::select! {
                ev = run_events.next() => match ev {
                    Some(Ok(obj)) => {
                        self.metrics.recorder_events.inc();
                        if let Ok(v) = serde_json::to_value(&obj) {
                            if let Some(s) = record_for(&records, self.engine.store().namespace(), &v) {
                                self.handle(&v, &s.record).await;
                            }
                        }
                    }
                    Some(Err(e)) => warn!(error = %e, "pipelinerun watch failed; retrying"),
                    None => return,
                },
                ev = record_events.next() => match ev {
                    Some(Ok(cm)) => {
                        self.metrics.recorder_events.inc();
                        if let Some(s) = parse_record(&cm) {
                            if let Some(v) = run_for(&runs, &s.record) {
                                self.handle(&v, &s.record).await;
                            }
                        }
                    }
                    Some(Err(e)) => warn!(error = %e, "attempt record watch failed; retrying"),
                    None => return,
                },
                _ = tick.tick() => {
                    for cm in records.state() {
                        let Some(s) = parse_record(&cm) else { continue };
                        match run_for(&runs, &s.record) {
                            Some(v) => self.handle(&v, &s.record).await,
                            None => self.forget_if_gone(&s.record).await,
                        }
                    }
                }
            }
        }
    }
}

fn parse_record(cm: &ConfigMap) -> Option<Stored> {
    serde_json::to_value(cm)
        .ok()
        .and_then(|v| record_store::parse(&v))
}

/// The record of a watched run, found by its uid (never by its annotations).
fn record_for(records: &Store<ConfigMap>, namespace: &str, run: &Value) -> Option<Stored> {
    let uid = Some(ObjectView::new(run).uid()).filter(|u| !u.is_empty())?;
    let cm = records.get(&ObjectRef::new(&record_store::record_name(uid)).within(namespace))?;
    parse_record(&cm).filter(|s| s.record.uid == uid)
}

/// The watched run a record is about, if it is the same run (same uid).
fn run_for(runs: &Store<DynamicObject>, record: &AttemptRecord) -> Option<Value> {
    let obj = runs.get(
        &ObjectRef::new_with(
            &record.name,
            ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("tekton.dev", "v1", "PipelineRun"),
                "pipelineruns",
            ),
        )
        .within(&record.namespace),
    )?;
    let v = serde_json::to_value(obj.as_ref()).ok()?;
    ObjectView::new(&v).has_uid(&record.uid).then_some(v)
}

//! The engine behind `POST …/retry`: gathers what the planner needs, plans, claims the attempt and
//! hands it to the executor; completes interrupted attempts (roll forward).

use crate::tekton::{parse_time, str_at};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tracing::{info, warn};

use super::cluster::{
    Cluster, ClusterError, CUSTOMRUNS, EVENTS, PIPELINERUNS, PIPELINES, PVCS, TASKRUNS,
};
use super::executor::{cluster_error, phase, rfc3339, run_ref, Executor, ExecutorOptions};
use super::planner;
use super::records;
use super::{Plan, PlanInput, PlanLimits, RetryRequest, RetryService};
use crate::api::{ApiError, LastRetry, PipelineRunRetry, RetriedTask, RetryStatus};

/// Tunables of the engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub limits: PlanLimits,
    pub executor: ExecutorOptions,
    /// A claim older than this that no request on this server is working on is treated as
    /// interrupted and completed by the next request.
    pub claim_grace: Duration,
    /// Check that workspace PVCs still exist before re-running tasks that use them.
    pub check_pvcs: bool,
    /// Retry requests worked on at once; more wait their turn. Each retry polls the API while
    /// it waits for Tekton, so this bounds the load on kube-apiserver, the connections to it and
    /// the server's memory (issue 8, goal 3).
    pub max_concurrent: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            limits: PlanLimits::default(),
            executor: ExecutorOptions::default(),
            claim_grace: Duration::from_secs(30),
            check_pvcs: true,
            max_concurrent: 32,
        }
    }
}

/// Observes what the engine does (metrics and Events live elsewhere; tests may count).
pub trait EngineObserver: Send + Sync + 'static {
    fn refused(&self, _reason: &str) {}
    fn started(&self, _namespace: &str, _attempt: u32) {}
    /// A retry request (dry run or not) was answered after `seconds`.
    fn request_finished(&self, _seconds: f64) {}
}

struct NoObserver;
impl EngineObserver for NoObserver {}

/// The retry engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: Cluster,
    executor: Executor,
    opts: EngineOptions,
    /// Runs a request on this server is working on (`ns/name`).
    in_flight: Mutex<HashSet<String>>,
    /// Claims (`uid/attempt`) this server started and saw fail: complete them without waiting.
    interrupted: Mutex<HashSet<String>>,
    /// One permit per request worked on at once (`EngineOptions::max_concurrent`).
    permits: tokio::sync::Semaphore,
    observer: Arc<dyn EngineObserver>,
}

struct FlightGuard<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.set.lock() {
            s.remove(&self.key);
        }
    }
}

/// Formats a duration like Go's `time.Duration.String()` (`41m10s`, `1h0m0s`), in whole seconds.
pub fn go_duration(d: Duration) -> String {
    crate::tekton::format_go_duration(Duration::from_secs(d.as_secs()))
}

impl Engine {
    pub fn new(client: kube::Client, opts: EngineOptions) -> Self {
        Self::with_observer(client, opts, Arc::new(NoObserver))
    }

    pub fn with_observer(
        client: kube::Client,
        opts: EngineOptions,
        observer: Arc<dyn EngineObserver>,
    ) -> Self {
        let cluster = Cluster::new(client);
        let executor = Executor::new(cluster.clone(), opts.executor.clone());
        let permits = tokio::sync::Semaphore::new(opts.max_concurrent.max(1));
        Engine {
            inner: Arc::new(Inner {
                cluster,
                executor,
                opts,
                in_flight: Mutex::new(HashSet::new()),
                interrupted: Mutex::new(HashSet::new()),
                permits,
                observer,
            }),
        }
    }

    pub fn executor(&self) -> &Executor {
        &self.inner.executor
    }

    /// Performs one retry request.
    pub async fn retry(&self, req: RetryRequest) -> Result<PipelineRunRetry, ApiError> {
        let began = std::time::Instant::now();
        let result = self.retry_inner(&req).await;
        self.inner
            .observer
            .request_finished(began.elapsed().as_secs_f64());
        if let Err(e) = &result {
            self.inner
                .observer
                .refused(e.refusal.unwrap_or(e.reason.as_str()));
        }
        result.map_err(|e| {
            if e.name.is_none() {
                e.with_name(req.name.clone())
            } else {
                e
            }
        })
    }

    async fn retry_inner(&self, req: &RetryRequest) -> Result<PipelineRunRetry, ApiError> {
        let inner = &self.inner;
        let key = format!("{}/{}", req.namespace, req.name);
        let _guard = {
            let mut set = inner
                .in_flight
                .lock()
                .map_err(|_| ApiError::internal("engine state poisoned"))?;
            if !set.insert(key.clone()) {
                return Err(ApiError::conflict(format!(
                    "another retry of pipelinerun {key} is in progress on this server; wait for it and check the run"
                ))
                .with_refusal("InFlight"));
            }
            FlightGuard {
                set: &inner.in_flight,
                key,
            }
        };
        // Wait for a turn (a request for a run already queued was refused above).
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the engine is shutting down"))?;
        let audit = req.audit_id.as_deref();
        let ns = req.namespace.as_str();
        let name = req.name.as_str();

        for _round in 0..4 {
            let run = inner.executor_get_run(ns, name, audit).await?;
            if let Some(p) = &req.spec.preconditions {
                if let Some(uid) = &p.uid {
                    if str_at(&run, "/metadata/uid") != Some(uid.as_str()) {
                        return Err(ApiError::conflict(format!(
                            "precondition failed: pipelinerun {ns}/{name} has uid {}, not {uid}: it was replaced by a new run",
                            str_at(&run, "/metadata/uid").unwrap_or("?")
                        ))
                        .with_refusal("PreconditionFailed"));
                    }
                }
            }
            // An attempt that was claimed but never finished?
            if let Some(record) = records::last_retry(&run) {
                if record.phase.as_deref() == Some(phase::CLAIMED)
                    && record.attempt == records::current_attempt(&run)
                {
                    return self.roll_forward(req, &run, record).await;
                }
            }

            let (plan, input_run) = self.plan(req, &run).await?;
            if req.dry_run {
                return Ok(response(req, &input_run, &plan, None, true));
            }

            // Step 3: the claim, fenced by the resourceVersion the plan was made from.
            let now = Utc::now();
            let record = LastRetry {
                attempt: plan.attempt,
                start: rfc3339(now),
                end: None,
                outcome: None,
                by: req.user.username.clone(),
                reason: req.spec.reason.clone(),
                tasks: plan.retried.iter().map(|t| t.name.clone()).collect(),
                phase: Some(phase::CLAIMED.to_string()),
                deleted_runs: plan
                    .delete_now
                    .iter()
                    .map(|c| run_ref(&c.kind, &c.name, &c.uid))
                    .collect(),
                deferred_runs: plan
                    .delete_after_spec_clear
                    .iter()
                    .map(|c| run_ref(&c.kind, &c.name, &c.uid))
                    .collect(),
                finally: req.spec.finally,
            };
            let rv = str_at(&input_run, "/metadata/resourceVersion").unwrap_or_default();
            let patch = records::claim_patch(
                &input_run,
                rv,
                &record,
                plan.original_start_time.as_deref(),
                plan.original_completion_time.as_deref(),
                &plan.remove_annotations,
            );
            match inner
                .cluster
                .merge_patch(PIPELINERUNS, ns, name, patch, audit)
                .await
            {
                Ok(claimed) => {
                    info!(%ns, %name, attempt = plan.attempt, by = %record.by, tasks = ?record.tasks, "retry claimed");
                    let run = self.execute(req, &claimed, &record).await?;
                    inner.observer.started(ns, plan.attempt);
                    return Ok(response(req, &run, &plan, Some(&record), false));
                }
                Err(e) if e.is_conflict() => {
                    // Someone wrote the run since we read it: a competing retry, or the controller.
                    let now_run = inner.executor_get_run(ns, name, audit).await?;
                    if records::current_attempt(&now_run) >= plan.attempt {
                        let who = records::last_retry(&now_run);
                        return Err(ApiError::conflict(format!(
                            "attempt {} of pipelinerun {ns}/{name} was already started{}; check the run before retrying again",
                            records::current_attempt(&now_run),
                            who.map(|r| format!(" by {} at {}", r.by, r.start)).unwrap_or_default()
                        ))
                        .with_refusal("AlreadyStarted"));
                    }
                    continue;
                }
                Err(ClusterError::Api {
                    code: 400, message, ..
                }) => {
                    return Err(super::executor::rejected_by_admission(
                        ns, name, "claim", &message,
                    ));
                }
                Err(e) => return Err(cluster_error("claiming the retry", e)),
            }
        }
        Err(ApiError::conflict(format!(
            "pipelinerun {ns}/{name} kept changing while the retry was being claimed; try again"
        )))
    }

    /// Gathers the planner's input and plans.
    async fn plan(&self, req: &RetryRequest, run: &Value) -> Result<(Plan, Value), ApiError> {
        let inner = &self.inner;
        let (ns, name, audit) = (
            req.namespace.as_str(),
            req.name.as_str(),
            req.audit_id.as_deref(),
        );
        let selector = format!("tekton.dev/pipelineRun={name}");
        let mut children = Vec::new();
        for kind in [TASKRUNS, CUSTOMRUNS, PIPELINERUNS] {
            match inner.cluster.list(kind, ns, &selector, audit).await {
                Ok(items) => children.extend(
                    items
                        .into_iter()
                        .filter(|c| str_at(c, "/metadata/name") != Some(name)),
                ),
                // CustomRuns may not be installed; a missing resource means there are none.
                Err(ClusterError::NotFound { .. }) => {}
                Err(e) => return Err(cluster_error("listing the child runs", e)),
            }
        }
        let pipeline = match str_at(run, "/spec/pipelineRef/name") {
            Some(p) => match inner.cluster.get(PIPELINES, ns, p, audit).await {
                Ok(v) => Some(v),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(cluster_error("reading the pipeline", e)),
            },
            None => None,
        };
        let pvcs: Option<BTreeSet<String>> = if inner.opts.check_pvcs {
            match inner.cluster.list(PVCS, ns, "", audit).await {
                Ok(items) => Some(
                    items
                        .iter()
                        .filter_map(|p| str_at(p, "/metadata/name").map(str::to_string))
                        .collect(),
                ),
                Err(e) => {
                    warn!(%ns, error = %e, "cannot list PersistentVolumeClaims; not checking workspace data");
                    None
                }
            }
        } else {
            None
        };
        let input = PlanInput {
            pipeline_run: run,
            children: &children,
            pipeline: pipeline.as_ref(),
            existing_pvcs: pvcs.as_ref(),
            spec: &req.spec,
            now: Utc::now(),
            limits: inner.opts.limits,
        };
        let plan = planner::plan(&input)?;
        Ok((plan, run.clone()))
    }

    /// Steps 4–7 and the final record, for a fresh claim or a roll-forward.
    async fn execute(
        &self,
        req: &RetryRequest,
        claimed: &Value,
        record: &LastRetry,
    ) -> Result<Value, ApiError> {
        let inner = &self.inner;
        let (ns, name, audit) = (
            req.namespace.as_str(),
            req.name.as_str(),
            req.audit_id.as_deref(),
        );
        let uid = str_at(claimed, "/metadata/uid")
            .unwrap_or_default()
            .to_string();
        let key = format!("{uid}/{}", record.attempt);
        let outcome = async {
            let run = inner.executor.complete(ns, claimed, record, audit).await?;
            inner
                .executor
                .update_last_retry(ns, name, audit, |r| {
                    if r.attempt == record.attempt && r.phase.as_deref() == Some(phase::CLAIMED) {
                        r.phase = Some(phase::STARTED.to_string());
                        true
                    } else {
                        false
                    }
                })
                .await?;
            Ok::<Value, ApiError>(run)
        }
        .await;
        match outcome {
            Ok(run) => {
                if let Ok(mut s) = inner.interrupted.lock() {
                    s.remove(&key);
                }
                self.event(
                    ns,
                    &run,
                    "Normal",
                    "RetryStarted",
                    &started_message(record),
                    audit,
                )
                .await;
                Ok(run)
            }
            Err(e) => {
                warn!(%ns, %name, attempt = record.attempt, error = %e, "retry interrupted; the next request completes it");
                if let Ok(mut s) = inner.interrupted.lock() {
                    s.insert(key);
                }
                Err(e)
            }
        }
    }

    async fn roll_forward(
        &self,
        req: &RetryRequest,
        run: &Value,
        record: LastRetry,
    ) -> Result<PipelineRunRetry, ApiError> {
        let inner = &self.inner;
        let (ns, name) = (req.namespace.as_str(), req.name.as_str());
        let uid = str_at(run, "/metadata/uid").unwrap_or_default();
        let known = inner
            .interrupted
            .lock()
            .map(|s| s.contains(&format!("{uid}/{}", record.attempt)))
            .unwrap_or(false);
        let age = parse_time(&record.start).map(|t| Utc::now().signed_duration_since(t));
        let old_enough =
            age.is_some_and(|a| a.to_std().unwrap_or_default() >= inner.opts.claim_grace);
        if !known && !old_enough {
            return Err(ApiError::conflict(format!(
                "attempt {} of pipelinerun {ns}/{name} was started by {} at {} and is still in progress; \
                 if it does not finish, a retry after {}s completes it",
                record.attempt,
                record.by,
                record.start,
                inner.opts.claim_grace.as_secs()
            ))
            .with_refusal("InProgress"));
        }
        if let Some(p) = req.spec.preconditions.as_ref().and_then(|p| p.attempt) {
            if p + 1 != record.attempt {
                return Err(ApiError::conflict(format!(
                    "precondition failed: pipelinerun {ns}/{name} is at attempt {} (started by {} at {}), not {p}",
                    record.attempt, record.by, record.start
                ))
                .with_refusal("PreconditionFailed"));
            }
        }
        let plan = Plan {
            attempt: record.attempt,
            pipeline_run_uid: uid.to_string(),
            retried: record
                .tasks
                .iter()
                .map(|t| RetriedTask {
                    name: t.clone(),
                    ..Default::default()
                })
                .collect(),
            preserved: Vec::new(),
            delete_now: Vec::new(),
            delete_after_spec_clear: Vec::new(),
            clear_spec_status: false,
            remaining_timeout: None,
            original_start_time: records::annotation(
                run,
                crate::api::annotations::ORIGINAL_START_TIME,
            )
            .map(str::to_string),
            original_completion_time: records::annotation(
                run,
                crate::api::annotations::ORIGINAL_COMPLETION_TIME,
            )
            .map(str::to_string),
            remove_annotations: Vec::new(),
            status_message: String::new(),
            dangling_references: Vec::new(),
            planned_at: Utc::now(),
        };
        if req.dry_run {
            let mut resp = response(req, run, &plan, Some(&record), true);
            if let Some(s) = resp.status.as_mut() {
                s.message = Some(format!(
                    "attempt {} was interrupted; a retry completes it",
                    record.attempt
                ));
            }
            return Ok(resp);
        }
        info!(%ns, %name, attempt = record.attempt, "completing an interrupted retry");
        let done = self.execute(req, run, &record).await?;
        let mut resp = response(req, &done, &plan, Some(&record), false);
        if let Some(s) = resp.status.as_mut() {
            s.message = Some(format!(
                "completed attempt {} started by {} at {}, which had been interrupted",
                record.attempt, record.by, record.start
            ));
        }
        Ok(resp)
    }

    /// Records a Kubernetes Event on the run. Best effort: a failure is logged, not returned.
    pub async fn event(
        &self,
        ns: &str,
        run: &Value,
        kind: &str,
        reason: &str,
        message: &str,
        audit: Option<&str>,
    ) {
        let name = str_at(run, "/metadata/name").unwrap_or_default();
        let now = rfc3339(Utc::now());
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": {
                "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": name, "namespace": ns,
                "uid": str_at(run, "/metadata/uid").unwrap_or_default(),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "tekton-retry"},
            "reportingComponent": "tekton-retry",
            "reportingInstance": std::env::var("HOSTNAME").unwrap_or_else(|_| "tekton-retry".into()),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        if let Err(e) = self.inner.cluster.create(EVENTS, ns, ev, audit).await {
            warn!(%ns, %name, %reason, error = %e, "could not record an Event");
        }
    }
}

impl Inner {
    async fn executor_get_run(
        &self,
        ns: &str,
        name: &str,
        audit: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.cluster.get(PIPELINERUNS, ns, name, audit).await.map_err(|e| match e {
            ClusterError::NotFound { .. } => ApiError::not_found(format!(
                "pipelineruns.tekton.dev \"{name}\" not found in namespace \"{ns}\"; check the name with `kubectl get pipelineruns -n {ns}`"
            ))
            .with_refusal("NotFound"),
            other => cluster_error("reading the pipelinerun", other),
        })
    }
}

fn started_message(record: &LastRetry) -> String {
    let mut m = format!(
        "{} started attempt {}: re-running {}",
        record.by,
        record.attempt,
        record.tasks.join(", ")
    );
    if let Some(r) = &record.reason {
        m.push_str(&format!(" (reason: {r})"));
    }
    m
}

fn response(
    req: &RetryRequest,
    run: &Value,
    plan: &Plan,
    record: Option<&LastRetry>,
    dry_run: bool,
) -> PipelineRunRetry {
    let status = RetryStatus {
        attempt: plan.attempt,
        dry_run,
        pipeline_run_uid: str_at(run, "/metadata/uid").unwrap_or_default().to_string(),
        retried_tasks: plan.retried.clone(),
        preserved_tasks: plan.preserved.clone(),
        start_time: record.map(|r| r.start.clone()),
        original_start_time: plan.original_start_time.clone(),
        original_completion_time: plan.original_completion_time.clone(),
        remaining_timeout: plan.remaining_timeout.map(go_duration),
        message: Some(if dry_run {
            format!(
                "dry run: attempt {} would re-run {}",
                plan.attempt,
                plan.retried
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!(
                "attempt {} started: re-running {}",
                plan.attempt,
                plan.retried
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }),
    };
    PipelineRunRetry::response(&req.namespace, &req.name, req.spec.clone(), status)
}

impl RetryService for Engine {
    fn retry(&self, req: RetryRequest) -> BoxFuture<'static, Result<PipelineRunRetry, ApiError>> {
        let engine = self.clone();
        Box::pin(async move { engine.retry(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(41 * 60 + 10)), "41m10s");
        assert_eq!(go_duration(Duration::from_secs(5)), "5s");
    }
}

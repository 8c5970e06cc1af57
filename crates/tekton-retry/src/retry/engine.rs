//! The engine behind `POST …/retry`: gathers what the planner needs, plans, claims the attempt and
//! hands it to the executor; completes interrupted attempts (roll forward).

use crate::tekton::{format_go_duration_secs, parse_time, ObjectView, PipelineRunView};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tracing::{info, warn};

use super::cluster::{Cluster, ClusterError, EVENTS, PIPELINERUNS, PIPELINES, PVCS, TASKS};
use super::executor::{cluster_error, rfc3339, Children, Executor, ExecutorOptions};
use super::plan::Claim;
use super::planner;
use super::record::store::Stored;
use super::record::{AttemptRecord, Phase, RecordStore};
use super::refusal::{GoneTask, Refusal};
use super::{Plan, PlanInput, PlanLimits, RetryRequest, RetryService};
use crate::api::{ApiError, PipelineRunRetry, RetriedTask, RetryStatus};

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
    /// the server's memory.
    pub max_concurrent: usize,
    /// The server's own namespace: where the attempt records are kept.
    pub namespace: String,
    /// Client-side rate limit of the engine's requests to kube-apiserver.
    pub api_rate: super::ratelimit::RateLimit,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            limits: PlanLimits::default(),
            executor: ExecutorOptions::default(),
            claim_grace: Duration::from_secs(30),
            check_pvcs: true,
            max_concurrent: 32,
            namespace: crate::rbac::DEFAULT_NAMESPACE.to_string(),
            api_rate: super::ratelimit::RateLimit::default(),
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

impl Engine {
    pub fn new(client: kube::Client, opts: EngineOptions) -> Self {
        Self::with_observer(client, opts, Arc::new(NoObserver))
    }

    pub fn with_observer(
        client: kube::Client,
        opts: EngineOptions,
        observer: Arc<dyn EngineObserver>,
    ) -> Self {
        let cluster = Cluster::new(client)
            .with_own_namespace(&opts.namespace)
            .with_rate_limit(opts.api_rate);
        let store = RecordStore::new(cluster.clone(), opts.namespace.clone());
        let executor = Executor::new(cluster.clone(), store, opts.executor.clone());
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

    pub fn store(&self) -> &RecordStore {
        self.inner.executor.store()
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
        let _guard = inner.enter(&req.namespace, &req.name)?;
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
            let uid = ObjectView::new(&run).uid().to_string();
            if let Some(want) = req.spec.preconditions.as_ref().and_then(|p| p.uid.as_ref()) {
                if *want != uid {
                    return Err(Refusal::UidMismatch {
                        namespace: ns.to_string(),
                        run: name.to_string(),
                        wanted: want.clone(),
                        actual: uid,
                    }
                    .into());
                }
            }
            // The authoritative record, keyed by the run's uid (never by its annotations).
            let stored = self
                .store()
                .get(&uid, audit)
                .await
                .map_err(|e| cluster_error("reading the attempt record", e))?;
            if let Some(s) = &stored {
                if s.record.phase() == Phase::Claimed {
                    return self.roll_forward(req, &run, s.clone()).await;
                }
            }

            let (plan, children) = self
                .plan(req, &run, stored.as_ref().map(|s| &s.record))
                .await?;
            if req.dry_run {
                return Ok(response(req, &run, &plan, None, true));
            }

            // The claim: the record, fenced by the resourceVersion it was read at (created when
            // there is none). Exactly one of concurrent retries, on any replica, wins.
            let record = plan.record(Claim {
                namespace: ns,
                name,
                by: &req.user.username,
                reason: req.spec.reason.clone(),
                finally: req.spec.finally,
                start: rfc3339(Utc::now()),
            });
            match self.store().put(&record, stored.as_ref(), audit).await {
                Ok(claimed) => {
                    info!(%ns, %name, attempt = plan.attempt, by = %record.retry.by, tasks = ?record.retry.tasks, "retry claimed");
                    // The mirror on the run; the webhook may refuse even a metadata write of a
                    // run that no longer validates: then the claim is taken back.
                    let run = match inner.executor.write_mirror(&record, audit).await {
                        Ok(mirrored) => mirrored,
                        Err(e) => {
                            let answer = match e {
                                ClusterError::Api {
                                    code: 400 | 422,
                                    message,
                                    ..
                                } => super::executor::rejected_by_admission(
                                    ns, name, "claim", &message,
                                )
                                .into(),
                                other => cluster_error("recording the retry on the run", other),
                            };
                            self.release(&claimed, stored.as_ref(), audit).await;
                            return Err(answer);
                        }
                    };
                    let run = self.execute(req, &run, claimed, Some(children)).await?;
                    inner.observer.started(ns, plan.attempt);
                    return Ok(response(req, &run, &plan, Some(&record), false));
                }
                Err(e) if e.is_conflict() => {
                    // Someone claimed since we read the record: a competing retry on any replica.
                    let now = self
                        .store()
                        .get(&uid, audit)
                        .await
                        .map_err(|e| cluster_error("reading the attempt record", e))?;
                    if let Some(now) = now.filter(|n| n.record.retry.attempt >= plan.attempt) {
                        return Err(Refusal::AlreadyStarted {
                            namespace: ns.to_string(),
                            run: name.to_string(),
                            attempt: now.record.retry.attempt,
                            by: now.record.retry.by,
                            start: now.record.retry.start,
                        }
                        .into());
                    }
                    continue;
                }
                Err(e) => return Err(cluster_error("claiming the retry", e)),
            }
        }
        Err(ApiError::conflict(format!(
            "pipelinerun {ns}/{name} kept changing while the retry was being claimed; try again"
        )))
    }

    /// Takes back a claim whose mirror the cluster refused: nothing was deleted yet.
    async fn release(&self, claimed: &Stored, previous: Option<&Stored>, audit: Option<&str>) {
        let result = match previous {
            Some(p) => self
                .store()
                .put(&p.record, Some(claimed), audit)
                .await
                .map(|_| ()),
            None => self.store().forget(&claimed.record.uid).await,
        };
        if let Err(e) = result {
            warn!(ns = %claimed.record.namespace, name = %claimed.record.name, error = %e,
                "could not take back a refused claim; the next request or the recorder completes or reports it");
        }
    }

    /// Gathers the planner's input and plans.
    async fn plan(
        &self,
        req: &RetryRequest,
        run: &Value,
        record: Option<&AttemptRecord>,
    ) -> Result<(Plan, Children), ApiError> {
        let inner = &self.inner;
        let (ns, audit) = (req.namespace.as_str(), req.audit_id.as_deref());
        let children = inner
            .executor
            .owned_children(ns, run, audit)
            .await
            .map_err(|e| cluster_error("listing the child runs", e))?;
        let run_view = PipelineRunView::new(run);
        let pipeline = match run_view.pipeline_ref_name() {
            Some(p) => match inner.cluster.get(PIPELINES, ns, p, audit).await {
                Ok(v) => Some(v),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(cluster_error("reading the pipeline", e)),
            },
            None => None,
        };
        // Only a run that binds claims (a `persistentVolumeClaim` or `volumeClaimTemplate`
        // workspace) can lose the data a kept task left there.
        let pvcs: Option<BTreeSet<String>> = if inner.opts.check_pvcs && run_view.binds_claims() {
            match inner.cluster.list(PVCS, ns, "", audit).await {
                Ok(items) => Some(
                    items
                        .iter()
                        .map(|p| ObjectView::new(p).name())
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
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
            children: &children.owned,
            pipeline: pipeline.as_ref(),
            existing_pvcs: pvcs.as_ref(),
            spec: &req.spec,
            record,
            now: Utc::now(),
            limits: inner.opts.limits,
        };
        let plan = planner::plan(&input)?;
        // A Task deleted (or renamed) since the failure: Tekton would fail the retry
        // CouldntGetTask at once. Known up front when the Task can be read; otherwise the
        // executor reports that outcome after the reset.
        let mut gone = Vec::new();
        for (task, task_ref) in planner::local_task_refs(&input, &plan) {
            match inner.cluster.get(TASKS, ns, &task_ref, audit).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => gone.push(GoneTask { task, task_ref }),
                Err(e) => {
                    warn!(%ns, task = %task_ref, error = %e, "cannot read the Task; not checking that it exists");
                }
            }
        }
        if !gone.is_empty() {
            return Err(Refusal::TasksGone {
                run: req.name.clone(),
                gone,
            }
            .into());
        }
        Ok((plan, children))
    }

    /// The steps after the claim and the final record, for a fresh claim or a roll-forward.
    async fn execute(
        &self,
        req: &RetryRequest,
        run: &Value,
        claimed: Stored,
        children: Option<Children>,
    ) -> Result<Value, ApiError> {
        let inner = &self.inner;
        let (ns, name, audit) = (
            req.namespace.as_str(),
            req.name.as_str(),
            req.audit_id.as_deref(),
        );
        let record = &claimed.record;
        let key = format!("{}/{}", record.uid, record.retry.attempt);
        let outcome = async {
            let run = inner
                .executor
                .complete(ns, run, record, children, audit)
                .await?;
            let attempt = record.retry.attempt;
            let mark_started = |r: &mut AttemptRecord| {
                if r.retry.attempt == attempt && r.phase() == Phase::Claimed {
                    r.retry.phase = Some(Phase::Started);
                    true
                } else {
                    false
                }
            };
            // Fenced by the claim's own resourceVersion; read again only if something else wrote
            // the record since (the recorder, another replica's roll-forward).
            let mut started = record.clone();
            let written = if mark_started(&mut started) {
                match self.store().put(&started, Some(&claimed), audit).await {
                    Ok(s) => Some(s),
                    Err(e) if e.is_conflict() => self
                        .store()
                        .update(&record.uid, audit, mark_started)
                        .await
                        .map_err(|e| cluster_error("recording the retry", e))?,
                    Err(e) => return Err(cluster_error("recording the retry", e)),
                }
            } else {
                None
            };
            if let Some(s) = written {
                if let Err(e) = inner.executor.write_mirror(&s.record, audit).await {
                    warn!(%ns, %name, error = %e, "could not update the run's retry annotations; the recorder does");
                }
            }
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
                warn!(%ns, %name, attempt = record.retry.attempt, error = %e, "retry interrupted; the next request completes it");
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
        stored: Stored,
    ) -> Result<PipelineRunRetry, ApiError> {
        let inner = &self.inner;
        let (ns, name) = (req.namespace.as_str(), req.name.as_str());
        let record = &stored.record;
        let known = inner
            .interrupted
            .lock()
            .map(|s| s.contains(&format!("{}/{}", record.uid, record.retry.attempt)))
            .unwrap_or(false);
        let age = parse_time(&record.retry.start).map(|t| Utc::now().signed_duration_since(t));
        let old_enough =
            age.is_some_and(|a| a.to_std().unwrap_or_default() >= inner.opts.claim_grace);
        if !known && !old_enough {
            return Err(Refusal::InProgress {
                namespace: ns.to_string(),
                run: name.to_string(),
                attempt: record.retry.attempt,
                by: record.retry.by.clone(),
                start: record.retry.start.clone(),
                grace_seconds: inner.opts.claim_grace.as_secs(),
            }
            .into());
        }
        if let Some(p) = req.spec.preconditions.as_ref().and_then(|p| p.attempt) {
            // The interrupted request claimed `record.attempt` from attempt `p`.
            if p + 1 != record.retry.attempt {
                return Err(Refusal::AttemptMismatch {
                    run: name.to_string(),
                    wanted: p,
                    actual: record.retry.attempt,
                }
                .into());
            }
        }
        let plan = Plan {
            attempt: record.retry.attempt,
            pipeline_run_uid: record.uid.clone(),
            retried: record
                .retry
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
            original: record.original.clone(),
            remove_annotations: Vec::new(),
            dangling_references: Vec::new(),
        };
        if req.dry_run {
            let mut resp = response(req, run, &plan, Some(record), true);
            if let Some(s) = resp.status.as_mut() {
                s.message = Some(format!(
                    "attempt {} was interrupted; a retry completes it",
                    record.retry.attempt
                ));
            }
            return Ok(resp);
        }
        info!(%ns, %name, attempt = record.retry.attempt, "completing an interrupted retry");
        let (attempt, by, start) = (
            record.retry.attempt,
            record.retry.by.clone(),
            record.retry.start.clone(),
        );
        let summary = record.clone();
        if let Err(e) = inner
            .executor
            .write_mirror(&summary, req.audit_id.as_deref())
            .await
        {
            warn!(%ns, %name, error = %e, "could not re-assert the run's retry annotations");
        }
        let done = self.execute(req, run, stored, None).await?;
        let mut resp = response(req, &done, &plan, Some(&summary), false);
        if let Some(s) = resp.status.as_mut() {
            s.message = Some(format!(
                "completed attempt {attempt} started by {by} at {start}, which had been interrupted"
            ));
        }
        Ok(resp)
    }

    /// Resets again a run whose started attempt a stale controller write turned back into its old
    /// outcome after the request had answered (the recorder calls this). Does nothing unless the
    /// run with `uid` is done with an outcome older than the attempt's claim.
    pub async fn repair(&self, ns: &str, name: &str, uid: &str) -> Result<bool, ApiError> {
        let inner = &self.inner;
        let _guard = inner.enter(ns, name)?;
        let _permit = inner
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the engine is shutting down"))?;
        let run = inner.executor_get_run(ns, name, None).await?;
        if !ObjectView::new(&run).has_uid(uid) {
            return Ok(false);
        }
        let Some(stored) = self
            .store()
            .get(uid, None)
            .await
            .map_err(|e| cluster_error("reading the attempt record", e))?
        else {
            return Ok(false);
        };
        let record = &stored.record;
        // Only a completion before the claim is surely old (in the claim's own second the
        // request's verification decided); hence `new_child: true`.
        let stale = record.phase() == Phase::Started
            && ObjectView::new(&run).is_done()
            && super::record::shows_old_outcome(&run, record, true);
        if !stale {
            return Ok(false);
        }
        warn!(%ns, %name, attempt = record.retry.attempt, "the run went back to its old outcome after the retry started; resetting it again");
        inner
            .executor
            .complete(ns, &run, record, None, None)
            .await?;
        Ok(true)
    }

    /// The attempt history of the run `ns/name`, found by the run's uid: a
    /// `PipelineRunRetryHistory` whose `data` holds `attempts.json` (every attempt's summary) and
    /// `attempt-N.json` (the runs attempt N lost, with their log tails). Empty for a run never
    /// retried.
    pub async fn history(
        &self,
        ns: &str,
        name: &str,
        audit: Option<&str>,
    ) -> Result<Value, ApiError> {
        let run = self.inner.executor_get_run(ns, name, audit).await?;
        let uid = ObjectView::new(&run).uid();
        let data = self
            .store()
            .history(uid, audit)
            .await
            .map_err(|e| cluster_error("reading the attempt history", e))?;
        Ok(json!({
            "apiVersion": crate::api::API_VERSION,
            "kind": crate::api::HISTORY_KIND,
            "metadata": {"name": name, "namespace": ns, "uid": uid},
            "data": Value::Object(data),
        }))
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
        let view = ObjectView::new(run);
        let name = view.name();
        let now = rfc3339(Utc::now());
        let ev = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": {
                "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": name, "namespace": ns,
                "uid": view.uid(),
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
    /// Marks the run `ns/name` as worked on by this server; 409 if it already is.
    fn enter(&self, ns: &str, name: &str) -> Result<FlightGuard<'_>, ApiError> {
        let mut set = self
            .in_flight
            .lock()
            .map_err(|_| ApiError::internal("engine state poisoned"))?;
        let key = format!("{ns}/{name}");
        if !set.insert(key.clone()) {
            return Err(Refusal::InFlight {
                namespace: ns.to_string(),
                run: name.to_string(),
            }
            .into());
        }
        Ok(FlightGuard {
            set: &self.in_flight,
            key,
        })
    }

    async fn executor_get_run(
        &self,
        ns: &str,
        name: &str,
        audit: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.cluster
            .get(PIPELINERUNS, ns, name, audit)
            .await
            .map_err(|e| match e {
                ClusterError::NotFound { .. } => Refusal::RunNotFound {
                    namespace: ns.to_string(),
                    run: name.to_string(),
                }
                .into(),
                other => cluster_error("reading the pipelinerun", other),
            })
    }
}

fn started_message(record: &AttemptRecord) -> String {
    let mut m = format!(
        "{} started attempt {}: re-running {}",
        record.retry.by,
        record.retry.attempt,
        record.retry.tasks.join(", ")
    );
    if let Some(r) = &record.retry.reason {
        m.push_str(&format!(" (reason: {r})"));
    }
    m
}

fn response(
    req: &RetryRequest,
    run: &Value,
    plan: &Plan,
    record: Option<&AttemptRecord>,
    dry_run: bool,
) -> PipelineRunRetry {
    let attempt = plan.attempt;
    let tasks = plan
        .retried
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let status = RetryStatus {
        attempt,
        dry_run,
        pipeline_run_uid: ObjectView::new(run).uid().to_string(),
        retried_tasks: plan.retried.clone(),
        preserved_tasks: plan.preserved.clone(),
        start_time: record.map(|r| r.retry.start.clone()),
        original_start_time: plan.original.start.clone(),
        original_completion_time: plan.original.completion.clone(),
        remaining_timeout: plan.remaining_timeout.map(format_go_duration_secs),
        message: Some(if dry_run {
            format!("dry run: attempt {attempt} would re-run {tasks}")
        } else {
            format!("attempt {attempt} started: re-running {tasks}")
        }),
    };
    PipelineRunRetry::response(&req.namespace, &req.name, req.spec.clone(), status)
}

impl RetryService for Engine {
    fn retry(&self, req: RetryRequest) -> BoxFuture<'static, Result<PipelineRunRetry, ApiError>> {
        let engine = self.clone();
        Box::pin(async move { engine.retry(req).await })
    }

    fn history(
        &self,
        namespace: String,
        name: String,
        audit_id: Option<String>,
    ) -> BoxFuture<'static, Result<Value, ApiError>> {
        let engine = self.clone();
        Box::pin(async move { engine.history(&namespace, &name, audit_id.as_deref()).await })
    }
}

#[cfg(test)]
mod tests;

//! The executor: performs a claimed attempt through the Kubernetes API: archive and delete the
//! runs the attempt replaces, reset the status, clear `spec.status`, verify that Tekton took the run
//! up. Every step is conditional and idempotent, so an attempt interrupted at any point is
//! completed by the next request or by the recorder ("roll forward") from the attempt record.
//!
//! Nothing is deleted on a name alone: a child run is archived or deleted only when its controller
//! ownerReference is the retried run's uid **and** its uid is one the record names (the delete
//! carries that uid as a precondition). The children are listed from the cluster each time, never
//! taken from anything a user can write.

/// Formats an RFC 3339 time the way Kubernetes does (seconds, `Z`).
pub use crate::tekton::format_time as rfc3339;
use crate::tekton::str_at;
use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use tracing::{debug, info};

use super::cluster::{child_kind, Cluster, ClusterError, CUSTOMRUNS, PIPELINERUNS, PODS, TASKRUNS};
use super::planner;
use super::record::history::{self, ArchivedRun, AttemptArchive};
use super::record::{controlled_by, mirror, AttemptRecord, RecordStore, RunRef};
use crate::api::ApiError;

/// Tunables of the executor.
#[derive(Clone, Debug)]
pub struct ExecutorOptions {
    /// How long to wait for deleted runs and their pods to be gone.
    pub wait_gone_timeout: Duration,
    /// How long to watch the run after the reset for a flip back (informer lag, stale writes).
    pub verify_window: Duration,
    pub poll_interval: Duration,
    /// Bound on status-write rounds (races with the controller).
    pub max_reset_rounds: u32,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            wait_gone_timeout: Duration::from_secs(20),
            verify_window: Duration::from_secs(2),
            poll_interval: Duration::from_millis(50),
            max_reset_rounds: 6,
        }
    }
}

/// Performs claims and roll-forwards.
#[derive(Clone)]
pub struct Executor {
    cluster: Cluster,
    store: RecordStore,
    opts: ExecutorOptions,
}

fn is_done(obj: &Value) -> bool {
    crate::tekton::ObjectView::new(obj).is_done()
}

fn spec_status(obj: &Value) -> Option<&str> {
    str_at(obj, "/spec/status").filter(|s| !s.is_empty())
}

fn resource_version(obj: &Value) -> Result<String, ApiError> {
    str_at(obj, "/metadata/resourceVersion")
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::internal(
                "the Kubernetes API returned a PipelineRun without metadata.resourceVersion",
            )
        })
}

/// A write to the run refused by admission (Tekton's webhook validates even status and metadata
/// writes like the whole object, fixture retries/06): a 422 that says why, never a 500.
pub fn rejected_by_admission(ns: &str, name: &str, what: &str, message: &str) -> ApiError {
    if let Some(refusal) = planner::inline_spec_refusal(name, message) {
        return refusal;
    }
    ApiError::invalid(
        format!("the cluster refused the {what} of pipelinerun {ns}/{name}: {message}"),
        vec![crate::api::Cause::invalid(
            "metadata.name",
            format!(
                "the PipelineRun no longer passes the cluster's validation ({message}); for example a \
                 Tekton feature flag changed after it started. Re-run it as a new PipelineRun"
            ),
        )],
    )
    .with_name(name)
    .with_refusal("StatusRejected")
}

/// Maps an API failure during execution to the answer: the attempt stays claimed and resumable.
pub fn cluster_error(step: &str, e: ClusterError) -> ApiError {
    let resume = "the attempt is recorded on the run and is completed by the next retry request (or by the recorder)";
    match e {
        ClusterError::Timeout { .. } => ApiError::timeout(format!("{step}: {e}; {resume}")),
        ClusterError::Api { code: 429, .. } => ApiError::new(
            crate::api::StatusReason::TooManyRequests,
            format!("{step}: {e}; {resume}"),
        )
        .with_retry_after(1),
        other => ApiError::internal(format!("{step}: {other}; {resume}")),
    }
}

impl Executor {
    pub fn new(cluster: Cluster, store: RecordStore, opts: ExecutorOptions) -> Self {
        Executor {
            cluster,
            store,
            opts,
        }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn store(&self) -> &RecordStore {
        &self.store
    }

    /// The run's child runs that it controls (TaskRuns, CustomRuns, child PipelineRuns), listed
    /// from the cluster. A child labelled for the run but not controlled by its uid is not one.
    pub async fn owned_children(
        &self,
        ns: &str,
        run: &Value,
        audit: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let name = str_at(run, "/metadata/name").unwrap_or_default();
        let uid = str_at(run, "/metadata/uid").unwrap_or_default();
        let selector = format!("tekton.dev/pipelineRun={name}");
        let mut children = Vec::new();
        for kind in [TASKRUNS, CUSTOMRUNS, PIPELINERUNS] {
            match self.cluster.list(kind, ns, &selector, audit).await {
                Ok(items) => {
                    children.extend(items.into_iter().filter(|c| controlled_by(c, uid)).map(
                        |mut c| {
                            // List items may lack `kind`; the planner and archive need it.
                            if c.get("kind").is_none() {
                                c["kind"] = json!(kind_name(kind.resource));
                            }
                            c
                        },
                    ))
                }
                // CustomRuns may not be installed; a missing resource means there are none.
                Err(ClusterError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(children)
    }

    /// The runs `record` replaces that still exist as the very runs it recorded: controlled by
    /// the retried run and with the recorded uid. Anything else of the same name (a run Tekton
    /// re-created, an object someone else made) is never touched.
    async fn still_there(
        &self,
        ns: &str,
        run: &Value,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let children = self
            .owned_children(ns, run, audit)
            .await
            .map_err(|e| cluster_error("listing the child runs", e))?;
        Ok(children
            .into_iter()
            .filter(|c| record.replaces_uid(str_at(c, "/metadata/uid").unwrap_or_default()))
            .collect())
    }

    /// The steps after the claim for the attempt `record` on `run`. Safe to call again after any
    /// failure. Returns the run as last read, running the new attempt.
    pub async fn complete(
        &self,
        ns: &str,
        run: &Value,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) -> Result<Value, ApiError> {
        let name = record.name.as_str();
        let uid = record.uid.as_str();
        if str_at(run, "/metadata/uid") != Some(uid) {
            return Err(replaced(ns, name));
        }

        // Archive every run the attempt replaces, before anything is deleted.
        let present = self.still_there(ns, run, record, audit).await?;
        let archivable: Vec<&Value> = present
            .iter()
            .filter(|c| str_at(c, "/metadata/deletionTimestamp").is_none() || is_done(c))
            .collect();
        if !archivable.is_empty() {
            self.archive(record, &archivable, audit).await?;
        }

        // Delete (foreground, uid precondition) and wait until the runs and pods are gone.
        let now_refs: HashSet<&str> = record.replace_now.iter().map(|r| r.uid.as_str()).collect();
        for r in &record.replace_now {
            let obj = present
                .iter()
                .find(|c| str_at(c, "/metadata/uid") == Some(r.uid.as_str()));
            self.delete_and_wait(ns, r, obj, audit).await?;
        }
        // A run deleted by hand with `--cascade=orphan` left its pod without an owner: Tekton
        // re-creates the run under the same name and adopts that pod (fixture orphan-pod).
        for name in &record.drop_references {
            self.wait_pods_gone(ns, &RunRef::new("TaskRun", name, ""), audit)
                .await?;
        }

        // Status write, spec.status clear, verification, repeated on races.
        let mut deferred_done = record.replace_after_spec_clear.is_empty();
        let mut reset_written = false;
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > self.opts.max_reset_rounds {
                return Err(ApiError::timeout(format!(
                    "the Tekton controller kept setting pipelinerun {ns}/{name} back to done after {} status writes; \
                     the attempt stays recorded and is completed by the next retry request",
                    self.opts.max_reset_rounds
                )));
            }
            let current = self.get_run(ns, name, audit).await?;
            if str_at(&current, "/metadata/uid") != Some(uid) {
                return Err(replaced(ns, name));
            }
            if is_done(&current) && refailed_by_tekton(&current, reset_written) {
                info!(%ns, %name, "Tekton failed the reset run before creating any child; that is the attempt's outcome");
                return Ok(current);
            }
            let needs_reset = is_done(&current) && !self.started_since(&current, record).await;
            if needs_reset {
                let reset_rv = self.reset_status(ns, name, &current, record, audit).await?;
                reset_written |= reset_rv.is_some();
                if let (Some(rv), Some(_)) = (reset_rv, spec_status(&current)) {
                    // At once, with the reset's resourceVersion: while spec.status is set, every
                    // Tekton reconcile completes the reset run again (a gracefully stopped run
                    // whose remaining tasks were skipped is done again within milliseconds), and
                    // a re-read first loses that race every round.
                    self.clear_spec_status(ns, name, &rv, audit).await?;
                }
                continue; // re-read: the verification acts on the fresh object
            }
            if spec_status(&current).is_some() && !is_done(&current) {
                // The webhook refuses spec changes on a done run, so this follows the reset.
                let rv = resource_version(&current)?;
                self.clear_spec_status(ns, name, &rv, audit).await?;
                continue;
            }
            if !deferred_done {
                // Finally runs of a gracefully cancelled run: only now (fixture cancelled-finally-trap).
                let present = self.still_there(ns, &current, record, audit).await?;
                for r in &record.replace_after_spec_clear {
                    if now_refs.contains(r.uid.as_str()) {
                        continue;
                    }
                    let obj = present
                        .iter()
                        .find(|c| str_at(c, "/metadata/uid") == Some(r.uid.as_str()));
                    self.delete_and_wait(ns, r, obj, audit).await?;
                }
                deferred_done = true;
            }
            // Watch for a flip back to the old outcome.
            match self.verify(ns, name, record, audit).await? {
                Some(run) => {
                    self.remove_annotations(ns, name, &run, record, audit).await;
                    return Ok(run);
                }
                None => {
                    info!(%ns, %name, "run flipped back to its old outcome after the reset; writing the status again");
                    continue;
                }
            }
        }
    }

    async fn get_run(&self, ns: &str, name: &str, audit: Option<&str>) -> Result<Value, ApiError> {
        self.cluster
            .get(PIPELINERUNS, ns, name, audit)
            .await
            .map_err(|e| match e {
                ClusterError::NotFound { .. } => ApiError::not_found(format!(
                    "pipelineruns.tekton.dev \"{name}\" not found in namespace \"{ns}\""
                )),
                other => cluster_error("reading the pipelinerun", other),
            })
    }

    async fn archive(
        &self,
        record: &AttemptRecord,
        children: &[&Value],
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        let ns = record.namespace.as_str();
        let mut runs = Vec::new();
        for child in children {
            let kind = str_at(child, "/kind").unwrap_or("TaskRun").to_string();
            let name = str_at(child, "/metadata/name")
                .unwrap_or_default()
                .to_string();
            let task = str_at(child, "/metadata/labels/tekton.dev~1pipelineTask")
                .unwrap_or_default()
                .to_string();
            let mut logs = std::collections::BTreeMap::new();
            if kind == "TaskRun" {
                for (key_prefix, pod, steps) in attempt_pods(child) {
                    for container in steps {
                        let text = match self
                            .cluster
                            .pod_log_tail(ns, pod, container, history::LOG_TAIL_BYTES, audit)
                            .await
                        {
                            Ok(t) => t,
                            Err(e) => format!("(log not archived: {e})"),
                        };
                        logs.insert(format!("{key_prefix}{container}"), text);
                    }
                }
            }
            runs.push(ArchivedRun {
                kind,
                name,
                pipeline_task: task,
                object: (*child).clone(),
                logs,
            });
        }
        let archive = AttemptArchive {
            attempt: record.attempt.saturating_sub(1),
            archived_at: record.start.clone(),
            runs,
            truncated: false,
        };
        self.store
            .archive(record, &archive, audit)
            .await
            .map_err(|e| cluster_error("writing the attempt history", e))
    }

    /// Deletes `obj` (the run `r` as it still exists, if it does) and waits until it and its pods
    /// are gone.
    async fn delete_and_wait(
        &self,
        ns: &str,
        r: &RunRef,
        obj: Option<&Value>,
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(k) = child_kind(&r.kind) else {
            return Ok(());
        };
        if let Some(obj) = obj {
            if str_at(obj, "/metadata/deletionTimestamp").is_none() {
                match self
                    .cluster
                    .delete_foreground(k, ns, &r.name, &r.uid, audit)
                    .await
                {
                    Ok(()) => info!(%ns, run = %r, "deleted child run"),
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(cluster_error(&format!("deleting {r}"), e)),
                }
            }
            let deadline = tokio::time::Instant::now() + self.opts.wait_gone_timeout;
            let mut last_seen: Option<Value>;
            loop {
                match self.cluster.get(k, ns, &r.name, audit).await {
                    Err(e) if e.is_not_found() => break,
                    Ok(o) if str_at(&o, "/metadata/uid") != Some(r.uid.as_str()) => break,
                    Ok(o) => last_seen = Some(o),
                    Err(e) => {
                        return Err(cluster_error(&format!("waiting for {r} to be deleted"), e))
                    }
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(not_gone(
                        ns,
                        r,
                        last_seen.as_ref(),
                        self.opts.wait_gone_timeout,
                    ));
                }
                tokio::time::sleep(self.opts.poll_interval).await;
            }
        }
        self.wait_pods_gone(ns, r, audit).await
    }

    /// A leftover `<taskrun>-pod` is adopted by the re-created TaskRun, which then fails at once
    /// with the old result (fixture orphan-pod): wait until the TaskRun's pods are gone too.
    /// A pod counts as left over when it is owned by the deleted TaskRun (its recorded uid) or by
    /// nothing; the pod of a TaskRun Tekton already re-created (another owner uid) does not.
    async fn wait_pods_gone(
        &self,
        ns: &str,
        r: &RunRef,
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        if r.kind != "TaskRun" {
            return Ok(());
        }
        let selector = format!("tekton.dev/taskRun={}", r.name);
        // `<taskrun>-pod…`, or the hashed form of a long TaskRun name ([`is_attempt_pod_name`]).
        let pod_prefix = format!("{}-pod", r.name);
        let deadline = tokio::time::Instant::now() + self.opts.wait_gone_timeout;
        loop {
            let pods = self
                .cluster
                .list(PODS, ns, &selector, audit)
                .await
                .map_err(|e| cluster_error(&format!("waiting for the pods of {r}"), e))?;
            let left: Vec<&str> = pods
                .iter()
                .filter(|p| {
                    let owners: Vec<&str> = p
                        .pointer("/metadata/ownerReferences")
                        .and_then(Value::as_array)
                        .map(|os| {
                            os.iter()
                                .filter_map(|o| o.get("uid").and_then(Value::as_str))
                                .collect()
                        })
                        .unwrap_or_default();
                    owners.is_empty() || owners.contains(&r.uid.as_str())
                })
                .filter_map(|p| str_at(p, "/metadata/name"))
                .filter(|n| n.starts_with(&pod_prefix) || is_attempt_pod_name(n))
                .collect();
            if left.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError::timeout(format!(
                    "the pods {left:?} of {r} in {ns} are still there {:?} after its deletion; a re-created TaskRun would adopt them \
                     and fail at once, so the run was not reset. Delete them, then retry again",
                    self.opts.wait_gone_timeout
                )));
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }

    /// Whether the run's current outcome comes from this attempt: a replaced run exists again under a
    /// new uid, controlled by the run (a flip back without one is the old failure re-written:
    /// informer lag or a stale write).
    async fn started_since(&self, run: &Value, record: &AttemptRecord) -> bool {
        let ns = str_at(run, "/metadata/namespace").unwrap_or_default();
        match self.owned_children(ns, run, None).await {
            Ok(children) => children.iter().any(|c| record.is_new(c)),
            Err(_) => false,
        }
    }

    /// Clears `spec.status` of the run at resourceVersion `rv`. A lost race (409, or 400 when the
    /// run is done again: race 1, fixtures cancelled/04–06) is no error: the loop re-reads and
    /// decides again.
    async fn clear_spec_status(
        &self,
        ns: &str,
        name: &str,
        rv: &str,
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"status": null}});
        match self
            .cluster
            .merge_patch(PIPELINERUNS, ns, name, patch, audit)
            .await
        {
            Ok(_) => debug!(%ns, %name, "cleared spec.status"),
            Err(e) if e.is_conflict() => {
                debug!(%ns, %name, "spec.status clear lost a race; repeating")
            }
            Err(ClusterError::Api {
                code: 400, message, ..
            }) => {
                debug!(%ns, %name, %message, "spec.status clear refused; repeating the reset")
            }
            Err(e) => return Err(cluster_error("clearing spec.status", e)),
        }
        Ok(())
    }

    /// Writes the status reset; returns the run's new resourceVersion, or `None` when the write
    /// lost a race (the loop re-reads and decides again).
    async fn reset_status(
        &self,
        ns: &str,
        name: &str,
        run: &Value,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let rv = resource_version(run)?;
        let status = planner::attempt_status_reset(run, record, Utc::now());
        let patch = json!({"metadata": {"resourceVersion": rv}, "status": status});
        match self
            .cluster
            .merge_patch_status(PIPELINERUNS, ns, name, patch, audit)
            .await
        {
            Ok(written) => {
                debug!(%ns, %name, attempt = record.attempt, "status reset written");
                Ok(str_at(&written, "/metadata/resourceVersion").map(str::to_string))
            }
            Err(e) if e.is_conflict() => Ok(None), // the loop re-reads and decides again
            Err(ClusterError::Api {
                code: 400, message, ..
            })
            | Err(ClusterError::Api {
                code: 422, message, ..
            }) => {
                // The webhook validates status writes like the whole object (fixture retries/06).
                Err(rejected_by_admission(ns, name, "status reset", &message))
            }
            Err(e) => Err(cluster_error("writing the status reset", e)),
        }
    }

    /// Watches the run for the verification window. `Some(run)` when it stays running (or ends with
    /// an outcome of this attempt); `None` when it flipped back to the old outcome.
    async fn verify(
        &self,
        ns: &str,
        name: &str,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) -> Result<Option<Value>, ApiError> {
        let deadline = tokio::time::Instant::now() + self.opts.verify_window;
        loop {
            let run = self.get_run(ns, name, audit).await?;
            // Verification follows a reset, so a run-level failure now is this attempt's.
            if is_done(&run) && refailed_by_tekton(&run, true) {
                return Ok(Some(run));
            }
            if is_done(&run) && !self.started_since(&run, record).await {
                return Ok(None);
            }
            if spec_status(&run).is_some() {
                return Ok(None);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Some(run));
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }

    /// Removes the other controllers' annotations the record names (`chains.tekton.dev/*`) from a
    /// run that is running again, fenced by its resourceVersion. Best effort: the recorder
    /// re-asserts the removal while the run is not done.
    async fn remove_annotations(
        &self,
        ns: &str,
        name: &str,
        run: &Value,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) {
        if is_done(run) {
            return;
        }
        if let Some(patch) = mirror::removal_patch(run, record) {
            match self
                .cluster
                .merge_patch(PIPELINERUNS, ns, name, patch, audit)
                .await
            {
                Ok(_) => {
                    debug!(%ns, %name, keys = ?record.remove_annotations, "removed annotations of other controllers")
                }
                Err(e) => {
                    debug!(%ns, %name, error = %e, "annotation removal deferred to the recorder")
                }
            }
        }
    }

    /// Writes the run's mirror annotations of `record` (not fenced: the mirror only shows the
    /// record, and the recorder re-asserts it when anything changes it).
    pub async fn write_mirror(
        &self,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) -> Result<(), ClusterError> {
        self.cluster
            .merge_patch(
                PIPELINERUNS,
                &record.namespace,
                &record.name,
                mirror::patch(record, None),
                audit,
            )
            .await
            .map(|_| ())
    }
}

/// The `kind` of a child run resource.
fn kind_name(resource: &str) -> &'static str {
    match resource {
        "taskruns" => "TaskRun",
        "customruns" => "CustomRun",
        _ => "PipelineRun",
    }
}

/// Whether a done run was failed by Tekton itself for this attempt, without creating any child: a
/// run-level failure (`CouldntGetTask` after the Task was deleted, `PipelineValidationFailed` for
/// a missing result, `CreateRunFailed`, …; pkg/reconciler/pipelinerun/pipelinerun.go
/// `MarkFailed` in `prepare`, `reconcile`, `runNextSchedulableTask`) seen after a reset
/// (`after_reset`: written in this call, or the run was seen running since). That is a legitimate
/// outcome to report, never a reason to write the reset again (a real cluster answered six such
/// writes with six more failures and a 504). Before any reset the same reasons may be the old
/// failure (a runtime `PipelineValidationFailed` is retried), so they say nothing then; times are
/// not compared, the claim and Tekton's failure can fall in the same second.
pub fn refailed_by_tekton(run: &Value, after_reset: bool) -> bool {
    after_reset
        && crate::tekton::ObjectView::new(run)
            .reason()
            .is_some_and(|r| {
                crate::tekton::reasons::DETERMINISTIC_RUN_FAILURES.contains(&r)
                    || r == "CreateRunFailed"
            })
}

/// Whether `pod` has the form of a TaskRun attempt's pod name: `…-pod` or `…-pod-retry<N>`
/// (pkg/pod/pod.go). Tekton builds it with `kmeta.ChildName(taskRun, suffix)`, which replaces the
/// tail of a long TaskRun name by its md5 (`<first 27 characters><32 hex>-pod` for a 63-character
/// name), so the name need not start with the TaskRun's; the `tekton.dev/taskRun` label the pods
/// are listed by ties it to the run.
pub fn is_attempt_pod_name(pod: &str) -> bool {
    if pod.ends_with("-pod") {
        return true;
    }
    pod.rsplit_once("-pod-retry")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The pods of every attempt of a TaskRun with their step containers, as `(log key prefix, pod,
/// containers)`: the automatic retries Tekton archived in `status.retriesStatus` (pods `-pod`,
/// `-pod-retry1`, …, each entry with its own `podName` and `steps`; taskrun.go `retryTaskRun`)
/// keyed `<pod>/<container>`, then the last attempt (`status.podName`) keyed by the container
/// alone.
fn attempt_pods(taskrun: &Value) -> Vec<(String, &str, Vec<&str>)> {
    fn containers(status: &Value) -> Vec<&str> {
        status["steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .filter_map(|s| s.get("container").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default()
    }
    let mut out = Vec::new();
    let earlier = taskrun
        .pointer("/status/retriesStatus")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for status in earlier {
        if let Some(pod) = status["podName"].as_str().filter(|p| !p.is_empty()) {
            out.push((format!("{pod}/"), pod, containers(status)));
        }
    }
    let status = &taskrun["status"];
    if let Some(pod) = status["podName"].as_str().filter(|p| !p.is_empty()) {
        out.push((String::new(), pod, containers(status)));
    }
    out
}

/// The answer when a deleted run is still there after the wait. Finalizers of other controllers
/// (Tekton Chains `chains.tekton.dev/taskrun`, Tekton Results `results.tekton.dev/taskrun`) hold
/// a run until they have handled it (chains pkg/reconciler, results pkg/watcher): the answer names
/// them, so the user knows whom to wait for.
pub fn not_gone(ns: &str, r: &RunRef, seen: Option<&Value>, waited: Duration) -> ApiError {
    let finalizers: Vec<&str> = seen
        .and_then(|o| o.pointer("/metadata/finalizers"))
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let message = if finalizers.is_empty() {
        format!(
            "{r} in {ns} was not gone {waited:?} after its deletion; the retry resumes on the next request"
        )
    } else {
        format!(
            "{r} in {ns} is being deleted but its finalizers {} still hold it after {waited:?}: the \
             controllers that own them (e.g. Tekton Chains or Results) have not released it yet. \
             The attempt is recorded; retry again once they have (or remove a finalizer whose \
             controller is gone)",
            finalizers.join(", ")
        )
    };
    ApiError::timeout(message).with_retry_after(5)
}

fn replaced(ns: &str, name: &str) -> ApiError {
    ApiError::conflict(format!(
        "pipelinerun {ns}/{name} was deleted and re-created while it was being retried; nothing more was done"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_pod_names_plain_and_hashed() {
        assert!(is_attempt_pod_name("demo-run-b-pod"));
        assert!(is_attempt_pod_name("demo-run-b-pod-retry2"));
        // kmeta.ChildName form for a 63-character TaskRun name: 27 characters, md5, suffix.
        assert!(is_attempt_pod_name(
            "a-very-long-pipelinerun-na4b3a6a8d1e0f2c9b7d5e3f1a2b4c6d8-pod"
        ));
        assert!(!is_attempt_pod_name("demo-run-b-pod-leftover"));
        assert!(!is_attempt_pod_name("demo-run-b-pod-retry"));
        assert!(!is_attempt_pod_name("affinity-assistant-9e9e0199da-0"));
    }

    #[test]
    fn every_attempt_pod_is_listed_last_one_unprefixed() {
        let tr = json!({"status": {
            "podName": "r-b-pod-retry1",
            "steps": [{"container": "step-main"}],
            "retriesStatus": [{"podName": "r-b-pod", "steps": [{"container": "step-main"}]}]}});
        let pods = attempt_pods(&tr);
        assert_eq!(
            pods,
            vec![
                ("r-b-pod/".to_string(), "r-b-pod", vec!["step-main"]),
                (String::new(), "r-b-pod-retry1", vec!["step-main"]),
            ]
        );
    }

    #[test]
    fn a_run_level_failure_counts_only_after_a_reset() {
        let run = |reason: &str| {
            json!({"status": {"conditions": [{"type": "Succeeded", "status": "False",
                "reason": reason}]}})
        };
        assert!(refailed_by_tekton(&run("CouldntGetTask"), true));
        assert!(refailed_by_tekton(&run("CreateRunFailed"), true));
        // The old failure, seen before any reset of this call.
        assert!(!refailed_by_tekton(&run("PipelineValidationFailed"), false));
        // A task failure is decided by the runs, never here.
        assert!(!refailed_by_tekton(&run("Failed"), true));
    }
}

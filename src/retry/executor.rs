//! The executor: performs a [`Plan`] through the Kubernetes API (DESIGN §2 steps 3–7). Every step
//! is conditional and idempotent, so a retry interrupted at any point is completed by the next
//! request or by the recorder ("roll forward") from the record the claim wrote.

/// Formats an RFC 3339 time the way Kubernetes does (seconds, `Z`).
pub use crate::tekton::format_time as rfc3339;
use crate::tekton::{parse_time, str_at};
use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tracing::{debug, info, warn};

use super::cluster::{child_kind, Cluster, ClusterError, CONFIGMAPS, PIPELINERUNS, PODS};
use super::planner;
use super::records::{self, ArchivedRun, AttemptArchive};
use crate::api::{ApiError, LastRetry};

/// Phases written into `last-retry.phase`.
pub mod phase {
    /// The claim is written; children may be partly archived or deleted.
    pub const CLAIMED: &str = "claimed";
    /// The run was reset and observed running again.
    pub const STARTED: &str = "started";
}

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
    opts: ExecutorOptions,
}

/// The `Succeeded` condition's (status, reason) of an object.
pub fn succeeded(obj: &Value) -> (Option<&str>, Option<&str>) {
    let cond = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Succeeded"))
        });
    match cond {
        Some(c) => (
            c.get("status").and_then(Value::as_str),
            c.get("reason").and_then(Value::as_str),
        ),
        None => (None, None),
    }
}

fn is_done(obj: &Value) -> bool {
    matches!(succeeded(obj).0, Some("True") | Some("False"))
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

/// `Kind/name/uid` of a child run, as recorded in `last-retry`: the uid tells the old run from the
/// one Tekton re-creates under the same name (timestamps have one-second precision, too coarse).
pub fn run_ref(kind: &str, name: &str, uid: &str) -> String {
    format!("{kind}/{name}/{uid}")
}

/// (kind, name, uid) of a recorded run reference; the uid is absent in `Kind/name` references.
fn split_ref(r: &str) -> Option<(&str, &str, Option<&str>)> {
    let mut parts = r.splitn(3, '/');
    let kind = parts.next()?;
    let name = parts.next()?;
    Some((kind, name, parts.next().filter(|u| !u.is_empty())))
}

/// What the claim recorded about the runs it replaces: the old runs' uids by name, and its start.
#[derive(Clone, Debug, Default)]
pub struct ClaimedRuns {
    pub start: Option<DateTime<Utc>>,
    pub uids: std::collections::HashMap<String, String>,
}

impl ClaimedRuns {
    pub fn of(record: &LastRetry) -> Self {
        let uids = record
            .deleted_runs
            .iter()
            .chain(record.deferred_runs.iter())
            .filter_map(|r| split_ref(r))
            .filter_map(|(_, name, uid)| uid.map(|u| (name.to_string(), u.to_string())))
            .collect();
        ClaimedRuns {
            start: parse_time(&record.start),
            uids,
        }
    }

    /// Whether `child` is a run created for this attempt (not one that existed at the claim).
    pub fn is_new(&self, child: &Value) -> bool {
        let name = str_at(child, "/metadata/name").unwrap_or_default();
        let uid = str_at(child, "/metadata/uid").unwrap_or_default();
        match self.uids.get(name) {
            Some(old) => old != uid,
            None if self.uids.is_empty() => {
                let created = str_at(child, "/metadata/creationTimestamp").and_then(parse_time);
                matches!((created, self.start), (Some(c), Some(s)) if c > s)
            }
            None => false,
        }
    }
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
    pub fn new(cluster: Cluster, opts: ExecutorOptions) -> Self {
        Executor { cluster, opts }
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Steps 4–7 for the attempt `record` claimed on `run`. Safe to call again after any failure.
    pub async fn complete(
        &self,
        ns: &str,
        run: &Value,
        record: &LastRetry,
        audit: Option<&str>,
    ) -> Result<Value, ApiError> {
        let name = str_at(run, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        let uid = str_at(run, "/metadata/uid").unwrap_or_default().to_string();
        let claim = ClaimedRuns::of(record);

        // Step 4: archive every run the attempt replaces, before anything is deleted.
        let all: Vec<&String> = record
            .deleted_runs
            .iter()
            .chain(record.deferred_runs.iter())
            .collect();
        let mut existing = Vec::new();
        for r in &all {
            if let Some(obj) = self.old_child(ns, r, &claim, audit).await? {
                existing.push(obj);
            }
        }
        if !existing.is_empty() {
            self.archive(ns, &name, &uid, record, &existing, audit)
                .await?;
        }

        // Step 4: delete (foreground, uid precondition) and wait until the runs and pods are gone.
        for r in &record.deleted_runs {
            self.delete_and_wait(ns, r, &claim, audit).await?;
        }

        // Steps 5–7: status write, spec.status clear, verification, repeated on races.
        let deleted: BTreeSet<String> = record
            .deleted_runs
            .iter()
            .filter_map(|r| split_ref(r).map(|(_, n, _)| n.to_string()))
            .collect();
        let mut deferred_done = record.deferred_runs.is_empty();
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
            let current = self.get_run(ns, &name, audit).await?;
            if str_at(&current, "/metadata/uid") != Some(uid.as_str()) {
                return Err(ApiError::conflict(format!(
                    "pipelinerun {ns}/{name} was deleted and re-created while it was being retried; nothing more was done"
                )));
            }
            let needs_reset = is_done(&current) && !self.started_since(&current, &claim).await;
            if needs_reset {
                self.reset_status(ns, &name, &current, &deleted, record, audit)
                    .await?;
                continue; // re-read: the spec clear and verification act on the fresh object
            }
            if spec_status(&current).is_some() && !is_done(&current) {
                // Step 6: the webhook refuses spec changes on a done run, so this follows step 5.
                let rv = resource_version(&current)?;
                let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"status": null}});
                match self
                    .cluster
                    .merge_patch(PIPELINERUNS, ns, &name, patch, audit)
                    .await
                {
                    Ok(_) => debug!(%ns, %name, "cleared spec.status"),
                    Err(e) if e.is_conflict() => {
                        debug!(%ns, %name, "spec.status clear lost a race; repeating")
                    }
                    Err(ClusterError::Api {
                        code: 400, message, ..
                    }) => {
                        // Done again between our reads (race 1, fixtures cancelled/04–06).
                        debug!(%ns, %name, %message, "spec.status clear refused; repeating the reset")
                    }
                    Err(e) => return Err(cluster_error("clearing spec.status", e)),
                }
                continue;
            }
            if !deferred_done {
                // Finally runs of a gracefully cancelled run: only now (fixture cancelled-finally-trap).
                for r in &record.deferred_runs {
                    self.delete_and_wait(ns, r, &claim, audit).await?;
                }
                deferred_done = true;
            }
            // Step 7: watch for a flip back to the old outcome.
            match self.verify(ns, &name, &claim, audit).await? {
                Some(run) => return Ok(run),
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

    /// The child run `r` (`Kind/name/uid`) if it is still the run the claim recorded (a run Tekton
    /// re-created under the same name is never touched: no run is deleted twice).
    async fn old_child(
        &self,
        ns: &str,
        r: &str,
        claim: &ClaimedRuns,
        audit: Option<&str>,
    ) -> Result<Option<Value>, ApiError> {
        let Some((kind, name, _)) = split_ref(r) else {
            return Ok(None);
        };
        let Some(k) = child_kind(kind) else {
            return Ok(None);
        };
        match self.cluster.get(k, ns, name, audit).await {
            Ok(obj) => {
                if claim.is_new(&obj)
                    || (str_at(&obj, "/metadata/deletionTimestamp").is_some() && !is_done(&obj))
                {
                    Ok(None)
                } else {
                    Ok(Some(obj))
                }
            }
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(cluster_error(&format!("reading {r}"), e)),
        }
    }

    async fn archive(
        &self,
        ns: &str,
        run: &str,
        run_uid: &str,
        record: &LastRetry,
        children: &[Value],
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
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
                if let Some(pod) = str_at(child, "/status/podName").filter(|p| !p.is_empty()) {
                    let steps = child
                        .pointer("/status/steps")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for step in steps {
                        let Some(container) = step.get("container").and_then(Value::as_str) else {
                            continue;
                        };
                        let text = match self
                            .cluster
                            .pod_log_tail(ns, pod, container, records::LOG_TAIL_BYTES, audit)
                            .await
                        {
                            Ok(t) => t,
                            Err(e) => format!("(log not archived: {e})"),
                        };
                        logs.insert(container.to_string(), text);
                    }
                }
            }
            runs.push(ArchivedRun {
                kind,
                name,
                pipeline_task: task,
                object: child.clone(),
                logs,
            });
        }
        let archive = AttemptArchive {
            attempt: record.attempt.saturating_sub(1),
            archived_at: record.start.clone(),
            runs,
            truncated: false,
        };
        let cm_name = records::history_name(run);
        for _ in 0..5 {
            match self.cluster.get(CONFIGMAPS, ns, &cm_name, audit).await {
                Err(e) if e.is_not_found() => {
                    let mut data = Map::new();
                    records::add_to_history(&mut data, &archive, record);
                    match self
                        .cluster
                        .create(
                            CONFIGMAPS,
                            ns,
                            records::new_history(ns, run, run_uid, data),
                            audit,
                        )
                        .await
                    {
                        Ok(_) => return Ok(()),
                        Err(e) if e.is_conflict() => continue, // AlreadyExists: another writer won; merge into it
                        Err(e) => return Err(cluster_error("writing the attempt history", e)),
                    }
                }
                Err(e) => return Err(cluster_error("reading the attempt history", e)),
                Ok(mut cm) => {
                    let mut data = cm
                        .get("data")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if data.contains_key(&records::archive_key(archive.attempt)) {
                        return Ok(()); // archived by an earlier, interrupted pass
                    }
                    records::add_to_history(&mut data, &archive, record);
                    cm["data"] = Value::Object(data);
                    match self
                        .cluster
                        .replace(CONFIGMAPS, ns, &cm_name, cm, audit)
                        .await
                    {
                        Ok(_) => return Ok(()),
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => return Err(cluster_error("writing the attempt history", e)),
                    }
                }
            }
        }
        Err(ApiError::conflict(format!(
            "the attempt history {ns}/{cm_name} kept changing while it was written; try again"
        )))
    }

    async fn delete_and_wait(
        &self,
        ns: &str,
        r: &str,
        claim: &ClaimedRuns,
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(obj) = self.old_child(ns, r, claim, audit).await? else {
            return self.wait_pods_gone(ns, r, claim, audit).await;
        };
        let Some((kind, name, _)) = split_ref(r) else {
            return Ok(());
        };
        let Some(k) = child_kind(kind) else {
            return Ok(());
        };
        let uid = str_at(&obj, "/metadata/uid")
            .unwrap_or_default()
            .to_string();
        if str_at(&obj, "/metadata/deletionTimestamp").is_none() {
            match self
                .cluster
                .delete_foreground(k, ns, name, &uid, audit)
                .await
            {
                Ok(()) => info!(%ns, run = %r, %uid, "deleted child run"),
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(cluster_error(&format!("deleting {r}"), e)),
            }
        }
        let deadline = tokio::time::Instant::now() + self.opts.wait_gone_timeout;
        loop {
            match self.cluster.get(k, ns, name, audit).await {
                Err(e) if e.is_not_found() => break,
                Ok(o) if str_at(&o, "/metadata/uid") != Some(uid.as_str()) => break,
                Ok(_) => {}
                Err(e) => return Err(cluster_error(&format!("waiting for {r} to be deleted"), e)),
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError::timeout(format!(
                    "{r} in {ns} was not gone {:?} after its deletion (a finalizer?); the retry resumes on the next request",
                    self.opts.wait_gone_timeout
                )));
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
        self.wait_pods_gone(ns, r, claim, audit).await
    }

    /// A leftover `<taskrun>-pod` is adopted by the re-created TaskRun, which then fails at once
    /// with the old result (fixture orphan-pod): wait until the TaskRun's pods are gone too.
    /// A pod counts as left over when it is owned by the deleted TaskRun (its recorded uid) or by
    /// nothing; the pod of a TaskRun Tekton already re-created (another owner uid) does not.
    async fn wait_pods_gone(
        &self,
        ns: &str,
        r: &str,
        claim: &ClaimedRuns,
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(("TaskRun", name, _)) = split_ref(r) else {
            return Ok(());
        };
        let old_uid = claim.uids.get(name).map(String::as_str);
        let selector = format!("tekton.dev/taskRun={name}");
        let deadline = tokio::time::Instant::now() + self.opts.wait_gone_timeout;
        loop {
            let pods = self
                .cluster
                .list(PODS, ns, &selector, audit)
                .await
                .map_err(|e| cluster_error(&format!("waiting for the pods of {r}"), e))?;
            let pod_prefix = format!("{name}-pod");
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
                    owners.is_empty() || old_uid.is_none_or(|u| owners.contains(&u))
                })
                .filter_map(|p| str_at(p, "/metadata/name"))
                .filter(|n| n.starts_with(&pod_prefix))
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
    /// new uid (a flip back without one is the old failure re-written: informer lag or a stale write).
    async fn started_since(&self, run: &Value, claim: &ClaimedRuns) -> bool {
        let ns = str_at(run, "/metadata/namespace").unwrap_or_default();
        let name = str_at(run, "/metadata/name").unwrap_or_default();
        let selector = format!("tekton.dev/pipelineRun={name}");
        for kind in [super::cluster::TASKRUNS, super::cluster::CUSTOMRUNS] {
            if let Ok(items) = self.cluster.list(kind, ns, &selector, None).await {
                if items.iter().any(|c| claim.is_new(c)) {
                    return true;
                }
            }
        }
        false
    }

    async fn reset_status(
        &self,
        ns: &str,
        name: &str,
        run: &Value,
        deleted: &BTreeSet<String>,
        record: &LastRetry,
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        let rv = resource_version(run)?;
        let message = format!(
            "Retry attempt {} started by {}: re-running {}",
            record.attempt,
            record.by,
            if record.tasks.is_empty() {
                "the remaining tasks".to_string()
            } else {
                record.tasks.join(", ")
            }
        );
        let status = planner::status_reset(run, |n| deleted.contains(n), Utc::now(), &message);
        let patch = json!({"metadata": {"resourceVersion": rv}, "status": status});
        match self
            .cluster
            .merge_patch_status(PIPELINERUNS, ns, name, patch, audit)
            .await
        {
            Ok(_) => {
                debug!(%ns, %name, attempt = record.attempt, "status reset written");
                Ok(())
            }
            Err(e) if e.is_conflict() => Ok(()), // the loop re-reads and decides again
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
        claim: &ClaimedRuns,
        audit: Option<&str>,
    ) -> Result<Option<Value>, ApiError> {
        let deadline = tokio::time::Instant::now() + self.opts.verify_window;
        loop {
            let run = self.get_run(ns, name, audit).await?;
            if is_done(&run) && !self.started_since(&run, claim).await {
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

    /// Rewrites `last-retry` with `change` applied, fenced, re-reading on conflicts.
    pub async fn update_last_retry(
        &self,
        ns: &str,
        name: &str,
        audit: Option<&str>,
        change: impl Fn(&mut LastRetry) -> bool,
    ) -> Result<Option<LastRetry>, ApiError> {
        for _ in 0..8 {
            let run = self.get_run(ns, name, audit).await?;
            let Some(mut record) = records::last_retry(&run) else {
                return Ok(None);
            };
            if !change(&mut record) {
                return Ok(None);
            }
            let rv = resource_version(&run)?;
            match self
                .cluster
                .merge_patch(
                    PIPELINERUNS,
                    ns,
                    name,
                    records::last_retry_patch(&rv, &record),
                    audit,
                )
                .await
            {
                Ok(_) => return Ok(Some(record)),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(cluster_error("recording the retry", e)),
            }
        }
        warn!(%ns, %name, "gave up updating last-retry after repeated conflicts");
        Ok(None)
    }

    /// Copies an attempt's outcome into the history index (best effort, re-read on conflicts).
    pub async fn record_history_outcome(
        &self,
        ns: &str,
        run: &str,
        attempt: u32,
        end: &str,
        outcome: &str,
    ) {
        let name = records::history_name(run);
        for _ in 0..5 {
            let Ok(mut cm) = self.cluster.get(CONFIGMAPS, ns, &name, None).await else {
                return;
            };
            let mut data = cm
                .get("data")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if !records::set_index_outcome(&mut data, attempt, end, outcome) {
                return;
            }
            cm["data"] = Value::Object(data);
            match self.cluster.replace(CONFIGMAPS, ns, &name, cm, None).await {
                Ok(_) => return,
                Err(e) if e.is_conflict() => continue,
                Err(e) => {
                    warn!(%ns, %run, error = %e, "could not record the outcome in the attempt history");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn child(name: &str, uid: &str, created: &str) -> Value {
        json!({"metadata": {"name": name, "uid": uid, "creationTimestamp": created}})
    }

    #[test]
    fn a_run_recreated_under_the_same_name_is_new_even_within_the_same_second() {
        let record = LastRetry {
            attempt: 2,
            start: "2026-11-26T20:00:00Z".into(),
            deleted_runs: vec![run_ref("TaskRun", "r-b", "uid-old")],
            ..Default::default()
        };
        let claim = ClaimedRuns::of(&record);
        assert!(!claim.is_new(&child("r-b", "uid-old", "2026-11-26T19:59:00Z")));
        assert!(claim.is_new(&child("r-b", "uid-new", "2026-11-26T20:00:00Z")));
        // A kept run created in the claim's second is not mistaken for a new one.
        assert!(!claim.is_new(&child("r-a", "uid-a", "2026-11-26T20:00:00Z")));
    }

    #[test]
    fn references_without_uid_fall_back_to_the_creation_time() {
        let record = LastRetry {
            attempt: 2,
            start: "2026-11-26T20:00:00Z".into(),
            deleted_runs: vec!["TaskRun/r-b".into()],
            ..Default::default()
        };
        let claim = ClaimedRuns::of(&record);
        assert!(claim.is_new(&child("r-c", "u", "2026-11-26T20:00:01Z")));
        assert!(!claim.is_new(&child("r-c", "u", "2026-11-26T20:00:00Z")));
        assert_eq!(split_ref("TaskRun/r-b"), Some(("TaskRun", "r-b", None)));
        assert_eq!(
            split_ref("TaskRun/r-b/u1"),
            Some(("TaskRun", "r-b", Some("u1")))
        );
    }
}

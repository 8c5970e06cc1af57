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
use crate::tekton::{ChildView, ObjectView, PipelineRunView, PipelineSpecView};
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use tracing::{debug, info};

use super::cluster::{
    child_run_resource, Cluster, ClusterError, CUSTOMRUNS, PIPELINERUNS, PODS, RUN, RUN_STATUS,
    TASKRUNS,
};
use super::planner;
use super::record::history::{self, ArchivedRun, AttemptArchive};
use super::record::{controlled_by, mirror, shows_old_outcome, AttemptRecord, RecordStore, RunRef};
use super::refusal::Refusal;
use super::tracked::Tracked;
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
    /// Archive the tail of each step's log (`get pods/log`) with the replaced runs; without it
    /// the history keeps the runs only.
    pub archive_logs: bool,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            wait_gone_timeout: Duration::from_secs(20),
            verify_window: Duration::from_secs(2),
            poll_interval: Duration::from_millis(50),
            max_reset_rounds: 6,
            archive_logs: true,
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
    ObjectView::new(obj).is_done()
}

fn spec_status(obj: &Value) -> Option<&str> {
    ObjectView::new(obj).spec_status()
}

fn resource_version(obj: &Value) -> Result<String, ApiError> {
    ObjectView::new(obj)
        .resource_version()
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::internal(
                "the Kubernetes API returned a PipelineRun without metadata.resourceVersion",
            )
        })
}

/// A write to the run refused by admission (Tekton's webhook validates even status and metadata
/// writes like the whole object, fixture retries/06): a 422 that says why, never a 500.
pub fn rejected_by_admission(ns: &str, name: &str, what: &str, message: &str) -> Refusal {
    planner::inline_spec_refusal(name, message).unwrap_or_else(|| Refusal::StatusRejected {
        namespace: ns.to_string(),
        run: name.to_string(),
        what: what.to_string(),
        message: message.to_string(),
    })
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
    ) -> Result<Children, ClusterError> {
        let (name, uid) = (ObjectView::new(run).name(), ObjectView::new(run).uid());
        let selector = format!("tekton.dev/pipelineRun={name}");
        let mut out = Children::default();
        for resource in child_run_resources(run) {
            match self.cluster.list_at(resource, ns, &selector, audit).await {
                Ok((items, rv)) => {
                    let items: Vec<Value> = items
                        .into_iter()
                        .map(|mut c| {
                            // List items may lack `kind`; the planner and archive need it.
                            if c.get("kind").is_none() {
                                c["kind"] = json!(resource.kind);
                            }
                            c
                        })
                        .collect();
                    out.owned
                        .extend(items.iter().filter(|c| controlled_by(c, uid)).cloned());
                    if resource == TASKRUNS {
                        out.taskruns = items;
                        out.taskruns_rv = rv;
                    }
                }
                // CustomRuns may not be installed; a missing resource means there are none.
                Err(ClusterError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The steps after the claim for the attempt `record` on `run` (as last read). `children`
    /// are the run's children as listed for the plan; a roll-forward passes `None` and they are
    /// listed again. Safe to call again after any failure. Returns the run as last seen, running
    /// the new attempt (or already done with its outcome).
    ///
    /// Waits are watches: the run's TaskRuns and the run itself are watched from the state read,
    /// the pods of the deleted TaskRuns from a list; nothing is polled.
    pub async fn complete(
        &self,
        ns: &str,
        run: &Value,
        record: &AttemptRecord,
        children: Option<Children>,
        audit: Option<&str>,
    ) -> Result<Value, ApiError> {
        let name = record.name.as_str();
        let uid = record.uid.as_str();
        if !ObjectView::new(run).has_uid(uid) {
            return Err(replaced(ns, name));
        }
        let children = match children {
            Some(c) => c,
            None => self
                .owned_children(ns, run, audit)
                .await
                .map_err(|e| cluster_error("listing the child runs", e))?,
        };
        let selector = format!("tekton.dev/pipelineRun={name}");
        let mut taskruns = Tracked::from_list(
            &self.cluster,
            TASKRUNS,
            ns,
            &selector,
            "",
            children.taskruns,
            children.taskruns_rv,
        );
        // Open before anything is deleted, so no deletion or re-creation goes unseen.
        taskruns
            .watch(audit)
            .await
            .map_err(|e| cluster_error("watching the child runs", e))?;
        let mut runs = Tracked::from_list(
            &self.cluster,
            PIPELINERUNS,
            ns,
            "",
            &format!("metadata.name={name}"),
            vec![run.clone()],
            ObjectView::new(run)
                .resource_version()
                .unwrap_or_default()
                .to_string(),
        );

        // Archive every run the attempt replaces, before anything is deleted.
        let present: Vec<Value> = children
            .owned
            .into_iter()
            .filter(|c| record.replaces_uid(ObjectView::new(c).uid()))
            .collect();
        let archivable: Vec<&Value> = present
            .iter()
            .filter(|c| !ObjectView::new(c).is_deleting() || is_done(c))
            .collect();
        if !archivable.is_empty() {
            self.archive(record, &archivable, audit).await?;
        }

        // Delete (foreground, uid precondition, all at once) and wait until the runs and their
        // pods are gone.
        let now_refs: Vec<&RunRef> = record.replace_now.iter().collect();
        self.delete_all(ns, &now_refs, &present, audit).await?;
        self.wait_gone(ns, &now_refs, &mut taskruns, audit).await?;
        // A run deleted by hand with `--cascade=orphan` left its pod without an owner: Tekton
        // re-creates the run under its referenced name and adopts that pod (fixture orphan-pod).
        let orphaned: Vec<RunRef> = record
            .drop_references
            .iter()
            .map(|n| RunRef::new("TaskRun", n, ""))
            .collect();
        let orphaned: Vec<&RunRef> = orphaned.iter().collect();
        self.wait_gone(ns, &orphaned, &mut taskruns, audit).await?;

        // Status write, spec.status clear, acknowledgement by the controller; repeated on races.
        let message = planner::reset_message(record);
        let mut deferred_done = record.replace_after_spec_clear.is_empty();
        let mut reset_written = false;
        let mut rounds = 0;
        let mut verify_until: Option<tokio::time::Instant> = None;
        loop {
            let Some(current) = runs.named(name).cloned() else {
                return Err(ApiError::not_found(format!(
                    "pipelineruns.tekton.dev \"{name}\" not found in namespace \"{ns}\": it was deleted while it was being retried"
                )));
            };
            if !ObjectView::new(&current).has_uid(uid) {
                return Err(replaced(ns, name));
            }
            if is_done(&current) && refailed_by_tekton(&current, reset_written) {
                info!(%ns, %name, "Tekton failed the reset run before creating any child; that is the attempt's outcome");
                return Ok(current);
            }
            let new_child = taskruns
                .objects
                .values()
                .any(|c| controlled_by(c, uid) && record.is_new(c));
            if is_done(&current) && shows_old_outcome(&current, record, new_child) {
                rounds += 1;
                if rounds > self.opts.max_reset_rounds {
                    return Err(ApiError::timeout(format!(
                        "the Tekton controller kept setting pipelinerun {ns}/{name} back to done after {} status writes; \
                         the attempt stays recorded and is completed by the next retry request",
                        self.opts.max_reset_rounds
                    )));
                }
                match self.reset_status(ns, &current, record, audit).await? {
                    Some(written) => {
                        reset_written = true;
                        if spec_status(&current).is_some() {
                            // At once, with the reset's resourceVersion: while spec.status is
                            // set, every Tekton reconcile completes the reset run again (a
                            // gracefully stopped run whose remaining tasks were skipped is done
                            // again within milliseconds), and waiting for the next event first
                            // loses that race every round.
                            let rv = resource_version(&written)?;
                            if let Some(cleared) =
                                self.clear_spec_status(ns, name, &rv, audit).await?
                            {
                                runs.objects.insert(uid.to_string(), cleared);
                                continue;
                            }
                        }
                        runs.objects.insert(uid.to_string(), written);
                    }
                    None => {
                        self.next_event(&mut runs, &mut taskruns, None, audit)
                            .await?;
                    }
                }
                continue;
            }
            if spec_status(&current).is_some() && !is_done(&current) {
                // The webhook refuses spec changes on a done run, so this follows the reset.
                let rv = resource_version(&current)?;
                match self.clear_spec_status(ns, name, &rv, audit).await? {
                    Some(cleared) => {
                        runs.objects.insert(uid.to_string(), cleared);
                    }
                    None => {
                        self.next_event(&mut runs, &mut taskruns, None, audit)
                            .await?;
                    }
                }
                continue;
            }
            if !deferred_done {
                // Finally runs of a gracefully cancelled run: only now (fixture cancelled-finally-trap).
                let refs: Vec<&RunRef> = record
                    .replace_after_spec_clear
                    .iter()
                    .filter(|r| !record.replace_now.contains(r))
                    .collect();
                let still: Vec<Value> = taskruns
                    .objects
                    .values()
                    .filter(|c| controlled_by(c, uid))
                    .cloned()
                    .chain(
                        present
                            .iter()
                            .filter(|c| ObjectView::new(c).kind() != "TaskRun")
                            .cloned(),
                    )
                    .collect();
                self.delete_all(ns, &refs, &still, audit).await?;
                self.wait_gone(ns, &refs, &mut taskruns, audit).await?;
                deferred_done = true;
                continue;
            }
            if acknowledged(&current, new_child, &message) {
                self.remove_annotations(ns, &current, record, audit).await;
                return Ok(current);
            }
            // Not taken up yet: wait for the controller, at most the verification window.
            let until = *verify_until
                .get_or_insert_with(|| tokio::time::Instant::now() + self.opts.verify_window);
            if !self
                .next_event(&mut runs, &mut taskruns, Some(until), audit)
                .await?
            {
                info!(%ns, %name, "the controller did not react within the verification window; the run is running");
                self.remove_annotations(ns, &current, record, audit).await;
                return Ok(current);
            }
        }
    }

    /// Waits for the next change of the run or its TaskRuns; `false` when `until` passed first.
    async fn next_event(
        &self,
        runs: &mut Tracked,
        taskruns: &mut Tracked,
        until: Option<tokio::time::Instant>,
        audit: Option<&str>,
    ) -> Result<bool, ApiError> {
        let until =
            until.unwrap_or_else(|| tokio::time::Instant::now() + self.opts.wait_gone_timeout);
        tokio::select! {
            r = runs.next(audit) => r.map_err(|e| cluster_error("watching the pipelinerun", e))?,
            r = taskruns.next(audit) => r.map_err(|e| cluster_error("watching the child runs", e))?,
            _ = tokio::time::sleep_until(until) => return Ok(false),
        }
        Ok(true)
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
            let view = ObjectView::new(child);
            let kind = match view.kind() {
                "" => "TaskRun",
                k => k,
            }
            .to_string();
            let name = view.name().to_string();
            let task = view
                .label(crate::tekton::child::PIPELINE_TASK_LABEL)
                .unwrap_or_default()
                .to_string();
            let mut logs = std::collections::BTreeMap::new();
            if kind == "TaskRun" && self.opts.archive_logs {
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
            attempt: record.retry.attempt.saturating_sub(1),
            archived_at: record.retry.start.clone(),
            runs,
            truncated: false,
        };
        self.store
            .archive(record, &archive, audit)
            .await
            .map_err(|e| cluster_error("writing the attempt history", e))
    }

    /// Deletes, all at once (foreground, uid precondition), the runs of `refs` that are still in
    /// `present` and not already being deleted.
    async fn delete_all(
        &self,
        ns: &str,
        refs: &[&RunRef],
        present: &[Value],
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        let deletes = refs.iter().filter_map(|r| {
            let obj = present
                .iter()
                .find(|c| ObjectView::new(c).has_uid(&r.uid))?;
            if ObjectView::new(obj).is_deleting() {
                return None;
            }
            let k = child_run_resource(&r.kind)?;
            Some(async move {
                match self
                    .cluster
                    .delete_foreground(k, ns, &r.name, &r.uid, audit)
                    .await
                {
                    Ok(()) => {
                        info!(%ns, run = %r, "deleted child run");
                        Ok(())
                    }
                    Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
                    Err(e) => Err(cluster_error(&format!("deleting {r}"), e)),
                }
            })
        });
        for result in futures::future::join_all(deletes).await {
            result?;
        }
        Ok(())
    }

    /// Waits until the runs of `refs` are gone (their recorded uids no longer exist) and so are
    /// the pods of the TaskRuns among them: a leftover `<taskrun>-pod` is adopted by the
    /// re-created TaskRun, which then fails at once with the old result (fixture orphan-pod). A pod
    /// counts as left over when it is owned by the deleted TaskRun (its recorded uid) or by
    /// nothing; the pod of a TaskRun Tekton already re-created (another owner uid) does not.
    async fn wait_gone(
        &self,
        ns: &str,
        refs: &[&RunRef],
        taskruns: &mut Tracked,
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        if refs.is_empty() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.opts.wait_gone_timeout;
        // CustomRuns and child PipelineRuns (rare) are waited for by reading them.
        for r in refs.iter().filter(|r| r.kind != "TaskRun") {
            self.wait_gone_by_reading(ns, r, deadline, audit).await?;
        }
        let trs: Vec<&RunRef> = refs
            .iter()
            .copied()
            .filter(|r| r.kind == "TaskRun")
            .collect();
        if trs.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = trs.iter().map(|r| r.name.as_str()).collect();
        let mut pods = Tracked::list(
            &self.cluster,
            PODS,
            ns,
            &format!("tekton.dev/taskRun in ({})", names.join(",")),
            audit,
        )
        .await
        .map_err(|e| cluster_error("listing the pods of the deleted runs", e))?;
        loop {
            let runs_left: Vec<String> = trs
                .iter()
                .filter(|r| taskruns.objects.contains_key(&r.uid))
                .map(|r| r.to_string())
                .collect();
            let pods_left: Vec<String> = pods
                .objects
                .values()
                .filter(|p| leftover_pod(p, &trs))
                .map(|p| ObjectView::new(p).name())
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            if runs_left.is_empty() && pods_left.is_empty() {
                return Ok(());
            }
            // Open the pods' watch outside the select: a watch request still being opened when
            // a TaskRun event wins the select would be dropped and opened a second time.
            pods.watch(audit)
                .await
                .map_err(|e| cluster_error("watching the pods of the deleted runs", e))?;
            let progressed = tokio::select! {
                r = taskruns.next(audit) => { r.map_err(|e| cluster_error("watching the child runs", e))?; true }
                r = pods.next(audit) => { r.map_err(|e| cluster_error("watching the pods of the deleted runs", e))?; true }
                _ = tokio::time::sleep_until(deadline) => false,
            };
            if !progressed {
                return Err(if runs_left.is_empty() {
                    ApiError::timeout(format!(
                        "the pods {pods_left:?} in {ns} are still there {:?} after their TaskRuns were deleted; a re-created TaskRun would adopt them \
                         and fail at once, so the run was not reset. Delete them, then retry again",
                        self.opts.wait_gone_timeout
                    ))
                } else {
                    // Name the finalizers holding the first run left, if any.
                    let held = trs
                        .iter()
                        .find(|r| taskruns.objects.contains_key(&r.uid))
                        .copied();
                    match held {
                        Some(r) => not_gone(
                            ns,
                            r,
                            taskruns.objects.get(&r.uid),
                            self.opts.wait_gone_timeout,
                        ),
                        None => ApiError::timeout(format!(
                            "{} in {ns} not gone {:?} after deletion; the retry resumes on the next request",
                            runs_left.join(", "),
                            self.opts.wait_gone_timeout
                        )),
                    }
                });
            }
        }
    }

    async fn wait_gone_by_reading(
        &self,
        ns: &str,
        r: &RunRef,
        deadline: tokio::time::Instant,
        audit: Option<&str>,
    ) -> Result<(), ApiError> {
        let Some(k) = child_run_resource(&r.kind) else {
            return Ok(());
        };
        loop {
            let last_seen = match self.cluster.get(k, ns, &r.name, audit).await {
                Err(e) if e.is_not_found() => return Ok(()),
                Ok(o) if !ObjectView::new(&o).has_uid(&r.uid) => return Ok(()),
                Ok(o) => o,
                Err(e) => return Err(cluster_error(&format!("waiting for {r} to be deleted"), e)),
            };
            if tokio::time::Instant::now() > deadline {
                return Err(not_gone(
                    ns,
                    r,
                    Some(&last_seen),
                    self.opts.wait_gone_timeout,
                ));
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }

    /// Writes the status reset of the record's run fenced by `run`'s resourceVersion. `Some(run)`
    /// as written; `None` when it lost a race (the run changed: decide again on its next event).
    async fn reset_status(
        &self,
        ns: &str,
        run: &Value,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) -> Result<Option<Value>, ApiError> {
        let name = record.name.as_str();
        let rv = resource_version(run)?;
        let status = planner::attempt_status_reset(run, record, Utc::now());
        let patch = json!({"metadata": {"resourceVersion": rv}, "status": status});
        match self
            .cluster
            .merge_patch(RUN_STATUS, (ns, name), patch, audit)
            .await
        {
            Ok(written) => {
                debug!(%ns, %name, attempt = record.retry.attempt, "status reset written");
                Ok(Some(written))
            }
            Err(e) if e.is_conflict() => Ok(None),
            Err(ClusterError::Api {
                code: 400, message, ..
            })
            | Err(ClusterError::Api {
                code: 422, message, ..
            }) => {
                // The webhook validates status writes like the whole object (fixture retries/06).
                Err(rejected_by_admission(ns, name, "status reset", &message).into())
            }
            Err(e) => Err(cluster_error("writing the status reset", e)),
        }
    }

    /// Clears `spec.status` of the run at resourceVersion `rv`. `Some(run)` as written; `None`
    /// when it lost a race (409, or 400 when the run is done again: race 1, fixtures
    /// cancelled/04–06): the caller waits for the next event and decides again.
    async fn clear_spec_status(
        &self,
        ns: &str,
        name: &str,
        rv: &str,
        audit: Option<&str>,
    ) -> Result<Option<Value>, ApiError> {
        let patch = json!({"metadata": {"resourceVersion": rv}, "spec": {"status": null}});
        match self
            .cluster
            .merge_patch(RUN, (ns, name), patch, audit)
            .await
        {
            Ok(written) => {
                debug!(%ns, %name, "cleared spec.status");
                Ok(Some(written))
            }
            Err(e) if e.is_conflict() => {
                debug!(%ns, %name, "spec.status clear lost a race");
                Ok(None)
            }
            Err(ClusterError::Api {
                code: 400, message, ..
            }) => {
                debug!(%ns, %name, %message, "spec.status clear refused: done again");
                Ok(None)
            }
            Err(e) => Err(cluster_error("clearing spec.status", e)),
        }
    }

    /// Removes the other controllers' annotations the record names (`chains.tekton.dev/*`) from
    /// its run once running again, fenced by the run's resourceVersion. Best effort: the
    /// recorder re-asserts the removal while the run is not done.
    async fn remove_annotations(
        &self,
        ns: &str,
        run: &Value,
        record: &AttemptRecord,
        audit: Option<&str>,
    ) {
        let name = record.name.as_str();
        if is_done(run) {
            return;
        }
        if let Some(patch) = mirror::removal_patch(run, record) {
            match self
                .cluster
                .merge_patch(RUN, (ns, name), patch, audit)
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
    ) -> Result<Value, ClusterError> {
        self.cluster
            .merge_patch(
                RUN,
                (&record.namespace, &record.name),
                mirror::patch(record, None),
                audit,
            )
            .await
    }
}

/// The resources of the child runs the run can have: TaskRuns always; CustomRuns and child PipelineRuns
/// only when a pipeline task is a custom task (`TaskRef.IsCustomTask`: `apiVersion` and `kind`
/// set) or a pipeline (`IsChildPipeline`: `pipelineRef` or `pipelineSpec`), or `childReferences`
/// already names one. Tekton creates no other kind of child (pipelinerun.go
/// `runNextSchedulableTask`), so the others are not listed.
fn child_run_resources(run: &Value) -> Vec<super::cluster::Resource> {
    // The resolved spec and the inline one: either may name a custom task or a pipeline.
    let specs = [&run["status"]["pipelineSpec"], &run["spec"]["pipelineSpec"]]
        .map(PipelineSpecView::from_json);
    let (mut custom, mut pipelines) = (false, false);
    for t in specs.iter().flat_map(|s| s.all()).map(|t| t.json) {
        let custom_ref = |v: Option<&Value>| {
            v.is_some_and(|r| {
                r.get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|a| !a.is_empty())
                    && r.get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| !k.is_empty())
            })
        };
        custom |= custom_ref(t.get("taskRef")) || custom_ref(t.get("taskSpec"));
        pipelines |= t.get("pipelineRef").is_some() || t.get("pipelineSpec").is_some();
    }
    for r in PipelineRunView::new(run).child_references() {
        match r.kind {
            Some("CustomRun") => custom = true,
            Some("PipelineRun") => pipelines = true,
            _ => {}
        }
    }
    let mut resources = vec![TASKRUNS];
    if custom {
        resources.push(CUSTOMRUNS);
    }
    if pipelines {
        resources.push(PIPELINERUNS);
    }
    resources
}

/// A run's child runs as listed: those it controls (every kind), and the TaskRuns the label
/// selected with the list's resourceVersion (where the executor's watch starts).
#[derive(Clone, Debug, Default)]
pub struct Children {
    pub owned: Vec<Value>,
    pub taskruns: Vec<Value>,
    pub taskruns_rv: String,
}

/// Whether the controller has taken the reset run up: it created a run of this attempt, rewrote
/// the condition of the reset (its first reconcile does), or already ended the attempt.
fn acknowledged(run: &Value, new_child: bool, reset_message: &str) -> bool {
    if new_child {
        return true;
    }
    let view = crate::tekton::ObjectView::new(run);
    if view.is_done() {
        // Ended since the reset (not an old outcome, or the loop would have reset it).
        return true;
    }
    view.message().is_some_and(|m| m != reset_message)
}

/// A pod of one of `deleted` TaskRuns that a re-created TaskRun would adopt: named after the
/// TaskRun (`<taskrun>-pod…`) and owned by the deleted TaskRun's uid or by nothing.
fn leftover_pod(pod: &Value, deleted: &[&RunRef]) -> bool {
    let pod = ObjectView::new(pod);
    let owners: Vec<&str> = pod
        .owner_references()
        .iter()
        .filter_map(|o| o.get("uid").and_then(Value::as_str))
        .collect();
    let name = pod.name();
    deleted.iter().any(|r| {
        (name.starts_with(&format!("{}-pod", r.name)) || is_attempt_pod_name(name))
            && (owners.is_empty() || owners.contains(&r.uid.as_str()))
    })
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
    let earlier = ChildView::with_fallback(taskrun, Some("TaskRun"))
        .map(|c| c.retries_status())
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
mod tests;

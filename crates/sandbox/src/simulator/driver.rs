//! The simulator against a Kubernetes API: a loop that lists PipelineRuns, TaskRuns, Pods,
//! Pipelines and Tasks in all namespaces, runs the pure reconcilers and the fake kubelet, and writes
//! their actions. A pass runs on every watch event of PipelineRuns, TaskRuns and Pods (kube-runtime
//! `watcher`, like the controller's informers), every [`SimulatorOptions::resync`], and again at
//! once while the previous pass wrote something.
//!
//! Status writes follow knative's generated reconciler (`reconciler.RetryUpdateConflicts` in the
//! generated `updateStatus`): PUT the desired status with the resourceVersion that was read; on 409
//! re-GET and PUT the *same desired status* onto the fresh object. With
//! [`SimulatorOptions::stale_read_lag`] the PipelineRun status is written that long after the read,
//! which reproduces race 2 of fixture `cancelled/` (07–09) deterministically: a spec change made in
//! that window is followed by the stale `False/Cancelled` status.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use super::api::SimulatorError;
use super::api::{create_unless_exists, from_value, is_status, pods, tekton, to_value};
use super::kubelet::{self, FakeKubelet, OutcomeRules};
use super::pipelinerun::{reconcile_pipelinerun_with, PipelineRunActions};
use super::placement::{self, Workspaces};
use super::rules;
use super::taskrun::{pod_name_for, reconcile_taskrun, TaskRunActions};
use super::util::{self, get_str};

/// Knobs of the simulator; [`SimulatorHandle`] changes them at runtime.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// Resync period of the loop.
    pub resync: Duration,
    /// Write each PipelineRun status this long after reading the run (race-2 knob).
    pub stale_read_lag: Option<Duration>,
    /// Run the fake kubelet (off when something else completes pods).
    pub kubelet: bool,
    /// Trigger passes from watch events (else only the resync period).
    pub watch: bool,
    /// How long a PipelineRun reconcile that does work takes before its deferred
    /// `syncMetadata` runs: a label or annotation someone else writes in that window is written
    /// back to its reconcile-start value (the issue real Tekton shows ~0.5 s after a write).
    pub metadata_sync_lag: Option<Duration>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            resync: Duration::from_millis(200),
            stale_read_lag: None,
            kubelet: true,
            watch: true,
            metadata_sync_lag: None,
        }
    }
}

/// The simulator's state; [`Simulator::pass`] is one deterministic pass (tests may call it directly
/// instead of starting the loop).
pub struct Simulator {
    client: Client,
    options: Arc<Mutex<SimulatorOptions>>,
    kubelet: FakeKubelet,
    /// Metadata writes of `syncMetadata` that put back a value someone else had changed.
    reverts: Arc<AtomicU64>,
    /// PipelineRun status writes that landed after a conflict: the desired status computed from
    /// an older read, written over someone else's change (knative's retry on conflict; race 2).
    stale_writes: Arc<AtomicU64>,
}

/// Handle of a running simulator loop.
pub struct SimulatorHandle {
    options: Arc<Mutex<SimulatorOptions>>,
    reverts: Arc<AtomicU64>,
    stale_writes: Arc<AtomicU64>,
    /// Passes the loop completed (each read every run and reconciled it).
    passes: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    watchers: Vec<JoinHandle<()>>,
}

impl SimulatorHandle {
    /// Changes the stale-read lag knob at runtime.
    pub fn set_stale_read_lag(&self, lag: Option<Duration>) {
        if let Ok(mut o) = self.options.lock() {
            o.stale_read_lag = lag;
        }
    }

    /// Changes the metadata-sync lag knob at runtime.
    pub fn set_metadata_sync_lag(&self, lag: Option<Duration>) {
        if let Ok(mut o) = self.options.lock() {
            o.metadata_sync_lag = lag;
        }
    }

    /// How many times `syncMetadata` wrote back a label or annotation someone else had changed.
    pub fn metadata_reverts(&self) -> u64 {
        self.reverts.load(Ordering::Relaxed)
    }

    /// How many status writes landed after a conflict, over someone else's change.
    pub fn stale_status_writes(&self) -> u64 {
        self.stale_writes.load(Ordering::Relaxed)
    }

    /// How many passes the loop completed. Two more than at some moment means that a whole pass
    /// (a fresh read of every run, and its reconcile) began after that moment: how a test knows
    /// the controller has looked at what it created, and left it alone.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// Turns the fake kubelet on or off.
    pub fn set_kubelet(&self, on: bool) {
        if let Ok(mut o) = self.options.lock() {
            o.kubelet = on;
        }
    }

    /// Stops the loop and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for w in &self.watchers {
            w.abort();
        }
        let _ = self.task.await;
        for w in self.watchers {
            let _ = w.await;
        }
    }
}

impl Simulator {
    /// A simulator that has not started.
    pub fn new(client: Client, options: SimulatorOptions) -> Self {
        Simulator {
            client,
            options: Arc::new(Mutex::new(options)),
            kubelet: FakeKubelet::new(),
            reverts: Arc::new(AtomicU64::new(0)),
            stale_writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Starts the loop on the current tokio runtime.
    pub fn start(client: Client, options: SimulatorOptions) -> SimulatorHandle {
        let wake = Arc::new(Notify::new());
        let mut watchers = Vec::new();
        if options.watch {
            for ar in [
                tekton("PipelineRun", "pipelineruns"),
                tekton("TaskRun", "taskruns"),
                pods(),
            ] {
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
                let wake = wake.clone();
                watchers.push(tokio::spawn(async move {
                    let mut events =
                        Box::pin(watcher(api, watcher::Config::default()).default_backoff());
                    while let Some(ev) = events.next().await {
                        if ev.is_ok() {
                            wake.notify_one();
                        }
                    }
                }));
            }
        }
        let mut sim = Simulator::new(client, options);
        let opts = sim.options.clone();
        let reverts = sim.reverts.clone();
        let stale_writes = sim.stale_writes.clone();
        let passes = Arc::new(AtomicU64::new(0));
        let completed = passes.clone();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let writes = match sim.pass().await {
                    Ok(w) => {
                        completed.fetch_add(1, Ordering::Relaxed);
                        w
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "tekton simulator pass failed");
                        0
                    }
                };
                let resync = sim.options().resync;
                let wait = if writes > 0 {
                    Duration::from_millis(10)
                } else {
                    resync
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = wake.notified() => {}
                    _ = stopped.changed() => break,
                }
                if *stopped.borrow() {
                    break;
                }
            }
        });
        SimulatorHandle {
            options: opts,
            reverts,
            stale_writes,
            passes,
            stop,
            task,
            watchers,
        }
    }

    fn options(&self) -> SimulatorOptions {
        self.options.lock().map(|o| o.clone()).unwrap_or_default()
    }

    async fn list(&self, ar: &ApiResource) -> Result<Vec<Value>, SimulatorError> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), ar);
        let list = api.list(&ListParams::default()).await?;
        list.items
            .iter()
            .map(|o| to_value(o, ar).map_err(SimulatorError::from))
            .collect()
    }

    fn api(&self, ns: &str, ar: &ApiResource) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, ar)
    }

    /// knative-style status write: PUT with the read resourceVersion, on 409 re-GET and PUT the
    /// desired status onto the latest object (a few attempts).
    async fn write_status(
        &self,
        ar: &ApiResource,
        read: &Value,
        status: &Value,
    ) -> Result<bool, SimulatorError> {
        let api = self.api(util::namespace(read), ar);
        let name = util::name(read);
        let mut body = read.clone();
        body["status"] = status.clone();
        let mut conflicted = false;
        for _ in 0..5 {
            match api
                .replace_status(name, &PostParams::default(), &from_value(body.clone())?)
                .await
            {
                Ok(_) => {
                    if conflicted && ar.kind == "PipelineRun" {
                        self.stale_writes.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(true);
                }
                Err(e) if is_status(&e, kube::core::Status::is_conflict) => {
                    conflicted = true;
                    let latest = match api.get(name).await {
                        Ok(o) => to_value(&o, ar)?,
                        Err(e) if is_status(&e, kube::core::Status::is_not_found) => {
                            return Ok(false)
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if latest.get("status") == Some(status) {
                        return Ok(false);
                    }
                    body = latest;
                    body["status"] = status.clone();
                }
                Err(e) if is_status(&e, kube::core::Status::is_not_found) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }

    async fn apply_pipelinerun(
        &self,
        pr: &Value,
        actions: PipelineRunActions,
        lag: Option<Duration>,
        ws: &Workspaces,
    ) -> Result<usize, SimulatorError> {
        let ns = util::namespace(pr);
        let tr_api = self.api(ns, &tekton("TaskRun", "taskruns"));
        let mut writes = 0;
        // Claims and assistants before the TaskRuns that use them (pr.go `reconcile`).
        for obj in actions.ensure_objects {
            writes += placement::create_if_absent(&self.client, ws, obj).await?;
        }
        for (kind, name) in actions.delete_objects {
            writes += placement::delete_if_present(&self.client, ws, ns, kind, &name).await?;
        }
        for tr in actions.create_taskruns {
            writes += create_unless_exists(&tr_api, tr).await?;
        }
        let pr_api = self.api(ns, &tekton("PipelineRun", "pipelineruns"));
        for child in actions.create_pipelineruns {
            writes += create_unless_exists(&pr_api, child).await?;
        }
        for c in actions.cancel_taskruns {
            let patch = json!({"spec": {"status": rules::TR_SPEC_CANCELLED, "statusMessage": c.status_message}});
            match tr_api
                .patch(&c.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => writes += 1,
                // NotFound and the webhook's refusal on done TaskRuns are ignored (cancel.go).
                Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let pr_ar = tekton("PipelineRun", "pipelineruns");
        if !actions.add_labels.is_empty() {
            let patch = json!({"metadata": {"labels": actions.add_labels}});
            if self
                .api(ns, &pr_ar)
                .patch(
                    util::name(pr),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .is_ok()
            {
                writes += 1;
            }
        }
        if let Some(status) = actions.status {
            if let Some(l) = lag {
                tokio::time::sleep(l).await;
            }
            if self.write_status(&pr_ar, pr, &status).await? {
                writes += 1;
            }
        }
        Ok(writes)
    }

    async fn apply_taskrun(
        &self,
        tr: &Value,
        actions: TaskRunActions,
    ) -> Result<usize, SimulatorError> {
        let ns = util::namespace(tr);
        let pod_api = self.api(ns, &pods());
        let mut writes = 0;
        if let Some(p) = actions.create_pod {
            if create_unless_exists(&pod_api, p).await? == 0 {
                // AlreadyExists: the next pass adopts the pod by name (createPod).
                return Ok(writes);
            }
            writes += 1;
        }
        if let Some(p) = actions.delete_pod {
            match pod_api.delete(&p, &DeleteParams::default()).await {
                Ok(_) => writes += 1,
                Err(e) if is_status(&e, kube::core::Status::is_not_found) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(st) = actions.status {
            if self
                .write_status(&tekton("TaskRun", "taskruns"), tr, &st)
                .await?
            {
                writes += 1;
            }
        }
        Ok(writes)
    }

    /// `syncMetadata` (pr.go, deferred in every PipelineRun reconcile, done runs included): reads
    /// the run again (the informer's copy) and, when its labels or annotations differ from the
    /// reconcile's copy, writes `Union(current, reconciled)` with the reconcile's copy winning on
    /// conflicting keys (`updateLabelsAndAnnotations`, `kmap.Union`), by an Update fenced by the
    /// resourceVersion just read. A key someone else changed while the reconcile ran goes back to
    /// its reconcile-start value; a key someone else added survives.
    async fn sync_metadata(&self, reconciled: &Value) -> Result<usize, SimulatorError> {
        let ar = tekton("PipelineRun", "pipelineruns");
        let api = self.api(util::namespace(reconciled), &ar);
        let current = match api.get(util::name(reconciled)).await {
            Ok(o) => to_value(&o, &ar)?,
            Err(e) if is_status(&e, kube::core::Status::is_not_found) => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        if util::uid(&current) != util::uid(reconciled) {
            return Ok(0);
        }
        let mut body = current.clone();
        let mut reverted = false;
        for field in ["labels", "annotations"] {
            let theirs = util::get(reconciled, &["metadata", field])
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let now = util::get(&current, &["metadata", field])
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if theirs == now {
                continue;
            }
            let mut merged = now.clone();
            for (k, v) in theirs {
                if now.get(&k).is_some_and(|n| *n != v) {
                    reverted = true;
                }
                merged.insert(k, v);
            }
            body["metadata"][field] = Value::Object(merged);
        }
        if body == current {
            return Ok(0);
        }
        match api
            .replace(
                util::name(reconciled),
                &PostParams::default(),
                &from_value(body)?,
            )
            .await
        {
            Ok(_) => {
                if reverted {
                    self.reverts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(
                        pipelinerun = util::name(reconciled),
                        "simulator: syncMetadata wrote back older metadata"
                    );
                }
                Ok(1)
            }
            // A conflict or a refusal: the real Update fails the same way and the key is requeued.
            Err(kube::Error::Api(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// One pass over the cluster: TaskRuns, PipelineRuns, then the kubelet. Returns the number of
    /// writes. Only a failed LIST fails the pass; a failed write is logged and retried by a later
    /// pass (the controller requeues the key), so injected API faults do not stop the simulator.
    pub async fn pass(&mut self) -> Result<usize, SimulatorError> {
        let opts = self.options();
        let tr_ar = tekton("TaskRun", "taskruns");
        let pr_ar = tekton("PipelineRun", "pipelineruns");
        let pod_ar = pods();
        let taskruns = self.list(&tr_ar).await?;
        let pipelineruns = self.list(&pr_ar).await?;
        let pipelines = self.list(&tekton("Pipeline", "pipelines")).await?;
        let tasks = self.list(&tekton("Task", "tasks")).await?;
        let all_pods = self.list(&pod_ar).await?;
        let ws = placement::read(&self.client, &pipelineruns, &all_pods).await?;
        let find = |list: &[Value], ns: &str, name: &str| -> Option<Value> {
            list.iter()
                .find(|o| util::namespace(o) == ns && util::name(o) == name)
                .cloned()
        };
        let mut writes = 0;

        for tr in &taskruns {
            let ns = util::namespace(tr);
            let task = get_str(tr, &["spec", "taskRef", "name"]).and_then(|t| find(&tasks, ns, t));
            let pod = find(&all_pods, ns, &pod_name_for(tr));
            let actions = reconcile_taskrun(tr, task.as_ref(), pod.as_ref(), Utc::now());
            if actions.is_empty() {
                continue;
            }
            match self.apply_taskrun(tr, actions).await {
                Ok(w) => writes += w,
                Err(e) => {
                    tracing::warn!(taskrun = util::name(tr), error = %e, "simulator: TaskRun writes failed")
                }
            }
        }

        for pr in &pipelineruns {
            let ns = util::namespace(pr);
            let pipeline =
                get_str(pr, &["spec", "pipelineRef", "name"]).and_then(|p| find(&pipelines, ns, p));
            let ns_tasks: BTreeMap<String, Value> = tasks
                .iter()
                .filter(|t| util::namespace(t) == ns)
                .map(|t| (util::name(t).to_string(), t.clone()))
                .collect();
            // TaskRuns and child PipelineRuns labelled with the run (the informers' lister).
            let children: Vec<Value> = taskruns
                .iter()
                .chain(pipelineruns.iter())
                .filter(|t| {
                    util::namespace(t) == ns
                        && util::label(t, rules::LABEL_PIPELINE_RUN) == Some(util::name(pr))
                })
                .cloned()
                .collect();
            let actions = reconcile_pipelinerun_with(
                pr,
                pipeline.as_ref(),
                &ns_tasks,
                &children,
                Utc::now(),
                ws.mode,
            );
            let housekeeping = actions
                .ensure_objects
                .iter()
                .any(|o| !ws.has(util::kind(o), util::namespace(o), util::name(o)))
                || actions.delete_objects.iter().any(|(k, n)| ws.has(k, ns, n));
            // The reconcile's own copy of the metadata: as read at its start, plus the labels it
            // added (pr.go `propagatePipelineNameLabelToPipelineRun`).
            let mut reconciled = pr.clone();
            for (k, v) in &actions.add_labels {
                reconciled["metadata"]["labels"][k] = Value::String(v.clone());
            }
            let did_work = !actions.is_empty();
            if did_work || housekeeping {
                match self
                    .apply_pipelinerun(pr, actions, opts.stale_read_lag, &ws)
                    .await
                {
                    Ok(w) => writes += w,
                    Err(e) => {
                        tracing::warn!(pipelinerun = util::name(pr), error = %e, "simulator: PipelineRun writes failed")
                    }
                }
            }
            // Only reconciles that did work are long enough for a write to land in between (a
            // done or pending run's reconcile returns at once); reading every run again on every
            // pass would also make the simulator's cost grow with runs that never change.
            if did_work {
                if let Some(lag) = opts.metadata_sync_lag {
                    tokio::time::sleep(lag).await;
                }
                match self.sync_metadata(&reconciled).await {
                    Ok(w) => writes += w,
                    Err(e) => {
                        tracing::debug!(pipelinerun = util::name(pr), error = %e, "simulator: metadata sync failed")
                    }
                }
            }
        }

        // The StatefulSet controller, for the affinity assistants.
        writes += placement::run_statefulsets(&self.client, &ws).await;

        if opts.kubelet {
            let mut live = HashSet::new();
            for pod in &all_pods {
                let ns = util::namespace(pod);
                live.insert(util::uid(pod).to_string());
                // The scheduler: a pod not started yet must be placed first.
                if !self.kubelet.knows(util::uid(pod)) {
                    if let Some(w) = placement::place(&self.client, &ws, pod, &all_pods).await {
                        writes += w;
                        continue;
                    }
                }
                let Some(tr) =
                    util::label(pod, rules::LABEL_TASK_RUN).and_then(|t| find(&taskruns, ns, t))
                else {
                    continue;
                };
                let pr = util::label(pod, rules::LABEL_PIPELINE_RUN)
                    .and_then(|p| find(&pipelineruns, ns, p));
                let rules = OutcomeRules::of_run(pr.as_ref(), &tr);
                let results = kubelet::declared_results(&tr);
                if let Some(patch) = self.kubelet.step(pod, &rules, &results, Utc::now()) {
                    let api = self.api(ns, &pod_ar);
                    match api
                        .patch_status(
                            util::name(pod),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await
                    {
                        Ok(_) => writes += 1,
                        Err(e) => {
                            // Not applied: take the transition back so it is sent again.
                            self.kubelet.revert(util::uid(pod));
                            tracing::warn!(pod = util::name(pod), error = %e, "simulator: pod status patch failed");
                        }
                    }
                }
            }
            self.kubelet.retain_pods(&live);
        }
        Ok(writes)
    }
}

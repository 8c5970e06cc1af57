//! An in-memory "cluster" with a fake clock that drives the pure reconcilers and the fake kubelet
//! serially — the harness for fidelity tests against the recorded fixtures and for engine tests.
//!
//! It keeps Pipelines, Tasks, PipelineRuns, TaskRuns and Pods with uid, resourceVersion and
//! creationTimestamp; `replace_status` and `patch` check resourceVersion preconditions (409);
//! deletion garbage-collects owned objects (foreground/background alike) or orphans them; the
//! Tekton webhook's "no spec change once done" rule is applied to the simulator's own cancel
//! patches. Controller writes are counted so tests can assert "no writes while done".

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use super::kubelet::{self, FakeKubelet, OutcomeRules};
use super::pipelinerun::{reconcile_pipelinerun, PipelineRunActions};
use super::rules;
use super::taskrun::{pod_name_for, reconcile_taskrun};
use super::util::{self, get_str, str_or_empty};

/// The kinds the harness stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// tekton.dev/v1 Pipeline.
    Pipeline,
    /// tekton.dev/v1 Task.
    Task,
    /// tekton.dev/v1 PipelineRun.
    PipelineRun,
    /// tekton.dev/v1 TaskRun.
    TaskRun,
    /// core/v1 Pod.
    Pod,
}

impl Kind {
    /// The kind named by an object's `kind` field.
    pub fn of(obj: &Value) -> Option<Kind> {
        match str_or_empty(obj, &["kind"]) {
            "Pipeline" => Some(Kind::Pipeline),
            "Task" => Some(Kind::Task),
            "PipelineRun" => Some(Kind::PipelineRun),
            "TaskRun" => Some(Kind::TaskRun),
            "Pod" => Some(Kind::Pod),
            _ => None,
        }
    }
}

/// Errors of the in-memory API, named like the apiserver's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemoryError {
    /// 404.
    #[error("{0:?} {1} not found")]
    NotFound(Kind, String),
    /// 409 on create.
    #[error("{0:?} {1} already exists")]
    AlreadyExists(Kind, String),
    /// 409 on a stale resourceVersion.
    #[error("Operation cannot be fulfilled on {0:?} {1:?}: the object has been modified; please apply your changes to the latest version and try again")]
    Conflict(Kind, String),
    /// 400 (unknown kind, missing name, webhook refusal).
    #[error("invalid: {0}")]
    Invalid(String),
}

/// How a deletion treats dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are deleted too (foreground or background: the end state is the same).
    Cascade,
    /// Dependents lose their owner reference and stay (`--cascade=orphan`).
    Orphan,
}

/// A PipelineRun reconcile whose child writes are done but whose status write is still pending —
/// to reproduce the controller writing a status computed from a stale read (race 2 of fixture
/// `cancelled/`).
#[derive(Debug, Clone)]
pub struct StagedStatus {
    /// Namespace.
    pub namespace: String,
    /// Run name.
    pub name: String,
    /// resourceVersion the reconcile read.
    pub read_resource_version: String,
    /// Desired status (None: nothing to write).
    pub status: Option<Value>,
}

type Key = (Kind, String, String);

/// The in-memory cluster.
#[derive(Debug, Clone)]
pub struct MemoryCluster {
    now: DateTime<Utc>,
    objects: BTreeMap<Key, Value>,
    rv: u64,
    uids: u64,
    /// The fake kubelet.
    pub kubelet: FakeKubelet,
    /// Clock step of [`MemoryCluster::run_until`].
    pub tick: TimeDelta,
    /// Every controller write, e.g. `update pipelineruns ns/demo-run status`.
    pub controller_writes: Vec<String>,
    /// Every PipelineRun `Succeeded` condition written, in order: `(namespace/name, status,
    /// reason, message)` — comparable with a fixture's `timeline.txt`.
    pub condition_history: Vec<(String, String, String, String)>,
    /// The same for TaskRuns.
    pub taskrun_condition_history: Vec<(String, String, String, String)>,
}

fn key(kind: Kind, ns: &str, name: &str) -> Key {
    (kind, ns.to_string(), name.to_string())
}

fn resource(kind: Kind) -> &'static str {
    match kind {
        Kind::Pipeline => "pipelines",
        Kind::Task => "tasks",
        Kind::PipelineRun => "pipelineruns",
        Kind::TaskRun => "taskruns",
        Kind::Pod => "pods",
    }
}

impl MemoryCluster {
    /// An empty cluster whose clock starts at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        MemoryCluster {
            now,
            objects: BTreeMap::new(),
            rv: 100,
            uids: 0,
            kubelet: FakeKubelet::new(),
            tick: TimeDelta::milliseconds(100),
            controller_writes: Vec::new(),
            condition_history: Vec::new(),
            taskrun_condition_history: Vec::new(),
        }
    }

    /// The clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Sets the clock (e.g. to wall time when the cluster backs a fake API server).
    pub fn set_now(&mut self, now: DateTime<Utc>) {
        self.now = now;
    }

    /// Moves the clock without running anything.
    pub fn advance(&mut self, d: TimeDelta) {
        self.now += d;
    }

    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    /// Creates an object (namespace from the object or `ns`); fills uid, resourceVersion,
    /// creationTimestamp and generation.
    pub fn create(&mut self, ns: &str, mut obj: Value) -> Result<Value, MemoryError> {
        let kind = Kind::of(&obj).ok_or_else(|| MemoryError::Invalid("unknown kind".into()))?;
        let name = util::name(&obj).to_string();
        if name.is_empty() {
            return Err(MemoryError::Invalid("metadata.name is required".into()));
        }
        let ns = match util::namespace(&obj) {
            "" => ns.to_string(),
            n => n.to_string(),
        };
        let k = key(kind, &ns, &name);
        if self.objects.contains_key(&k) {
            return Err(MemoryError::AlreadyExists(kind, name));
        }
        self.uids += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uids);
        let rv = self.next_rv();
        let now = util::fmt_time(self.now);
        let meta = obj
            .as_object_mut()
            .ok_or_else(|| MemoryError::Invalid("not an object".into()))?
            .entry("metadata")
            .or_insert_with(|| json!({}));
        if !meta.is_object() {
            return Err(MemoryError::Invalid("metadata must be an object".into()));
        }
        meta["namespace"] = ns.clone().into();
        meta["uid"] = uid.into();
        meta["resourceVersion"] = rv.into();
        meta["creationTimestamp"] = now.into();
        meta["generation"] = 1.into();
        self.objects.insert(k, obj.clone());
        Ok(obj)
    }

    /// A copy of an object.
    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        self.objects.get(&key(kind, ns, name)).cloned()
    }

    /// Copies of every object of a kind in a namespace, by name.
    pub fn list(&self, kind: Kind, ns: &str) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, n, _), _)| *k == kind && n == ns)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Copies of every object of a kind in all namespaces.
    pub fn list_all(&self, kind: Kind) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((k, _, _), _)| *k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Names of the objects of a kind in a namespace.
    pub fn names(&self, kind: Kind, ns: &str) -> Vec<String> {
        self.list(kind, ns)
            .iter()
            .map(|o| util::name(o).to_string())
            .collect()
    }

    fn check_rv(kind: Kind, current: &Value, want: Option<&str>) -> Result<(), MemoryError> {
        match want {
            Some(rv)
                if !rv.is_empty()
                    && rv != str_or_empty(current, &["metadata", "resourceVersion"]) =>
            {
                Err(MemoryError::Conflict(kind, util::name(current).to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Updates an existing object with `edit` and gives it the next resourceVersion; `precondition`
    /// (a resourceVersion) must match the stored one. Returns the stored object.
    fn write(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        precondition: Option<&str>,
        edit: impl FnOnce(&mut Value) -> Result<(), MemoryError>,
    ) -> Result<Value, MemoryError> {
        let rv = self.next_rv();
        let cur = self
            .objects
            .get_mut(&key(kind, ns, name))
            .ok_or_else(|| MemoryError::NotFound(kind, name.to_string()))?;
        Self::check_rv(kind, cur, precondition)?;
        edit(cur)?;
        cur["metadata"]["resourceVersion"] = rv.into();
        Ok(cur.clone())
    }

    /// `PUT .../<name>/status`: replaces only `status`; a resourceVersion in `obj` is a precondition.
    pub fn replace_status(&mut self, kind: Kind, obj: &Value) -> Result<Value, MemoryError> {
        let ns = util::namespace(obj).to_string();
        let name = util::name(obj).to_string();
        let precondition = get_str(obj, &["metadata", "resourceVersion"]);
        let out = self.write(kind, &ns, &name, precondition, |cur| {
            match obj.get("status") {
                Some(s) => cur["status"] = s.clone(),
                None => {
                    if let Some(o) = cur.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            Ok(())
        })?;
        if let Some((st, r, m)) = util::succeeded_parts(&out) {
            let entry = (
                format!("{ns}/{name}"),
                st.to_string(),
                r.to_string(),
                m.to_string(),
            );
            match kind {
                Kind::PipelineRun => self.condition_history.push(entry),
                Kind::TaskRun => self.taskrun_condition_history.push(entry),
                _ => {}
            }
        }
        Ok(out)
    }

    /// JSON merge patch of the main resource (status is ignored, as the status subresource rule
    /// says); `resource_version` is a precondition.
    pub fn patch(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        patch: &Value,
        resource_version: Option<&str>,
    ) -> Result<Value, MemoryError> {
        let mut p = patch.clone();
        if let Some(o) = p.as_object_mut() {
            o.remove("status");
        }
        self.write(kind, ns, name, resource_version, |cur| {
            let status = cur.get("status").cloned();
            json_patch::merge(cur, &p);
            if let Some(s) = status {
                cur["status"] = s;
            }
            Ok(())
        })
    }

    /// JSON merge patch of the status subresource (only `status` is applied), as the kubelet's
    /// `PATCH pods/<name>/status`.
    pub fn patch_status(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, MemoryError> {
        self.write(kind, ns, name, None, |cur| {
            if let Some(st) = patch.get("status") {
                let target = cur
                    .as_object_mut()
                    .ok_or_else(|| MemoryError::Invalid("not an object".into()))?
                    .entry("status")
                    .or_insert_with(|| json!({}));
                json_patch::merge(target, st);
            }
            Ok(())
        })
    }

    /// Deletes an object and garbage-collects (or orphans) its dependents.
    pub fn delete(
        &mut self,
        kind: Kind,
        ns: &str,
        name: &str,
        propagation: Propagation,
    ) -> Result<(), MemoryError> {
        let obj = self
            .objects
            .remove(&key(kind, ns, name))
            .ok_or_else(|| MemoryError::NotFound(kind, name.to_string()))?;
        let uid = util::uid(&obj).to_string();
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, v)| {
                util::array(v, &["metadata", "ownerReferences"])
                    .iter()
                    .any(|o| str_or_empty(o, &["uid"]) == uid)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in dependents {
            match propagation {
                Propagation::Cascade => {
                    let _ = self.delete(k.0, &k.1, &k.2, Propagation::Cascade);
                }
                Propagation::Orphan => {
                    let rv = self.next_rv();
                    if let Some(v) = self.objects.get_mut(&k) {
                        if let Some(refs) = v["metadata"]["ownerReferences"].as_array_mut() {
                            refs.retain(|o| str_or_empty(o, &["uid"]) != uid);
                        }
                        if v["metadata"]["ownerReferences"]
                            .as_array()
                            .is_some_and(Vec::is_empty)
                        {
                            if let Some(m) = v["metadata"].as_object_mut() {
                                m.remove("ownerReferences");
                            }
                        }
                        v["metadata"]["resourceVersion"] = rv.into();
                    }
                }
            }
        }
        Ok(())
    }

    fn log(&mut self, verb: &str, kind: Kind, ns: &str, name: &str, sub: &str) {
        let s = format!("{verb} {} {ns}/{name}{sub}", resource(kind));
        self.controller_writes.push(s.trim_end().to_string());
    }

    fn pipelinerun_inputs(
        &self,
        pr: &Value,
    ) -> (Option<Value>, BTreeMap<String, Value>, Vec<Value>) {
        let ns = util::namespace(pr);
        let pipeline = get_str(pr, &["spec", "pipelineRef", "name"])
            .and_then(|n| self.get(Kind::Pipeline, ns, n));
        let tasks = self
            .list(Kind::Task, ns)
            .into_iter()
            .map(|t| (util::name(&t).to_string(), t))
            .collect();
        let children = self
            .list(Kind::TaskRun, ns)
            .into_iter()
            .chain(self.list(Kind::PipelineRun, ns))
            .filter(|tr| util::label(tr, rules::LABEL_PIPELINE_RUN) == Some(util::name(pr)))
            .collect();
        (pipeline, tasks, children)
    }

    /// Applies the child writes of a PipelineRun reconcile (creates, cancels, labels).
    fn apply_child_writes(&mut self, pr: &Value, actions: &PipelineRunActions) -> usize {
        let ns = util::namespace(pr).to_string();
        let name = util::name(pr).to_string();
        let mut writes = 0;
        for tr in &actions.create_taskruns {
            if self.create(&ns, tr.clone()).is_ok() {
                writes += 1;
                self.log("create", Kind::TaskRun, &ns, util::name(tr), "");
            }
        }
        for child in &actions.create_pipelineruns {
            if self.create(&ns, child.clone()).is_ok() {
                writes += 1;
                self.log("create", Kind::PipelineRun, &ns, util::name(child), "");
            }
        }
        for c in &actions.cancel_taskruns {
            // The webhook refuses spec changes on done TaskRuns ("Once the TaskRun is complete").
            let done = self
                .get(Kind::TaskRun, &ns, &c.name)
                .is_some_and(|t| util::is_done(&t));
            if done {
                continue;
            }
            let patch = json!({"spec": {"status": rules::TR_SPEC_CANCELLED, "statusMessage": c.status_message}});
            if self
                .patch(Kind::TaskRun, &ns, &c.name, &patch, None)
                .is_ok()
            {
                writes += 1;
                self.log("patch", Kind::TaskRun, &ns, &c.name, "");
            }
        }
        if !actions.add_labels.is_empty() {
            let patch = json!({"metadata": {"labels": actions.add_labels}});
            if self
                .patch(Kind::PipelineRun, &ns, &name, &patch, None)
                .is_ok()
            {
                writes += 1;
                self.log("update", Kind::PipelineRun, &ns, &name, "");
            }
        }
        writes
    }

    /// Reconciles one PipelineRun now; returns the number of writes.
    pub fn reconcile_pipelinerun(&mut self, ns: &str, name: &str) -> usize {
        let Some(staged) = self.begin_pipelinerun_reconcile(ns, name) else {
            return 0;
        };
        let (writes, _) = self.commit_status(staged);
        writes
    }

    /// Reconciles a PipelineRun but holds back its status write (see [`StagedStatus`]); child
    /// writes happen at once, as in the real controller. `None` if the run does not exist.
    pub fn begin_pipelinerun_reconcile(
        &mut self,
        ns: &str,
        name: &str,
    ) -> Option<(StagedStatus, usize)> {
        let pr = self.get(Kind::PipelineRun, ns, name)?;
        let (pipeline, tasks, children) = self.pipelinerun_inputs(&pr);
        let actions = reconcile_pipelinerun(&pr, pipeline.as_ref(), &tasks, &children, self.now);
        let writes = self.apply_child_writes(&pr, &actions);
        Some((
            StagedStatus {
                namespace: ns.to_string(),
                name: name.to_string(),
                read_resource_version: str_or_empty(&pr, &["metadata", "resourceVersion"])
                    .to_string(),
                status: actions.status,
            },
            writes,
        ))
    }

    /// Writes a staged status like knative's generated reconciler: with the read resourceVersion;
    /// on 409 re-GET and write the desired status onto the fresh object anyway (unless equal).
    /// Returns (writes, whether a conflict happened).
    pub fn commit_status(&mut self, staged: (StagedStatus, usize)) -> (usize, bool) {
        let (s, child_writes) = staged;
        let mut writes = child_writes;
        let Some(status) = s.status else {
            return (writes, false);
        };
        let Some(cur) = self.get(Kind::PipelineRun, &s.namespace, &s.name) else {
            return (writes, false);
        };
        let mut body = cur.clone();
        body["status"] = status.clone();
        body["metadata"]["resourceVersion"] = s.read_resource_version.clone().into();
        let (written, conflict) = match self.replace_status(Kind::PipelineRun, &body) {
            Ok(_) => (true, false),
            Err(MemoryError::Conflict(..)) => {
                if cur.get("status") == Some(&status) {
                    return (writes, true);
                }
                body["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
                (self.replace_status(Kind::PipelineRun, &body).is_ok(), true)
            }
            Err(_) => (false, false),
        };
        if written {
            self.log(
                "update",
                Kind::PipelineRun,
                &s.namespace,
                &s.name,
                " status",
            );
            writes += 1;
        }
        (writes, conflict)
    }

    /// Reconciles one TaskRun now; returns the number of writes.
    pub fn reconcile_taskrun(&mut self, ns: &str, name: &str) -> usize {
        let Some(tr) = self.get(Kind::TaskRun, ns, name) else {
            return 0;
        };
        let task =
            get_str(&tr, &["spec", "taskRef", "name"]).and_then(|t| self.get(Kind::Task, ns, t));
        let pod = self.get(Kind::Pod, ns, &pod_name_for(&tr));
        let actions = reconcile_taskrun(&tr, task.as_ref(), pod.as_ref(), self.now);
        let mut writes = 0;
        if let Some(p) = actions.create_pod {
            if self.create(ns, p.clone()).is_ok() {
                writes += 1;
                self.log("create", Kind::Pod, ns, util::name(&p), "");
            }
        }
        if let Some(p) = actions.delete_pod {
            if self.delete(Kind::Pod, ns, &p, Propagation::Cascade).is_ok() {
                writes += 1;
                self.log("delete", Kind::Pod, ns, &p, "");
            }
        }
        if let Some(st) = actions.status {
            let mut body = tr.clone();
            body["status"] = st;
            if self.replace_status(Kind::TaskRun, &body).is_ok() {
                writes += 1;
                self.log("update", Kind::TaskRun, ns, name, " status");
            }
        }
        writes
    }

    fn all_keys(&self, kind: Kind) -> Vec<(String, String)> {
        self.objects
            .keys()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, ns, n)| (ns.clone(), n.clone()))
            .collect()
    }

    /// One controller pass: every TaskRun, then every PipelineRun. Returns the number of writes.
    pub fn reconcile_all(&mut self) -> usize {
        let mut writes = 0;
        for (ns, n) in self.all_keys(Kind::TaskRun) {
            writes += self.reconcile_taskrun(&ns, &n);
        }
        for (ns, n) in self.all_keys(Kind::PipelineRun) {
            writes += self.reconcile_pipelinerun(&ns, &n);
        }
        writes
    }

    /// Runs controller passes until nothing is written (bounded).
    pub fn settle(&mut self) -> usize {
        let mut total = 0;
        for _ in 0..100 {
            let w = self.reconcile_all();
            total += w;
            if w == 0 {
                break;
            }
        }
        total
    }

    /// One fake-kubelet pass over every pod. Returns the number of status patches.
    pub fn kubelet_pass(&mut self) -> usize {
        let mut patches = 0;
        let mut live = HashSet::new();
        for (ns, n) in self.all_keys(Kind::Pod) {
            let Some(pod) = self.get(Kind::Pod, &ns, &n) else {
                continue;
            };
            live.insert(util::uid(&pod).to_string());
            let tr = util::label(&pod, rules::LABEL_TASK_RUN)
                .and_then(|t| self.get(Kind::TaskRun, &ns, t));
            let Some(tr) = tr else { continue };
            let pr = util::label(&pod, rules::LABEL_PIPELINE_RUN)
                .and_then(|p| self.get(Kind::PipelineRun, &ns, p));
            let rules = OutcomeRules::of_run(pr.as_ref(), &tr);
            let results = kubelet::declared_results(&tr);
            if let Some(patch) = self.kubelet.step(&pod, &rules, &results, self.now) {
                let rv = self.next_rv();
                if let Some(p) = self.objects.get_mut(&key(Kind::Pod, &ns, &n)) {
                    kubelet::apply_status_patch(p, &patch);
                    p["metadata"]["resourceVersion"] = rv.into();
                    patches += 1;
                }
            }
        }
        self.kubelet.retain_pods(&live);
        patches
    }

    /// Settle, one kubelet pass, settle.
    pub fn step(&mut self) -> usize {
        let mut n = self.settle();
        n += self.kubelet_pass();
        n + self.settle()
    }

    /// Steps and advances the clock by [`MemoryCluster::tick`] until `pred` holds or `max` time has
    /// passed. Returns whether `pred` held.
    pub fn run_until(&mut self, max: TimeDelta, pred: &dyn Fn(&MemoryCluster) -> bool) -> bool {
        let end = self.now + max;
        loop {
            self.step();
            if pred(self) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            self.now += self.tick;
        }
    }

    /// Runs until the PipelineRun is done (or `max` passed).
    pub fn run_until_done(&mut self, ns: &str, name: &str, max: TimeDelta) -> bool {
        let (ns, name) = (ns.to_string(), name.to_string());
        self.run_until(max, &|c| {
            c.get(Kind::PipelineRun, &ns, &name)
                .is_some_and(|p| util::is_done(&p))
        })
    }
}

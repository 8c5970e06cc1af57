//! The pure PipelineRun reconcile: given a run, its Pipeline and Tasks, its TaskRuns and the clock,
//! the writes the real controller would make (`pkg/reconciler/pipelinerun/pipelinerun.go`
//! `ReconcileKind` → `reconcile` → `runNextSchedulableTask`). No I/O.

use std::collections::{BTreeMap, BTreeSet};
use tekton_retry::tekton::names::{child_name, matrix_run_name};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};

use super::affinity::{self, Coschedule, ObjectName};
use super::facts::{Facts, Rpt, Timeouts};
use super::rules::{self, pr_reason};
use super::util::{self, array, get, get_str, str_or_empty};
use super::volumeclaim;

/// Marks a child TaskRun cancelled: JSON patch `add /spec/status TaskRunCancelled` and
/// `add /spec/statusMessage <message>` (`cancel.go` `cancelTaskRunPatchBytes`, `timeout.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRunCancel {
    /// The TaskRun's name.
    pub name: String,
    /// `spec.statusMessage` to set.
    pub status_message: String,
}

/// What one PipelineRun reconcile wants written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineRunActions {
    /// TaskRuns to create (complete objects without uid/resourceVersion).
    pub create_taskruns: Vec<Value>,
    /// Child PipelineRuns to create, for pipeline tasks with `pipelineSpec` or `pipelineRef`
    /// (pipelines in pipelines, `createChildPipelineRun`).
    pub create_pipelineruns: Vec<Value>,
    /// TaskRuns to cancel.
    pub cancel_taskruns: Vec<TaskRunCancel>,
    /// Labels to add to the run's metadata (`propagatePipelineNameLabelToPipelineRun`, written by
    /// the controller's metadata sync, fixture api-writes: `update pipelineruns demo-run`).
    pub add_labels: BTreeMap<String, String>,
    /// The new `status`, when it differs from the current one.
    pub status: Option<Value>,
    /// Affinity-assistant StatefulSets and claims from `volumeClaimTemplate`s to create when they
    /// do not exist yet (`createOrUpdateAffinityAssistantsAndPVCs`: GET, create on NotFound).
    pub ensure_objects: Vec<Value>,
    /// Objects of the run's namespace to delete when they exist
    /// (`cleanupAffinityAssistantsAndPVCs`, on every reconcile of a done run).
    pub delete_objects: Vec<ObjectName>,
}

impl PipelineRunActions {
    /// Nothing to write to the run or its TaskRuns. The housekeeping of [`Self::ensure_objects`]
    /// and [`Self::delete_objects`] is idempotent and not counted: the driver writes only what is
    /// missing or still there.
    pub fn is_empty(&self) -> bool {
        self.create_taskruns.is_empty()
            && self.create_pipelineruns.is_empty()
            && self.cancel_taskruns.is_empty()
            && self.add_labels.is_empty()
            && self.status.is_none()
    }
}

fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// The pipeline timeout (`PipelineRun.PipelineTimeout`): `timeouts.pipeline`, else the 1h default.
pub fn pipeline_timeout(pr: &Value) -> TimeDelta {
    get_str(pr, &["spec", "timeouts", "pipeline"])
        .and_then(util::parse_duration)
        .unwrap_or_else(|| TimeDelta::hours(1))
}

fn opt_timeout(pr: &Value, key: &str) -> Option<TimeDelta> {
    get_str(pr, &["spec", "timeouts", key]).and_then(util::parse_duration)
}

/// `TasksTimeout` / `FinallyTimeout` (pipelinerun_types.go): the explicit value, else
/// `pipeline − other` when both `timeouts.pipeline` and the other one are set and non-zero
/// (`timeouts: {pipeline: 1h, finally: 10m}` gives the tasks 50m), else none.
fn phase_timeout(pr: &Value, key: &str, other: &str) -> Option<TimeDelta> {
    if let Some(t) = opt_timeout(pr, key) {
        return Some(t);
    }
    let pipeline = opt_timeout(pr, "pipeline").filter(|t| *t > TimeDelta::zero())?;
    let other = opt_timeout(pr, other).filter(|t| *t > TimeDelta::zero())?;
    Some(pipeline - other)
}

fn timeout_message(pr: &Value) -> String {
    format!(
        "PipelineRun {} failed to finish within {}",
        go_quote(util::name(pr)),
        go_quote(&util::format_duration(pipeline_timeout(pr)))
    )
}

/// `HasTimedOut`: `now - startTime > timeouts.pipeline` (zero = never).
pub fn has_timed_out(pr: &Value, now: DateTime<Utc>) -> bool {
    let t = pipeline_timeout(pr);
    match util::time_at(pr, &["status", "startTime"]) {
        Some(start) if t > TimeDelta::zero() => now - start > t,
        _ => false,
    }
}

/// The TaskRun names listed in `status.childReferences` (optionally only for some tasks).
fn child_ref_names(status: &Map<String, Value>, tasks: Option<&BTreeSet<String>>) -> Vec<String> {
    status
        .get("childReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter(|r| str_or_empty(r, &["kind"]) == "TaskRun")
                .filter(|r| {
                    tasks.is_none_or(|t| t.contains(str_or_empty(r, &["pipelineTaskName"])))
                })
                .map(|r| str_or_empty(r, &["name"]).to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Cancel patches for the named TaskRuns. The real controller patches every referenced TaskRun and
/// ignores NotFound and the webhook's "Once the TaskRun is complete" refusal for done ones (fixture
/// `cancelled/api-writes.txt`: `patch taskruns demo-run-a 400`); the simulator skips both, which
/// leaves the same objects behind.
fn cancels(names: &[String], children: &[Value], message: &str) -> Vec<TaskRunCancel> {
    names
        .iter()
        .filter(|n| {
            children
                .iter()
                .any(|tr| util::name(tr) == n.as_str() && !util::is_done(tr))
        })
        .map(|n| TaskRunCancel {
            name: n.clone(),
            status_message: message.to_string(),
        })
        .collect()
}

fn finish(
    pr: &Value,
    status: Map<String, Value>,
    mut actions: PipelineRunActions,
) -> PipelineRunActions {
    let new = Value::Object(status);
    if pr.get("status") != Some(&new) {
        actions.status = Some(new);
    }
    actions
}

fn mark_done(
    status: &mut Map<String, Value>,
    cond: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) {
    util::set_succeeded(status, cond, reason, message, now);
    // MarkSucceeded / MarkFailed: completionTime = the condition's lastTransitionTime.
    let ltt = util::succeeded_in(status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| util::fmt_time(now).into());
    status.insert("completionTime".into(), ltt);
}

/// `propagatePipelineNameLabelToPipelineRun`: the `tekton.dev/pipeline` label value.
fn pipeline_label(pr: &Value) -> String {
    if let Some(l) = util::label(pr, rules::LABEL_PIPELINE) {
        return l.to_string();
    }
    match get_str(pr, &["spec", "pipelineRef", "name"]) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => util::name(pr).to_string(),
    }
}

/// `updatePipelineRunStatusFromChildRefs`: adds a reference for every labelled TaskRun owned by the
/// run (first ownerReference's uid) that is missing, then sorts by (pipelineTaskName, name, kind)
/// — the re-adoption of fixture `childrefs` v1.
fn adopt_children(pr: &Value, status: &mut Map<String, Value>, children: &[Value]) {
    if children.is_empty() {
        return;
    }
    let uid = util::uid(pr);
    let mut refs: Vec<Value> = status
        .get("childReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for tr in children {
        let owner = array(tr, &["metadata", "ownerReferences"]).first();
        if owner.map(|o| str_or_empty(o, &["uid"])) != Some(uid) {
            continue;
        }
        let n = util::name(tr);
        if refs.iter().any(|r| str_or_empty(r, &["name"]) == n) {
            continue;
        }
        refs.push(json!({
            "apiVersion": "tekton.dev/v1",
            "kind": kind_of(tr),
            "name": n,
            "pipelineTaskName": util::label(tr, rules::LABEL_PIPELINE_TASK).unwrap_or(""),
        }));
    }
    refs.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                str_or_empty(v, &["pipelineTaskName"]).to_string(),
                str_or_empty(v, &["name"]).to_string(),
                str_or_empty(v, &["kind"]).to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    status.insert("childReferences".into(), Value::Array(refs));
}

/// `PipelineSpec.SetDefaults` for what the fixtures show: `taskRef.kind: Task`, param `type: string`,
/// result `description: ""` (fixture `dag-failed/01-failed-pipelinerun-demo-run.json` `pipelineSpec`).
fn default_spec(spec: &mut Value) {
    for key in ["tasks", "finally"] {
        if let Some(tasks) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for t in tasks {
                if let Some(r) = t.get_mut("taskRef").and_then(Value::as_object_mut) {
                    r.entry("kind").or_insert_with(|| "Task".into());
                }
                // EmbeddedTask: `metadata: {}`, `spec: null` (raw extension), step
                // `computeResources: {}`, param and result `type: string` (fixture
                // `matrix/01-failed-pipelinerun-matrix-run.json`).
                if let Some(ts) = t.get_mut("taskSpec").and_then(Value::as_object_mut) {
                    ts.entry("metadata").or_insert_with(|| json!({}));
                    ts.entry("spec").or_insert(Value::Null);
                    for key in ["params", "results"] {
                        if let Some(list) = ts.get_mut(key).and_then(Value::as_array_mut) {
                            for p in list.iter_mut().filter_map(Value::as_object_mut) {
                                p.entry("type").or_insert_with(|| "string".into());
                            }
                        }
                    }
                    if let Some(steps) = ts.get_mut("steps").and_then(Value::as_array_mut) {
                        for st in steps.iter_mut().filter_map(Value::as_object_mut) {
                            st.entry("computeResources").or_insert_with(|| json!({}));
                        }
                    }
                }
            }
        }
    }
    if let Some(params) = spec.get_mut("params").and_then(Value::as_array_mut) {
        for p in params.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("type").or_insert_with(|| "string".into());
        }
    }
    if let Some(results) = spec.get_mut("results").and_then(Value::as_array_mut) {
        for r in results.iter_mut().filter_map(Value::as_object_mut) {
            r.entry("description").or_insert_with(|| "".into());
        }
    }
}

/// `ApplyParameters` + `ApplyContexts` on the tasks' params, when expressions and matrix.
fn apply_parameters(spec: &mut Value, pr: &Value) {
    let mut values = util::params_and_context(spec, pr, "pipelineRun");
    values.insert("context.pipeline.name".into(), pipeline_label(pr));
    let f = |e: &str| values.get(e).cloned();
    for key in ["tasks", "finally"] {
        if let Some(tasks) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for t in tasks {
                for field in ["params", "when", "matrix", "workspaces"] {
                    if let Some(v) = t.get_mut(field) {
                        util::substitute_value(v, &f);
                    }
                }
            }
        }
    }
}

/// Resolves the pipeline spec: the copy in `status.pipelineSpec` wins (`GetPipelineFunc`: "if the spec
/// is already in the status, do not try to fetch it again"), else the referenced Pipeline, else the
/// inline `spec.pipelineSpec`.
fn resolve_spec(pr: &Value, pipeline: Option<&Value>) -> Result<Value, (String, String)> {
    let mut spec = if let Some(s) = get(pr, &["status", "pipelineSpec"]) {
        s.clone()
    } else if let Some(name) = get_str(pr, &["spec", "pipelineRef", "name"]) {
        match pipeline.and_then(|p| p.get("spec")) {
            Some(s) => s.clone(),
            None => {
                return Err((
                    pr_reason::COULDNT_GET_PIPELINE.into(),
                    format!(
                        "Error retrieving pipeline for pipelinerun {}/{}: error when getting Pipeline for PipelineRun {}: pipelines.tekton.dev {} not found",
                        util::namespace(pr),
                        util::name(pr),
                        util::name(pr),
                        go_quote(name)
                    ),
                ))
            }
        }
    } else if let Some(s) = get(pr, &["spec", "pipelineSpec"]) {
        s.clone()
    } else {
        return Err((
            pr_reason::COULDNT_GET_PIPELINE.into(),
            format!(
                "pipelineRun {} not providing PipelineRef or PipelineSpec",
                util::name(pr)
            ),
        ));
    };
    default_spec(&mut spec);
    apply_parameters(&mut spec, pr);
    Ok(spec)
}

/// Matrix combinations (`Matrix.FanOut` / `Combinations.distribute`: for each value of the next
/// param, every existing combination — fixture `matrix`: `m-0/1/2` = linux/mac/windows).
pub fn matrix_combinations(task: &Value) -> Vec<Vec<(String, String)>> {
    let mut combos: Vec<Vec<(String, String)>> = Vec::new();
    for p in array(task, &["matrix", "params"]) {
        let name = str_or_empty(p, &["name"]).to_string();
        let values: Vec<String> = array(p, &["value"])
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect();
        if combos.is_empty() {
            combos = values
                .iter()
                .map(|v| vec![(name.clone(), v.clone())])
                .collect();
        } else {
            let mut next = Vec::new();
            for v in &values {
                for c in &combos {
                    let mut c = c.clone();
                    c.push((name.clone(), v.clone()));
                    next.push(c);
                }
            }
            combos = next;
        }
    }
    combos
}

/// The kind of child run a pipeline task gets: a child PipelineRun for a task with `pipelineSpec`
/// or `pipelineRef` (`PipelineTask.IsChildPipeline`), else a TaskRun. Custom tasks are not
/// modelled.
pub fn child_kind_of(task: &Value) -> &'static str {
    if task.get("pipelineSpec").is_some() || task.get("pipelineRef").is_some() {
        "PipelineRun"
    } else {
        "TaskRun"
    }
}

/// The kind of a child object (objects without `kind` are TaskRuns).
fn kind_of(child: &Value) -> &str {
    match util::kind(child) {
        "" => "TaskRun",
        k => k,
    }
}

/// `GetNamesOfTaskRuns` / `GetNamesOfChildPipelineRuns`: names from `childReferences` of the
/// task's child kind, else `<run>-<task>` or, for a
/// matrix, `<run>-<task>-<i>` (`getNewRunNames`, with `kmeta.ChildName`'s hashing of long names).
fn run_names(status: &Map<String, Value>, run: &str, task: &Value) -> Vec<String> {
    let tname = str_or_empty(task, &["name"]);
    let kind = child_kind_of(task);
    let from_refs: Vec<String> = status
        .get("childReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter(|r| str_or_empty(r, &["kind"]) == kind)
                .filter(|r| str_or_empty(r, &["pipelineTaskName"]) == tname)
                .map(|r| str_or_empty(r, &["name"]).to_string())
                .collect()
        })
        .unwrap_or_default();
    if !from_refs.is_empty() {
        return from_refs;
    }
    if task.get("matrix").is_some() {
        let n = matrix_combinations(task).len();
        if n != 1 {
            return (0..n).map(|i| matrix_run_name(run, tname, i, n)).collect();
        }
    }
    vec![child_name(run, &format!("-{tname}"))]
}

/// `createChildResourceLabels`: the run's labels plus `tekton.dev/pipelineRun`,
/// `pipelineRunUID`, `pipelineTask` and `memberOf`, and `tekton.dev/pipeline` when
/// `include_pipeline_label` (TaskRuns).
fn child_labels(pr: &Value, rpt: &Rpt, include_pipeline_label: bool) -> Map<String, Value> {
    let mut labels: Map<String, Value> = get(pr, &["metadata", "labels"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if include_pipeline_label {
        labels.insert(rules::LABEL_PIPELINE.into(), pipeline_label(pr).into());
    }
    labels.insert(rules::LABEL_PIPELINE_RUN.into(), util::name(pr).into());
    labels.insert(rules::LABEL_PIPELINE_RUN_UID.into(), util::uid(pr).into());
    labels.insert(rules::LABEL_PIPELINE_TASK.into(), rpt.name.clone().into());
    labels.insert(
        rules::LABEL_MEMBER_OF.into(),
        if rpt.is_final { "finally" } else { "tasks" }.into(),
    );
    labels
}

/// `createChildResourceAnnotations`: the run's annotations without kubectl's last-applied copy.
fn child_annotations(pr: &Value) -> Map<String, Value> {
    let mut annotations: Map<String, Value> = get(pr, &["metadata", "annotations"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    annotations
}

/// Resolves a child's variable: task results (`$(tasks.<t>.results.<r>)`) from `facts`, anything
/// else (execution statuses) from `statuses`.
fn resolver<'a>(
    facts: &'a Facts,
    statuses: &'a BTreeMap<String, String>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |e: &str| {
        if let Some((t, r)) = util::result_ref(e) {
            return facts.result_value(t, r);
        }
        statuses.get(e).cloned()
    }
}

/// The pipeline task's params with `resolve` substituted.
fn substituted_params(task: &Value, resolve: &dyn Fn(&str) -> Option<String>) -> Vec<Value> {
    array(task, &["params"])
        .iter()
        .map(|p| {
            let mut p = p.clone();
            util::substitute_value(&mut p, resolve);
            p
        })
        .collect()
}

/// `getTaskrunWorkspaces` → `taskWorkspaceByWorkspaceVolumeSource`: the pipeline task's workspaces
/// bound to the run's, a template binding becoming the claim Tekton created for the run.
fn child_workspaces(pr: &Value, task: &Value, mode: Coschedule) -> Vec<Value> {
    array(task, &["workspaces"])
        .iter()
        .filter_map(|w| {
            let binding = volumeclaim::run_binding(pr, volumeclaim::pipeline_workspace_of(w))?;
            Some(volumeclaim::task_binding(
                pr,
                binding,
                str_or_empty(w, &["name"]),
                str_or_empty(w, &["subPath"]),
                mode,
            ))
        })
        .collect()
}

/// A child `kind` named `run_name` in the run's namespace, the run its controlling owner.
fn child_object(
    kind: &str,
    pr: &Value,
    run_name: &str,
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
    spec: Map<String, Value>,
) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": kind,
        "metadata": {
            "name": run_name,
            "namespace": util::namespace(pr),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [volumeclaim::controller_ref(pr)],
        },
        "spec": spec,
    })
}

/// Builds a child TaskRun (`createTaskRun`): labels, annotations, owner reference, params, task
/// reference or inline spec, `serviceAccountName`, `timeout` default and `retries`.
fn make_taskrun(
    pr: &Value,
    facts: &Facts,
    rpt: &Rpt,
    run_name: &str,
    combo: &[(String, String)],
    statuses: &BTreeMap<String, String>,
    mode: Coschedule,
) -> Value {
    let task = &rpt.task;
    let mut labels = child_labels(pr, rpt, true);
    labels.insert(rules::LABEL_MANAGED_BY.into(), rules::MANAGED_BY.into());
    if let Some(tname) = get_str(task, &["taskRef", "name"]) {
        labels.insert(rules::LABEL_TASK.into(), tname.into());
    }
    let mut annotations = child_annotations(pr);
    if let Some(assistant) = affinity::annotation_value(mode, pr, task) {
        annotations.insert(rules::ANN_AFFINITY_ASSISTANT.into(), assistant.into());
    }

    let resolve = resolver(facts, statuses);
    let mut params: Vec<Value> = combo
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    params.extend(substituted_params(task, &resolve));

    let mut spec = Map::new();
    if !params.is_empty() {
        spec.insert("params".into(), Value::Array(params));
    }
    if let Some(sa) = get(pr, &["spec", "taskRunTemplate", "serviceAccountName"]) {
        spec.insert("serviceAccountName".into(), sa.clone());
    }
    if let Some(r) = task.get("taskRef") {
        spec.insert("taskRef".into(), r.clone());
    } else if let Some(s) = task.get("taskSpec") {
        let mut s = s.clone();
        if let Some(o) = s.as_object_mut() {
            o.remove("metadata");
            o.remove("spec");
            // `PropagateResults` (resources/apply.go `ApplyTaskResults`) replaces task results in
            // the embedded spec's steps and sidecars too.
            for key in ["steps", "sidecars"] {
                if let Some(v) = o.get_mut(key) {
                    util::substitute_value(v, &resolve);
                }
            }
        }
        spec.insert("taskSpec".into(), s);
    }
    let timeout = get_str(task, &["timeout"]).unwrap_or(rules::DEFAULT_TIMEOUT);
    spec.insert("timeout".into(), timeout.into());
    if let Some(r) = task
        .get("retries")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
    {
        spec.insert("retries".into(), r.into());
    }
    let ws = child_workspaces(pr, task, mode);
    if !ws.is_empty() {
        spec.insert("workspaces".into(), Value::Array(ws));
    }
    child_object("TaskRun", pr, run_name, labels, annotations, spec)
}

/// Builds a child PipelineRun (`createChildPipelineRun`, `createChildResourceLabels`,
/// `createChildResourceAnnotations`): the run's labels plus `tekton.dev/pipelineRun`,
/// `pipelineRunUID`, `pipelineTask` and `memberOf`; the run's annotations; the run as controlling
/// owner; the pipeline task's params (results substituted), its workspaces bound as for a
/// TaskRun (`getChildPipelineRunWorkspaces`), the run's `taskRunTemplate`, and its `pipelineRef`
/// or `pipelineSpec`. Its own TaskRuns are labelled with the child's name, so the child is
/// reconciled like any run.
fn make_child_pipelinerun(
    pr: &Value,
    facts: &Facts,
    rpt: &Rpt,
    run_name: &str,
    statuses: &BTreeMap<String, String>,
    mode: Coschedule,
) -> Value {
    let task = &rpt.task;
    let mut spec = Map::new();
    let params = substituted_params(task, &resolver(facts, statuses));
    if !params.is_empty() {
        spec.insert("params".into(), Value::Array(params));
    }
    if let Some(t) = get(pr, &["spec", "taskRunTemplate"]) {
        spec.insert("taskRunTemplate".into(), t.clone());
    }
    if let Some(r) = task.get("pipelineRef") {
        spec.insert("pipelineRef".into(), r.clone());
    } else if let Some(s) = task.get("pipelineSpec") {
        spec.insert("pipelineSpec".into(), s.clone());
    }
    let ws = child_workspaces(pr, task, mode);
    if !ws.is_empty() {
        spec.insert("workspaces".into(), Value::Array(ws));
    }
    let (labels, annotations) = (child_labels(pr, rpt, false), child_annotations(pr));
    child_object("PipelineRun", pr, run_name, labels, annotations, spec)
}

/// One PipelineRun reconcile, as the real controller does it. `children` are the TaskRuns of the
/// namespace labelled `tekton.dev/pipelineRun=<run>` (TaskRuns are looked up among them by name);
/// `tasks` are the namespace's Tasks by name. A done run is left alone. The `coschedule` feature
/// flag is its default, `workspaces`.
pub fn reconcile_pipelinerun(
    pr: &Value,
    pipeline: Option<&Value>,
    tasks: &BTreeMap<String, Value>,
    children: &[Value],
    now: DateTime<Utc>,
) -> PipelineRunActions {
    reconcile_pipelinerun_with(pr, pipeline, tasks, children, now, Coschedule::default())
}

/// [`reconcile_pipelinerun`] under the given `coschedule` feature flag.
pub fn reconcile_pipelinerun_with(
    pr: &Value,
    pipeline: Option<&Value>,
    tasks: &BTreeMap<String, Value>,
    children: &[Value],
    now: DateTime<Utc>,
    mode: Coschedule,
) -> PipelineRunActions {
    let mut actions = PipelineRunActions::default();
    // Another controller's run never reaches the work queue.
    if !rules::managed_by_tekton(pr) {
        return actions;
    }
    // ReconcileKind: "If the PipelineRun is already done on entry, perform only the lightweight
    // post-completion work" — no writes to the run (fixtures: no controller write while done),
    // only `cleanupAffinityAssistantsAndPVCs`.
    if util::is_done(pr) {
        if get(pr, &["metadata", "deletionTimestamp"]).is_none() {
            actions.delete_objects = affinity::cleanup(pr, mode);
        }
        return actions;
    }
    // Being deleted: knative's generated reconciler does not call ReconcileKind (`reconciler.go`
    // "deletionTimestamp ... FinalizeKind"); nothing is written.
    if get(pr, &["metadata", "deletionTimestamp"]).is_some() {
        return actions;
    }
    let run = util::name(pr).to_string();
    let spec_status = str_or_empty(pr, &["spec", "status"]).to_string();
    let mut status: Map<String, Value> = pr
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();

    // HasStarted / InitializeConditions: startTime = now (not before creation), Unknown/Started.
    if !status.contains_key("startTime") && spec_status != rules::PR_SPEC_PENDING {
        status.insert("startTime".into(), util::start_time(pr, now).into());
        if util::succeeded_in(&status).is_none() {
            util::set_succeeded(&mut status, "Unknown", pr_reason::STARTED, "", now);
        }
    }
    let mut with_status = pr.clone();
    with_status["status"] = Value::Object(status.clone());

    // HasTimedOutForALongTime (≥ 2× the budget) and no timeout condition yet: time out at once and
    // return (fixture `timeout-long`: no skippedTasks, no finallyStartTime).
    let timeout = pipeline_timeout(pr);
    if let Some(start) = util::time_at(&with_status, &["status", "startTime"]) {
        if has_timed_out(&with_status, now) && now - start >= timeout * 2 {
            let names = child_ref_names(&status, None);
            actions.cancel_taskruns =
                cancels(&names, children, rules::MSG_CANCELLED_BY_PIPELINE_TIMEOUT);
            mark_done(
                &mut status,
                "False",
                pr_reason::TIMEOUT,
                &timeout_message(pr),
                now,
            );
            return finish(pr, status, actions);
        }
    }

    if util::label(pr, rules::LABEL_PIPELINE).is_none() {
        actions
            .add_labels
            .insert(rules::LABEL_PIPELINE.into(), pipeline_label(pr));
    }

    // IsCancelled → cancelPipelineRun: cancel the referenced TaskRuns, False/Cancelled, before the
    // child references are synced (fixture `cancelled/02`: skippedTasks and childReferences not rebuilt).
    if spec_status == rules::PR_SPEC_CANCELLED {
        let names = child_ref_names(&status, None);
        actions.cancel_taskruns = cancels(&names, children, rules::MSG_CANCELLED_BY_PIPELINE);
        // `getChildObjectsFromPRStatusForTaskNames`: a child PipelineRun is an unknown kind to
        // the cancel, which then fails and leaves the run running (cancel.go).
        let unknown: BTreeMap<String, String> = status
            .get("childReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| !matches!(str_or_empty(r, &["kind"]), "TaskRun" | "CustomRun"))
            .map(|r| {
                (
                    str_or_empty(r, &["name"]).to_string(),
                    str_or_empty(r, &["kind"]).to_string(),
                )
            })
            .collect();
        if !unknown.is_empty() {
            let kinds: Vec<String> = unknown.iter().map(|(n, k)| format!("{n}:{k}")).collect();
            let msg = format!(
                "PipelineRun {} was cancelled but had errors trying to cancel TaskRuns and/or Runs: found child objects of unknown kinds: map[{}]",
                go_quote(&run),
                kinds.join(" ")
            );
            util::set_succeeded(&mut status, "Unknown", pr_reason::COULDNT_CANCEL, &msg, now);
            return finish(pr, status, actions);
        }
        let msg = format!("PipelineRun {} was cancelled", go_quote(&run));
        mark_done(&mut status, "False", pr_reason::CANCELLED, &msg, now);
        return finish(pr, status, actions);
    }

    adopt_children(pr, &mut status, children);

    if spec_status == rules::PR_SPEC_PENDING {
        let msg = format!("PipelineRun {} is pending", go_quote(&run));
        util::set_succeeded(&mut status, "Unknown", pr_reason::PENDING, &msg, now);
        return finish(pr, status, actions);
    }

    let spec = match resolve_spec(pr, pipeline) {
        Ok(s) => s,
        Err((reason, msg)) => {
            mark_done(&mut status, "False", &reason, &msg, now);
            return finish(pr, status, actions);
        }
    };
    status.insert("pipelineSpec".into(), spec.clone());
    status.entry("provenance").or_insert_with(rules::provenance);

    // Build the state: tasks then finally, TaskRuns looked up by name.
    let mut state = Vec::new();
    let mut seen = BTreeSet::new();
    for (key, is_final) in [("tasks", false), ("finally", true)] {
        for t in array(&spec, &[key]) {
            let name = str_or_empty(t, &["name"]).to_string();
            if !seen.insert(name.clone()) {
                let msg = format!(
                    "PipelineRun {}/{}'s Pipeline DAG is invalid: duplicate pipeline task {}",
                    util::namespace(pr),
                    run,
                    go_quote(&name)
                );
                mark_done(&mut status, "False", pr_reason::INVALID_GRAPH, &msg, now);
                return finish(pr, status, actions);
            }
            let names = run_names(&status, &run, t);
            let kind = child_kind_of(t);
            let runs = names
                .iter()
                .filter_map(|n| {
                    children
                        .iter()
                        .find(|c| util::name(c) == n.as_str() && kind_of(c) == kind)
                        .cloned()
                })
                .collect::<Vec<_>>();
            if runs.is_empty() {
                if let Some(tref) = get_str(t, &["taskRef", "name"]) {
                    if !tasks.contains_key(tref) {
                        let msg = format!(
                            "Pipeline {}/{} can't be Run; it contains Tasks that don't exist: Couldn't retrieve Task {}: tasks.tekton.dev {} not found",
                            util::namespace(pr),
                            pipeline_label(pr),
                            go_quote(tref),
                            go_quote(tref)
                        );
                        mark_done(&mut status, "False", pr_reason::COULDNT_GET_TASK, &msg, now);
                        return finish(pr, status, actions);
                    }
                }
            }
            let deps = if is_final {
                Vec::new()
            } else {
                Facts::deps_of(t)
            };
            state.push(Rpt {
                task: t.clone(),
                name,
                is_final,
                run_names: names,
                runs,
                deps,
            });
        }
    }
    let known: BTreeSet<&str> = state.iter().map(|t| t.name.as_str()).collect();
    for t in &state {
        if let Some(d) = t.deps.iter().find(|d| !known.contains(d.as_str())) {
            let msg = format!(
                "PipelineRun {}/{}'s Pipeline DAG is invalid: task {} depends on {} which is not declared",
                util::namespace(pr),
                run,
                go_quote(&t.name),
                go_quote(d)
            );
            mark_done(&mut status, "False", pr_reason::INVALID_GRAPH, &msg, now);
            return finish(pr, status, actions);
        }
    }

    let timeouts = Timeouts {
        start: util::time_at(&Value::Object(status.clone()), &["startTime"]),
        finally_start: util::time_at(&Value::Object(status.clone()), &["finallyStartTime"]),
        pipeline: Some(timeout).filter(|t| *t > TimeDelta::zero()),
        tasks: phase_timeout(pr, "tasks", "finally"),
        finally: phase_timeout(pr, "finally", "tasks"),
    };
    let mut facts = Facts::new(state, &spec_status, now, timeouts);

    // EvaluateCEL for every task; an expression that is not a bool fails the run.
    if let Some((_, err)) = facts.cel_error() {
        let msg = format!("Error evaluating CEL {run}: {err}");
        mark_done(
            &mut status,
            "False",
            pr_reason::CEL_EVALUATION_FAILED,
            &msg,
            now,
        );
        return finish(pr, status, actions);
    }

    // Graceful cancel while DAG tasks run: cancel the referenced TaskRuns (`gracefullyCancelPipelineRun`).
    if spec_status == rules::PR_SPEC_CANCELLED_RUN_FINALLY && facts.is_running() {
        let names = child_ref_names(&status, None);
        actions
            .cancel_taskruns
            .extend(cancels(&names, children, rules::MSG_CANCELLED_BY_PIPELINE));
    }

    // IsBeforeFirstTaskRun → createOrUpdateAffinityAssistantsAndPVCs: only while no child run
    // exists, so a retry that keeps a child gets no new assistant (affinity_assistant.go).
    if facts.state.iter().all(|t| t.runs.is_empty()) {
        actions.ensure_objects = affinity::assistants_and_claims(pr, mode);
    }

    // Tasks / finally timeouts: cancel the running TaskRuns of that phase.
    let in_finally = status.contains_key("finallyStartTime");
    let (phase_start, phase_timeout) = if in_finally {
        (facts.timeouts.finally_start, facts.timeouts.finally)
    } else {
        (facts.timeouts.start, facts.timeouts.tasks)
    };
    if let (Some(start), Some(t)) = (phase_start, phase_timeout) {
        if t > TimeDelta::zero() && now - start > t {
            let names: BTreeSet<String> =
                facts.running_task_names(in_finally).into_iter().collect();
            let refs = child_ref_names(&status, Some(&names));
            actions.cancel_taskruns.extend(cancels(
                &refs,
                children,
                rules::MSG_CANCELLED_BY_PIPELINE_TIMEOUT,
            ));
        }
    }

    // runNextSchedulableTask. `CheckMissingResultReferences` first: a DAG candidate referencing a
    // result that does not exist is put on the validation-failed list, and no DAG task is created
    // in this reconcile (`nextRpts = nil`); the run stops and ends `PipelineValidationFailed`
    // (confirmed on a real cluster with an `onError: continue` producer).
    let mut next = facts.dag_queue();
    let invalid: Vec<(usize, String)> = next
        .iter()
        .filter_map(|&i| facts.missing_result_error(i).map(|e| (i, e)))
        .collect();
    if !invalid.is_empty() {
        next.clear();
        for (i, e) in invalid {
            facts.fail_validation(i, e);
        }
    }
    let finals = facts.final_queue();
    let statuses = facts.pipeline_task_status();
    for i in finals {
        // ResolveResultRef fails → the finally task is not started (IsFinallySkipped reports it).
        let unresolved = facts.state[i]
            .result_refs()
            .iter()
            .any(|(t, r)| facts.result_value(t, r).is_none());
        if !unresolved {
            next.push(i);
        }
    }
    if !status.contains_key("finallyStartTime") && facts.final_started() {
        status.insert("finallyStartTime".into(), util::fmt_time(now).into());
    }
    let mut created: Vec<(usize, Vec<Value>)> = Vec::new();
    for &i in &next {
        if facts.state[i].is_final && !status.contains_key("finallyStartTime") {
            status.insert("finallyStartTime".into(), util::fmt_time(now).into());
            facts.timeouts.finally_start = Some(now);
        }
        if facts.skip(i).is_some() || facts.finally_skip(i).is_some() {
            continue;
        }
        let rpt = &facts.state[i];
        let combos = if rpt.task.get("matrix").is_some() {
            matrix_combinations(&rpt.task)
        } else {
            vec![Vec::new()]
        };
        let mut trs = Vec::new();
        for (k, n) in rpt.run_names.iter().enumerate() {
            // The k-th name gets the k-th combination, whatever its `-<i>` suffix: names left in
            // childReferences are taken in their (sorted) order, so after a partial drop
            // `<run>-<task>-2` may run combination 0 (pipelinerun.go `createTaskRuns` indexes
            // `Matrix.FanOut()` by the position in `rpt.TaskRunNames`).
            let Some(combo) = combos.get(k).cloned() else {
                continue;
            };
            if rpt.runs.iter().any(|r| util::name(r) == n.as_str()) {
                continue;
            }
            if child_kind_of(&rpt.task) == "PipelineRun" {
                trs.push(make_child_pipelinerun(pr, &facts, rpt, n, &statuses, mode));
                continue;
            }
            trs.push(make_taskrun(pr, &facts, rpt, n, &combo, &statuses, mode));
        }
        created.push((i, trs));
    }
    for (i, trs) in created {
        for tr in trs {
            let mut stored = tr.clone();
            stored["metadata"]["creationTimestamp"] = util::fmt_time(now).into();
            facts.state[i].runs.push(stored);
            if kind_of(&tr) == "PipelineRun" {
                actions.create_pipelineruns.push(tr);
            } else {
                actions.create_taskruns.push(tr);
            }
        }
    }
    facts.reset_cache();

    // HasTimedOut → timeoutPipelineRun: cancel the referenced TaskRuns, then the timeout condition.
    let timed_out = has_timed_out(&with_status, now);
    if timed_out {
        let names = child_ref_names(&status, None);
        actions.cancel_taskruns.extend(cancels(
            &names,
            children,
            rules::MSG_CANCELLED_BY_PIPELINE_TIMEOUT,
        ));
    }
    let (cs, reason, message) =
        facts.condition(&run, &spec_status, timed_out.then(|| timeout_message(pr)));
    if cs == "Unknown" {
        util::set_succeeded(&mut status, &cs, &reason, &message, now);
    } else {
        mark_done(&mut status, &cs, &reason, &message, now);
    }

    // AdjustStartTime: never later than the earliest child TaskRun (fixture `timeout-within`).
    if let (Some(start), Some(earliest)) = (facts.timeouts.start, facts.earliest_child_creation()) {
        if earliest < start {
            status.insert("startTime".into(), util::fmt_time(earliest).into());
        }
    }

    let refs = facts.child_references();
    if refs.is_empty() {
        status.remove("childReferences");
    } else {
        status.insert("childReferences".into(), Value::Array(refs));
    }
    let skipped = facts.skipped_tasks();
    if skipped.is_empty() {
        status.remove("skippedTasks");
    } else {
        status.insert("skippedTasks".into(), Value::Array(skipped));
    }
    if cs != "Unknown" {
        // "If the PipelineRun just transitioned to done during this reconcile, perform cleanup
        // eagerly" (pr.go `ReconcileKind`).
        actions.delete_objects = affinity::cleanup(pr, mode);
        let results = facts.pipeline_results(&spec);
        if results.is_empty() {
            status.remove("results");
        } else {
            status.insert("results".into(), Value::Array(results));
        }
    }
    finish(pr, status, actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::rules::skip;

    const RUN: &str = "dag-failed/01-failed-pipelinerun-demo-run.json";
    const PIPELINE: &str = "dag-failed/00-setup-pipeline-build-and-deploy.json";
    const TR_A: &str = "dag-failed/01-failed-taskrun-demo-run-a.json";
    const TR_B: &str = "dag-failed/01-failed-taskrun-demo-run-b.json";

    use crate::simulator::fixture::load as fixture;

    fn now() -> DateTime<Utc> {
        util::parse_time("2026-11-26T19:27:30Z").expect("now")
    }

    /// One reconcile of `pr` against the recorded Pipeline, its Tasks and `children`.
    fn reconcile(pr: &Value, children: &[Value]) -> PipelineRunActions {
        reconcile_pipelinerun(pr, Some(&fixture(PIPELINE)), &tasks(), children, now())
    }

    /// The recorded run, running since `start` with only a's TaskRun referenced.
    fn running_with_only_a(start: &str) -> Value {
        let mut pr = fixture(RUN);
        pr["status"] = json!({"startTime": start,
            "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "m"}],
            "childReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "demo-run-a", "pipelineTaskName": "a"}]});
        pr
    }

    fn tasks() -> BTreeMap<String, Value> {
        ["fetch", "build", "deploy", "notify"]
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    json!({"kind": "Task", "metadata": {"name": n}, "spec": {}}),
                )
            })
            .collect()
    }

    /// The fixture run as just created: no status, no pipeline label.
    fn fresh_run() -> Value {
        let mut pr = fixture(RUN);
        pr.as_object_mut().expect("obj").remove("status");
        pr["metadata"]
            .as_object_mut()
            .expect("meta")
            .remove("labels");
        pr
    }

    /// Asserts that the Succeeded condition of `status` is `want` (status, reason, message).
    fn assert_cond(status: &Value, want: (&str, &str, &str)) {
        let (s, r, m) = cond(status);
        assert_eq!((s.as_str(), r.as_str(), m.as_str()), want);
    }

    fn cond(status: &Value) -> (String, String, String) {
        let w = json!({"status": status});
        let (s, r, m) = util::succeeded_parts(&w).expect("condition");
        (s.into(), r.into(), m.into())
    }

    #[test]
    fn a_run_being_deleted_is_left_alone() {
        let mut pr = fresh_run();
        pr["metadata"]["deletionTimestamp"] = "2026-11-26T19:27:20Z".into();
        assert!(reconcile(&pr, &[]).is_empty());
    }

    #[test]
    fn a_done_run_is_left_alone() {
        let a = reconcile(&fixture(RUN), &[fixture(TR_A), fixture(TR_B)]);
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn first_reconcile_creates_the_root_task() {
        let pr = fresh_run();
        let a = reconcile(&pr, &[]);
        assert_eq!(
            a.add_labels.get(rules::LABEL_PIPELINE).map(String::as_str),
            Some("build-and-deploy")
        );
        assert_eq!(a.create_taskruns.len(), 1);
        let tr = &a.create_taskruns[0];
        assert_eq!(util::name(tr), "demo-run-a");
        assert_eq!(util::label(tr, rules::LABEL_PIPELINE_TASK), Some("a"));
        assert_eq!(util::label(tr, rules::LABEL_MEMBER_OF), Some("tasks"));
        assert_eq!(util::label(tr, rules::LABEL_TASK), Some("fetch"));
        assert_eq!(tr["metadata"]["annotations"]["example.dev/owner"], "alice");
        assert_eq!(
            tr["metadata"]["ownerReferences"][0]["uid"],
            pr["metadata"]["uid"]
        );
        assert_eq!(
            tr["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        assert_eq!(
            tr["spec"]["params"][0]["value"],
            "https://git.example.com/app.git"
        );
        assert_eq!(tr["spec"]["timeout"], "1h0m0s");
        assert_eq!(tr["spec"]["serviceAccountName"], "default");
        assert_eq!(
            tr["spec"]["taskRef"],
            json!({"kind": "Task", "name": "fetch"})
        );
        let st = a.status.expect("status");
        assert_cond(
            &st,
            (
                "Unknown",
                "Running",
                "Tasks Completed: 0 (Failed: 0, Cancelled 0), Incomplete: 4, Skipped: 0",
            ),
        );
        assert_eq!(st["startTime"], "2026-11-26T19:27:30Z");
        assert_eq!(st["childReferences"][0]["name"], "demo-run-a");
        assert_eq!(
            st["pipelineSpec"],
            fixture(RUN)["status"]["pipelineSpec"],
            "resolved spec as recorded"
        );
        assert_eq!(st["provenance"], fixture(RUN)["status"]["provenance"]);
    }

    #[test]
    fn unknown_flip_refails_without_creating_anything() {
        let mut pr = fixture(RUN);
        pr["status"]["conditions"] = json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "flip"}]);
        let report = json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "demo-run-report", "labels": {"tekton.dev/pipelineTask": "report"}},
            "status": {"conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]}});
        let a = reconcile(&pr, &[fixture(TR_A), fixture(TR_B), report]);
        assert!(a.create_taskruns.is_empty());
        let st = a.status.expect("status");
        assert_cond(
            &st,
            (
                "False",
                "Failed",
                "Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 1",
            ),
        );
        assert_eq!(st["completionTime"], "2026-11-26T19:27:30Z");
        assert_eq!(
            st["skippedTasks"],
            json!([{"name": "c", "reason": "PipelineRun was stopping"}])
        );
        assert!(
            st.get("results").is_none(),
            "b failed: the image result is omitted"
        );
    }

    #[test]
    fn cancel_patches_only_running_children() {
        let mut pr = fixture(RUN);
        pr["spec"]["status"] = "Cancelled".into();
        pr["status"]["conditions"] = json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "m"}]);
        let mut b = fixture(TR_B);
        b["status"]["conditions"] =
            json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]);
        let a = reconcile(&pr, &[fixture(TR_A), b]);
        assert_eq!(
            a.cancel_taskruns,
            vec![TaskRunCancel {
                name: "demo-run-b".into(),
                status_message: rules::MSG_CANCELLED_BY_PIPELINE.into()
            }]
        );
        let st = a.status.expect("status");
        assert_cond(
            &st,
            (
                "False",
                "Cancelled",
                "PipelineRun \"demo-run\" was cancelled",
            ),
        );
        assert_eq!(
            st["skippedTasks"], pr["status"]["skippedTasks"],
            "not rebuilt"
        );
    }

    #[test]
    fn long_timeout_returns_early() {
        let mut pr = running_with_only_a("2026-11-26T19:25:00Z");
        pr["spec"]["timeouts"]["pipeline"] = "1m0s".into();
        let a = reconcile(&pr, &[fixture(TR_A)]);
        let st = a.status.expect("status");
        assert_cond(
            &st,
            (
                "False",
                "PipelineRunTimeout",
                "PipelineRun \"demo-run\" failed to finish within \"1m0s\"",
            ),
        );
        assert!(st.get("skippedTasks").is_none() && st.get("finallyStartTime").is_none());
        assert!(a.create_taskruns.is_empty());
    }

    #[test]
    fn start_time_is_pulled_back_to_the_earliest_child() {
        let pr = running_with_only_a("2026-11-26T19:27:29Z");
        let a = reconcile(&pr, &[fixture(TR_A)]);
        let st = a.status.expect("status");
        assert_eq!(
            st["startTime"],
            fixture(TR_A)["metadata"]["creationTimestamp"]
        );
        let b = &a.create_taskruns[0];
        assert_eq!(util::name(b), "demo-run-b");
        assert_eq!(
            b["spec"]["params"][0]["value"],
            "commit-from-demo-run-a-pod"
        );
    }

    #[test]
    fn a_missing_task_fails_the_run() {
        let pr = fresh_run();
        let a = reconcile_pipelinerun(&pr, Some(&fixture(PIPELINE)), &BTreeMap::new(), &[], now());
        let st = a.status.expect("status");
        assert_eq!(cond(&st).1, "CouldntGetTask");
        assert!(a.create_taskruns.is_empty());
    }

    #[test]
    fn matrix_names_left_in_references_take_combinations_by_position() {
        let task = json!({"name": "m", "taskSpec": {"steps": [{"name": "s", "image": "x"}]},
            "matrix": {"params": [{"name": "os", "value": ["linux", "mac", "windows"]}]}});
        let reference = |n: &str| json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": n, "pipelineTaskName": "m"});
        let pr = json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "mx", "namespace": "demo", "uid": "u1",
                "creationTimestamp": "2026-11-26T19:27:00Z"},
            "spec": {"pipelineSpec": {"tasks": [task.clone()]}},
            "status": {"startTime": "2026-11-26T19:27:10Z",
                "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "m"}],
                "pipelineSpec": {"tasks": [task]},
                "childReferences": [reference("mx-m-1"), reference("mx-m-2")]}});
        let a = reconcile_pipelinerun(&pr, None, &BTreeMap::new(), &[], now());
        let made: Vec<(&str, &str)> = a
            .create_taskruns
            .iter()
            .map(|t| {
                (
                    util::name(t),
                    t["spec"]["params"][0]["value"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        // Only the listed names, combinations 0 and 1: windows is never run.
        assert_eq!(made, [("mx-m-1", "linux"), ("mx-m-2", "mac")]);
    }

    #[test]
    fn tasks_and_finally_timeouts_derive_from_the_pipeline_timeout() {
        let pr = |t: Value| json!({"spec": {"timeouts": t}});
        let secs = |d: Option<TimeDelta>| d.map(|d| d.num_seconds());
        let both = pr(json!({"pipeline": "1h0m0s", "finally": "10m0s"}));
        assert_eq!(secs(phase_timeout(&both, "tasks", "finally")), Some(3000));
        assert_eq!(secs(phase_timeout(&both, "finally", "tasks")), Some(600));
        let explicit = pr(json!({"pipeline": "1h0m0s", "tasks": "5m0s"}));
        assert_eq!(
            secs(phase_timeout(&explicit, "tasks", "finally")),
            Some(300)
        );
        assert_eq!(
            secs(phase_timeout(&explicit, "finally", "tasks")),
            Some(3300)
        );
        let unbounded = pr(json!({"pipeline": "0s", "finally": "10m0s"}));
        assert_eq!(phase_timeout(&unbounded, "tasks", "finally"), None);
        assert_eq!(
            phase_timeout(&pr(json!({"pipeline": "1h0m0s"})), "tasks", "finally"),
            None
        );
    }

    /// Run `name` (uid u1) of an inline Pipeline of `tasks`, running, with only task a's TaskRun
    /// referenced.
    fn inline_run_after_a(name: &str, tasks: Value) -> Value {
        json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": name, "namespace": "demo", "uid": "u1",
                "creationTimestamp": "2026-11-26T19:27:00Z"},
            "spec": {"pipelineSpec": {"tasks": tasks}},
            "status": {"startTime": "2026-11-26T19:27:10Z",
                "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "m"}],
                "pipelineSpec": {"tasks": tasks},
                "childReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": format!("{name}-a"), "pipelineTaskName": "a"}]}})
    }

    /// Task a's TaskRun of run `run`, done with Succeeded `status`/`reason`.
    fn task_a_run(run: &str, status: &str, reason: &str) -> Value {
        json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": format!("{run}-a"), "creationTimestamp": "2026-11-26T19:27:11Z",
                "labels": {"tekton.dev/pipelineRun": run, "tekton.dev/pipelineTask": "a"},
                "ownerReferences": [{"kind": "PipelineRun", "name": run, "uid": "u1", "controller": true}]},
            "status": {"conditions": [{"type": "Succeeded", "status": status, "reason": reason}]}})
    }

    #[test]
    fn a_missing_result_fails_the_consumers_validation_and_the_run() {
        let a = json!({"name": "a", "onError": "continue",
            "taskSpec": {"results": [{"name": "x"}], "steps": [{"name": "s", "image": "x"}]}});
        let c = json!({"name": "c", "params": [{"name": "p", "value": "$(tasks.a.results.x)"}],
            "taskSpec": {"steps": [{"name": "s", "image": "x"}]}});
        let pr = inline_run_after_a("pv", json!([a, c]));
        let failed_a = task_a_run("pv", "False", "Failed");
        let out = reconcile_pipelinerun(&pr, None, &BTreeMap::new(), &[failed_a], now());
        assert!(out.create_taskruns.is_empty(), "c is not created");
        let st = out.status.expect("status");
        assert_cond(
            &st,
            (
                "False",
                "PipelineValidationFailed",
                "Tasks Completed: 1 (Failed: 1 (Ignored: 1), Cancelled 0), Skipped: 0, Failed Validation: 1 \
                 (Invalid task result reference: Could not find result with name x for pipeline task a)",
            ),
        );
    }

    /// A pipeline task with `pipelineSpec` gets a child PipelineRun named like a TaskRun, with the
    /// labels of Tekton's `TestReconcile_ChildPipelineRunHasDefaultLabels`
    /// (pipelinerun_pinp_test.go), the run's annotations and the run as owner; the child's
    /// outcome is the task's, and its reference has kind PipelineRun.
    #[test]
    fn a_child_pipeline_task_creates_a_child_pipelinerun_whose_outcome_is_the_tasks() {
        let sub = json!({"name": "sub", "params": [{"name": "p", "value": "$(tasks.a.results.x)"}],
            "pipelineSpec": {"params": [{"name": "p"}],
                "tasks": [{"name": "x", "taskSpec": {"steps": [{"name": "s", "image": "x"}]}}]},
            "runAfter": ["a"]});
        let a = json!({"name": "a", "taskSpec": {"results": [{"name": "x"}], "steps": [{"name": "s", "image": "x"}]}});
        let mut pr = inline_run_after_a("pp", json!([a, sub]));
        pr["metadata"]["labels"] = json!({"tekton.dev/pipeline": "pp", "team": "t"});
        pr["metadata"]["annotations"] = json!({"example.dev/owner": "alice"});
        let mut done_a = task_a_run("pp", "True", "Succeeded");
        done_a["status"]["results"] = json!([{"name": "x", "value": "v"}]);
        let out = reconcile_pipelinerun(
            &pr,
            None,
            &BTreeMap::new(),
            std::slice::from_ref(&done_a),
            now(),
        );
        assert!(out.create_taskruns.is_empty());
        assert_eq!(out.create_pipelineruns.len(), 1, "{out:?}");
        let child = &out.create_pipelineruns[0];
        assert_eq!(util::name(child), "pp-sub");
        for (k, v) in [
            ("tekton.dev/pipelineRun", "pp"),
            ("tekton.dev/pipeline", "pp"),
            ("tekton.dev/pipelineRunUID", "u1"),
            ("tekton.dev/pipelineTask", "sub"),
            ("tekton.dev/memberOf", "tasks"),
            ("team", "t"),
        ] {
            assert_eq!(util::label(child, k), Some(v), "{k}: {child:#}");
        }
        assert_eq!(
            child["metadata"]["annotations"]["example.dev/owner"],
            "alice"
        );
        assert_eq!(child["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(
            child["spec"]["params"][0]["value"], "v",
            "result substituted"
        );
        assert_eq!(child["spec"]["pipelineSpec"]["tasks"][0]["name"], "x");
        let st = out.status.expect("status");
        assert_eq!(st["childReferences"][1]["kind"], "PipelineRun", "{st:#}");
        assert_eq!(st["childReferences"][1]["name"], "pp-sub");

        // The child failed: so did the task and the run.
        let mut failed_child = child.clone();
        failed_child["metadata"]["creationTimestamp"] = "2026-11-26T19:27:20Z".into();
        failed_child["status"] =
            json!({"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]});
        let mut pr2 = pr.clone();
        pr2["status"] = st;
        let out =
            reconcile_pipelinerun(&pr2, None, &BTreeMap::new(), &[done_a, failed_child], now());
        assert!(out.create_pipelineruns.is_empty(), "found by name and kind");
        let st = out.status.expect("status");
        assert_cond(
            &st,
            (
                "False",
                "Failed",
                "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0",
            ),
        );
    }

    fn when_run(tasks: Value, params: Value) -> Value {
        json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "wr", "namespace": "demo", "uid": "u1",
                "creationTimestamp": "2026-11-26T19:27:00Z"},
            "spec": {"params": params, "pipelineSpec": {
                "params": [{"name": "deploy"}, {"name": "env", "default": "prod"}],
                "tasks": tasks}}})
    }

    /// `when` with parameters (applied with the spec) and CEL (evaluated after substitution,
    /// `EvaluateCEL`): only the tasks whose expressions hold are created.
    #[test]
    fn when_expressions_with_params_and_cel() {
        let step = json!({"steps": [{"name": "s", "image": "x"}]});
        let t = |name: &str, when: Value| json!({"name": name, "taskSpec": step, "when": when});
        let pr = when_run(
            json!([
                t(
                    "plain",
                    json!([{"input": "$(params.deploy)", "operator": "in", "values": ["yes"]}])
                ),
                t(
                    "notin",
                    json!([{"input": "$(params.deploy)", "operator": "notin", "values": ["yes"]}])
                ),
                t("cel-no", json!([{"cel": "'$(params.deploy)' == 'yes'"}])),
                t(
                    "cel-yes",
                    json!([{"cel": "'$(params.env)' in ['prod', 'staging'] && '$(params.deploy)' != 'yes'"}])
                ),
            ]),
            json!([{"name": "deploy", "value": "no"}]),
        );
        let out = reconcile_pipelinerun(&pr, None, &BTreeMap::new(), &[], now());
        let made: Vec<&str> = out.create_taskruns.iter().map(util::name).collect();
        assert_eq!(made, ["wr-notin", "wr-cel-yes"]);
        let st = out.status.expect("status");
        let skipped: Vec<(&str, &str)> = st["skippedTasks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        (
                            s["name"].as_str().unwrap_or_default(),
                            s["reason"].as_str().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(skipped, [("plain", skip::WHEN), ("cel-no", skip::WHEN)]);
        assert_eq!(
            st["pipelineSpec"]["tasks"][2]["when"][0]["cel"], "'no' == 'yes'",
            "parameters applied to the CEL text"
        );
    }

    /// An expression that does not evaluate to a bool fails the run `CELEvaluationFailed`
    /// before anything is created; so does a form the simulator's evaluator does not implement.
    #[test]
    fn a_cel_expression_without_a_bool_value_fails_the_run() {
        for cel in ["'$(params.deploy)'", "size('$(params.deploy)') == 2"] {
            let pr = when_run(
                json!([{"name": "a", "taskSpec": {"steps": [{"name": "s", "image": "x"}]}, "when": [{"cel": cel}]}]),
                json!([{"name": "deploy", "value": "no"}]),
            );
            let out = reconcile_pipelinerun(&pr, None, &BTreeMap::new(), &[], now());
            assert!(out.create_taskruns.is_empty());
            let st = out.status.expect("status");
            let (s, r, m) = cond(&st);
            assert_eq!(
                (s.as_str(), r.as_str()),
                ("False", "CELEvaluationFailed"),
                "{m}"
            );
            assert!(m.starts_with("Error evaluating CEL wr: "), "{m}");
        }
    }

    /// A hard cancel of a run with a child PipelineRun: the cancel fails on the unknown kind
    /// (cancel.go `getChildObjectsFromPRStatusForTaskNames`) and the run stays running
    /// `PipelineRunCouldntCancel`; its TaskRuns are still cancelled.
    #[test]
    fn a_hard_cancel_with_a_child_pipelinerun_could_not_cancel() {
        let r = |kind: &str, name: &str, task: &str| json!({"apiVersion": "tekton.dev/v1", "kind": kind, "name": name, "pipelineTaskName": task});
        let pr = json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "pc", "namespace": "demo", "uid": "u1"},
            "spec": {"status": "Cancelled", "pipelineSpec": {"tasks": []}},
            "status": {"startTime": "2026-11-26T19:27:10Z",
                "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "m"}],
                "childReferences": [r("TaskRun", "pc-a", "a"), r("PipelineRun", "pc-sub", "sub")]}});
        let running_a = json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "pc-a"},
            "status": {"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]}});
        let out = reconcile_pipelinerun(&pr, None, &BTreeMap::new(), &[running_a], now());
        assert_eq!(out.cancel_taskruns.len(), 1);
        let st = out.status.expect("status");
        assert_cond(
            &st,
            (
                "Unknown",
                "PipelineRunCouldntCancel",
                "PipelineRun \"pc\" was cancelled but had errors trying to cancel TaskRuns and/or Runs: \
                 found child objects of unknown kinds: map[pc-sub:PipelineRun]",
            ),
        );
        assert!(st.get("completionTime").is_none());
    }

    #[test]
    fn matrix_fan_out_order() {
        let t = json!({"name": "m", "matrix": {"params": [
            {"name": "os", "value": ["linux", "mac"]}, {"name": "arch", "value": ["amd64", "arm64"]}]}});
        let c = matrix_combinations(&t);
        let flat: Vec<String> = c
            .iter()
            .map(|c| {
                c.iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        assert_eq!(
            flat,
            ["linux/amd64", "mac/amd64", "linux/arm64", "mac/arm64"]
        );
        assert_eq!(
            run_names(&Map::new(), "r", &t),
            ["r-m-0", "r-m-1", "r-m-2", "r-m-3"]
        );
    }
}

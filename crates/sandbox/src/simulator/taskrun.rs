//! The pure TaskRun reconcile (`pkg/reconciler/taskrun/taskrun.go` `ReconcileKind` → `reconcile`,
//! `pkg/pod/status.go` `MakeTaskRunStatus`): the pod to create or delete and the new status. No I/O.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use tekton_retry::tekton::names::child_name;

use super::rules::{self, tr_reason};
use super::util::{self, array, get, get_str, str_or_empty};

/// What one TaskRun reconcile wants written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskRunActions {
    /// A pod to create (complete object; `status.phase: Pending` as the apiserver returns it).
    pub create_pod: Option<Value>,
    /// A pod to delete (cancellation and timeout, `failTaskRun`).
    pub delete_pod: Option<String>,
    /// The new `status`, when it differs from the current one.
    pub status: Option<Value>,
}

impl TaskRunActions {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.create_pod.is_none() && self.delete_pod.is_none() && self.status.is_none()
    }
}

/// The pod a TaskRun uses: `status.podName`, else `<taskrun>-pod` (`kmeta.ChildName`: hashed for
/// long names, [`child_name`]), with `-retry<N>` once N attempts
/// are archived in `retriesStatus` (`pkg/pod/pod.go` `podNameSuffix`; fixture `retries`:
/// `retry-run-b-pod`, `-pod-retry1`, `-pod-retry2`). The caller passes the pod of that name if it
/// exists: Tekton adopts an existing pod on AlreadyExists (`createPod`; fixture `orphan-pod`).
pub fn pod_name_for(tr: &Value) -> String {
    match get_str(tr, &["status", "podName"]) {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => {
            // `kmeta.ChildName`: hashed for a TaskRun name over 59 characters.
            let n = array(tr, &["status", "retriesStatus"]).len();
            if n > 0 {
                child_name(util::name(tr), &format!("-pod-retry{n}"))
            } else {
                child_name(util::name(tr), "-pod")
            }
        }
    }
}

/// `TaskRun.GetTimeout`: `spec.timeout`, else the 1h default.
pub fn taskrun_timeout(tr: &Value) -> TimeDelta {
    get_str(tr, &["spec", "timeout"])
        .and_then(util::parse_duration)
        .unwrap_or_else(|| TimeDelta::hours(1))
}

/// `appendPreviousConditionContext`: keeps the previous reason/message unless it was
/// Started/Running/TaskRunPending — the pod's `Pending` is kept (fixture `cancelled-inplace`:
/// "message prefixed again"; `timeout-startreset/05`: "Previous status: [Pending] Pending").
fn append_previous(before: Option<&Value>, message: String) -> String {
    let Some(c) = before else { return message };
    let reason = str_or_empty(c, &["reason"]);
    let prev = str_or_empty(c, &["message"]);
    if matches!(
        reason,
        tr_reason::STARTED | tr_reason::RUNNING | tr_reason::TASKRUN_PENDING
    ) || prev.is_empty()
    {
        return message;
    }
    format!("{message}\nPrevious status: [{reason}] {prev}")
}

/// `failTaskRun`: False with the reason, completionTime, running steps terminated, pod deleted.
fn fail(
    status: &mut Map<String, Value>,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
    actions: &mut TaskRunActions,
) {
    util::set_succeeded(status, "False", reason, message, now);
    status.insert("completionTime".into(), util::fmt_time(now).into());
    let pod = status
        .get("podName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if pod.is_empty() {
        return;
    }
    // terminateStepsInPod.
    if let Some(steps) = status.get_mut("steps").and_then(Value::as_array_mut) {
        for step in steps.iter_mut() {
            let Some(o) = step.as_object_mut() else {
                continue;
            };
            let started = if let Some(r) = o.remove("running") {
                r.get("startedAt").cloned()
            } else if o.remove("waiting").is_some() {
                Some(Value::Null)
            } else {
                continue;
            };
            let sname = o
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mut term = Map::new();
            term.insert("exitCode".into(), 1.into());
            if let Some(s) = started.filter(|s| !s.is_null()) {
                term.insert("startedAt".into(), s);
            }
            term.insert("finishedAt".into(), util::fmt_time(now).into());
            term.insert("reason".into(), reason.into());
            term.insert(
                "message".into(),
                format!("Step {sname} terminated as pod {pod} is terminated").into(),
            );
            o.insert("terminated".into(), Value::Object(term));
            o.insert("terminationReason".into(), reason.into());
        }
    }
    actions.delete_pod = Some(pod);
}

/// `retryTaskRun`: archive the status in `retriesStatus`, clear start/completion/pod/results,
/// Unknown/ToBeRetried with the failure message (`taskrun.go`).
fn retry(status: &mut Map<String, Value>, now: DateTime<Utc>) {
    let mut archived = status.clone();
    archived.remove("retriesStatus");
    let msg = util::succeeded_in(status)
        .map(|c| str_or_empty(c, &["message"]).to_string())
        .unwrap_or_default();
    let list = status
        .entry("retriesStatus")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(a) = list.as_array_mut() {
        a.push(Value::Object(archived));
    }
    for k in ["startTime", "completionTime", "results"] {
        status.remove(k);
    }
    status.insert("podName".into(), "".into());
    util::set_succeeded(status, "Unknown", tr_reason::TO_BE_RETRIED, &msg, now);
}

fn retriable(tr: &Value, status: &Map<String, Value>) -> bool {
    let retries = get(tr, &["spec", "retries"])
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let done = status
        .get("retriesStatus")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0) as i64;
    done < retries
}

/// `applyParamsContextsResultsAndWorkspaces` for what the simulator needs: `$(params.x)` (TaskRun
/// params over Task defaults), `$(results.r.path)`, `$(context.taskRun.name)`; steps get
/// `computeResources: {}` and results `type: string` (fixture `status.taskSpec`).
fn applied_task_spec(tr: &Value, spec: &Value) -> Value {
    let mut values = util::params_and_context(spec, tr, "taskRun");
    for r in array(spec, &["results"]) {
        if let Some(n) = get_str(r, &["name"]) {
            values.insert(
                format!("results.{n}.path"),
                format!("{}/{n}", rules::RESULTS_DIR),
            );
        }
    }
    let f = |e: &str| values.get(e).cloned();
    let mut out = spec.clone();
    if let Some(steps) = out.get_mut("steps") {
        util::substitute_value(steps, &f);
        if let Some(a) = steps.as_array_mut() {
            for s in a.iter_mut().filter_map(Value::as_object_mut) {
                s.entry("computeResources").or_insert_with(|| json!({}));
            }
        }
    }
    if let Some(rs) = out.get_mut("results").and_then(Value::as_array_mut) {
        for r in rs.iter_mut().filter_map(Value::as_object_mut) {
            r.entry("type").or_insert_with(|| "string".into());
        }
    }
    out
}

/// The pod Tekton creates for a TaskRun (`pkg/pod/pod.go` `Build`, reduced): init containers
/// `prepare` and `place-scripts`, one `step-<name>` container per step, labels of the TaskRun plus
/// `tekton.dev/taskRun`, owner reference to the TaskRun (controller, blockOwnerDeletion).
pub fn build_pod(tr: &Value, task_spec: &Value) -> Value {
    let mut labels: Map<String, Value> = get(tr, &["metadata", "labels"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(rules::LABEL_TASK_RUN.into(), util::name(tr).into());
    labels.insert(rules::LABEL_TASK_RUN_UID.into(), util::uid(tr).into());
    labels.insert(rules::LABEL_MANAGED_BY.into(), rules::MANAGED_BY.into());
    let containers: Vec<Value> = array(task_spec, &["steps"])
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = get_str(s, &["name"])
                .map(str::to_string)
                .unwrap_or_else(|| format!("unnamed-{i}"));
            json!({
                "name": format!("step-{n}"),
                "image": str_or_empty(s, &["image"]),
                "command": ["/tekton/bin/entrypoint"],
            })
        })
        .collect();
    let deadline = (taskrun_timeout(tr).num_seconds() as f64 * 1.5) as i64;
    let mut spec = json!({
        "restartPolicy": "Never",
        "initContainers": [
            {"name": "prepare", "image": "ghcr.io/tektoncd/pipeline/entrypoint"},
            {"name": "place-scripts", "image": "cgr.dev/chainguard/busybox"},
        ],
        "containers": containers,
    });
    if deadline > 0 {
        spec["activeDeadlineSeconds"] = deadline.into();
    }
    if let Some(sa) = get(tr, &["spec", "serviceAccountName"]) {
        spec["serviceAccountName"] = sa.clone();
    }
    // Workspace claims as volumes (`workspace.CreateVolumes`) and the required pod affinity to
    // the affinity assistant named by the TaskRun's annotation (`affinityassistant.NewTransformer`).
    let volumes = super::volumeclaim::pod_volumes(tr);
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    if let Some(a) = super::affinity::pod_affinity(tr) {
        spec["affinity"] = a;
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name_for(tr),
            "namespace": util::namespace(tr),
            "labels": labels,
            "annotations": get(tr, &["metadata", "annotations"]).cloned().unwrap_or_else(|| json!({})),
            "ownerReferences": [{
                "apiVersion": "tekton.dev/v1",
                "kind": "TaskRun",
                "name": util::name(tr),
                "uid": util::uid(tr),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": {"phase": "Pending"},
    })
}

struct Entry {
    key: String,
    value: String,
    kind: i64,
}

fn parse_termination(msg: &str) -> Vec<Entry> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(msg) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|i| Entry {
            key: str_or_empty(i, &["key"]).to_string(),
            value: str_or_empty(i, &["value"]).to_string(),
            kind: i.get("type").and_then(Value::as_i64).unwrap_or(0),
        })
        .collect()
}

fn is_step(name: &str) -> bool {
    name.starts_with("step-")
}

/// `getWaitingMessage` (`pkg/pod/status.go`) for a pending pod: the first condition that is not
/// `True` (e.g. the scheduler's `PodScheduled=False`), else the pod's message, else `Pending`.
fn waiting_message(pod: &Value) -> String {
    if let Some(c) = array(pod, &["status", "conditions"])
        .iter()
        .find(|c| str_or_empty(c, &["status"]) != "True")
    {
        return format!(
            "pod status {:?}:{:?}; message: {:?}",
            str_or_empty(c, &["type"]),
            str_or_empty(c, &["status"]),
            str_or_empty(c, &["message"])
        );
    }
    match str_or_empty(pod, &["status", "message"]) {
        "" => "Pending".to_string(),
        m => m.to_string(),
    }
}

/// Succeeded → Unknown/Running, "Not all Steps in the Task have finished executing".
fn set_running(status: &mut Map<String, Value>, now: DateTime<Utc>) {
    util::set_succeeded(
        status,
        "Unknown",
        tr_reason::RUNNING,
        rules::MSG_TR_RUNNING,
        now,
    );
}

/// `MakeTaskRunStatus`: condition, podName, steps and results from the pod.
fn status_from_pod(status: &mut Map<String, Value>, pod: &Value, now: DateTime<Utc>) {
    let cur = util::succeeded_in(status).cloned();
    if cur
        .as_ref()
        .is_none_or(|c| str_or_empty(c, &["status"]) == "Unknown")
    {
        set_running(status, now);
    }
    let phase = str_or_empty(pod, &["status", "phase"]);
    let statuses: Vec<&Value> = array(pod, &["status", "containerStatuses"])
        .iter()
        .filter(|c| is_step(str_or_empty(c, &["name"])))
        .collect();
    let all_terminated = !statuses.is_empty()
        && statuses.len()
            == array(pod, &["spec", "containers"])
                .iter()
                .filter(|c| is_step(str_or_empty(c, &["name"])))
                .count()
        && statuses
            .iter()
            .all(|c| get(c, &["state", "terminated"]).is_some());
    let complete = phase == "Succeeded" || phase == "Failed" || all_terminated;
    let failed_step = statuses.iter().find(|c| {
        get(c, &["state", "terminated", "exitCode"])
            .and_then(Value::as_i64)
            .is_some_and(|e| e != 0)
    });
    if complete {
        if phase == "Failed" || failed_step.is_some() {
            let (reason, message) = match failed_step {
                Some(c) => {
                    let t = &c["state"]["terminated"];
                    let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(1);
                    let mut m = format!("{:?} exited with code {code}", str_or_empty(c, &["name"]));
                    let r = str_or_empty(t, &["reason"]);
                    if !r.is_empty() {
                        m.push_str(&format!(": {r}"));
                    }
                    (tr_reason::STEP_FAILED, m)
                }
                None => (
                    tr_reason::FAILED,
                    "build failed for unspecified reasons.".to_string(),
                ),
            };
            util::set_succeeded(status, "False", reason, &message, now);
        } else {
            util::set_succeeded(
                status,
                "True",
                tr_reason::SUCCEEDED,
                rules::MSG_TR_SUCCEEDED,
                now,
            );
        }
        status.insert("completionTime".into(), util::fmt_time(now).into());
    } else if phase == "Running" {
        set_running(status, now);
    } else if phase == "Pending" || phase.is_empty() {
        util::set_succeeded(
            status,
            "Unknown",
            tr_reason::PENDING,
            &waiting_message(pod),
            now,
        );
    }
    status.insert("podName".into(), util::name(pod).into());

    let mut steps = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    for c in &statuses {
        let cname = str_or_empty(c, &["name"]);
        let mut step = Map::new();
        step.insert("container".into(), cname.into());
        if let Some(id) = c.get("imageID") {
            step.insert("imageID".into(), id.clone());
        }
        step.insert("name".into(), cname.trim_start_matches("step-").into());
        if let Some(r) = get(c, &["state", "running"]) {
            step.insert("running".into(), r.clone());
        } else if let Some(w) = get(c, &["state", "waiting"]) {
            step.insert("waiting".into(), w.clone());
        } else if let Some(t) = get(c, &["state", "terminated"]) {
            let mut t = t.as_object().cloned().unwrap_or_default();
            let entries = parse_termination(t.get("message").and_then(Value::as_str).unwrap_or(""));
            let mut kept = Vec::new();
            for e in &entries {
                if e.kind == rules::RESULT_TYPE_INTERNAL {
                    if e.key == "StartedAt" {
                        if let Some(ts) = util::parse_time(&e.value) {
                            t.insert("startedAt".into(), util::fmt_time(ts).into());
                        }
                    }
                    continue;
                }
                if e.kind == rules::RESULT_TYPE_TASK {
                    results.retain(|r| str_or_empty(r, &["name"]) != e.key);
                    results.push(json!({"name": e.key, "type": "string", "value": e.value}));
                }
                kept.push(json!({"key": e.key, "value": e.value, "type": e.kind}));
            }
            if kept.is_empty() {
                t.remove("message");
            } else {
                t.insert(
                    "message".into(),
                    Value::String(Value::Array(kept).to_string()),
                );
            }
            let reason = t.get("reason").cloned().unwrap_or_else(|| "".into());
            step.insert("terminated".into(), Value::Object(t));
            step.insert("terminationReason".into(), reason);
        }
        steps.push(Value::Object(step));
    }
    if !steps.is_empty() {
        status.insert("steps".into(), Value::Array(steps));
    }
    if !results.is_empty() {
        status.insert("results".into(), Value::Array(results));
    }
}

/// One TaskRun reconcile. `task` is the referenced Task object (only read while `status.taskSpec`
/// is not yet set: re-created TaskRuns re-resolve their `taskRef` — fixture `dag-failed`); `pod`
/// is the pod named [`pod_name_for`] if it exists.
pub fn reconcile_taskrun(
    tr: &Value,
    task: Option<&Value>,
    pod: Option<&Value>,
    now: DateTime<Utc>,
) -> TaskRunActions {
    let mut actions = TaskRunActions::default();
    if !rules::managed_by_tekton(tr) {
        return actions;
    }
    // Being deleted (e.g. foreground deletion waiting for its pod): knative's generated reconciler
    // skips ReconcileKind, so no pod is re-created for it.
    if get(tr, &["metadata", "deletionTimestamp"]).is_some() {
        return actions;
    }
    let mut status: Map<String, Value> = tr
        .get("status")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let spec_status = str_or_empty(tr, &["spec", "status"]);
    let cancelled = spec_status == rules::TR_SPEC_CANCELLED;
    let done_on_entry = util::is_done(tr);
    if !done_on_entry {
        let before = util::succeeded(tr).cloned();
        if !status.contains_key("startTime") && spec_status != tr_reason::TASKRUN_PENDING {
            status.insert("startTime".into(), util::start_time(tr, now).into());
            let cur = util::succeeded_in(&status).cloned();
            let msg = cur
                .as_ref()
                .map(|c| str_or_empty(c, &["message"]).to_string())
                .unwrap_or_default();
            util::set_succeeded(&mut status, "Unknown", tr_reason::STARTED, &msg, now);
        }
        let start = util::time_at(&Value::Object(status.clone()), &["startTime"]);
        let timeout = taskrun_timeout(tr);
        if cancelled {
            let msg = format!(
                "TaskRun {:?} was cancelled. {}",
                util::name(tr),
                str_or_empty(tr, &["spec", "statusMessage"])
            );
            let msg = append_previous(before.as_ref(), msg);
            fail(&mut status, tr_reason::CANCELLED, &msg, now, &mut actions);
        } else if spec_status == tr_reason::TASKRUN_PENDING {
            let msg = format!("TaskRun {:?} is pending", util::name(tr));
            util::set_succeeded(
                &mut status,
                "Unknown",
                tr_reason::TASKRUN_PENDING,
                &msg,
                now,
            );
        } else if start.is_some_and(|s| timeout > TimeDelta::zero() && now - s > timeout) {
            let msg = format!(
                "TaskRun {:?} failed to finish within {:?}",
                util::name(tr),
                util::format_duration(timeout)
            );
            let msg = append_previous(before.as_ref(), msg);
            fail(&mut status, tr_reason::TIMEOUT, &msg, now, &mut actions);
        } else {
            let spec = status
                .get("taskSpec")
                .cloned()
                .or_else(|| get(tr, &["spec", "taskSpec"]).cloned())
                .or_else(|| task.and_then(|t| t.get("spec")).cloned());
            match spec {
                None => {
                    let msg = format!(
                        "error when listing tasks for taskRun {}: tasks.tekton.dev {:?} not found",
                        util::name(tr),
                        str_or_empty(tr, &["spec", "taskRef", "name"])
                    );
                    util::set_succeeded(
                        &mut status,
                        "False",
                        tr_reason::FAILED_RESOLUTION,
                        &msg,
                        now,
                    );
                    status.insert("completionTime".into(), util::fmt_time(now).into());
                }
                Some(spec) => {
                    let applied = if status.contains_key("taskSpec") {
                        spec
                    } else {
                        applied_task_spec(tr, &spec)
                    };
                    status.insert("taskSpec".into(), applied.clone());
                    status.entry("provenance").or_insert_with(rules::provenance);
                    let mut with_status = tr.clone();
                    with_status["status"] = Value::Object(status.clone());
                    let the_pod = match pod {
                        Some(p) => p.clone(),
                        None => {
                            let p = build_pod(&with_status, &applied);
                            actions.create_pod = Some(p.clone());
                            p
                        }
                    };
                    status_from_pod(&mut status, &the_pod, now);
                }
            }
        }
    }
    // emitReconcileEvents: a failed, non-cancelled TaskRun with retries left is retried.
    let failed =
        util::succeeded_in(&status).is_some_and(|c| str_or_empty(c, &["status"]) == "False");
    if failed && !cancelled && retriable(tr, &status) {
        retry(&mut status, now);
    }
    let new = Value::Object(status);
    if tr.get("status") != Some(&new) && !(done_on_entry && tr.get("status").is_none()) {
        actions.status = Some(new);
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED_POD: &str = "dag-failed/01-failed-pod-demo-run-b-pod.json";
    const FAILED_TR: &str = "dag-failed/01-failed-taskrun-demo-run-b.json";
    const BUILD_TASK: &str = "dag-failed/00-setup-task-build.json";

    fn now() -> DateTime<Utc> {
        util::parse_time("2026-11-26T19:40:00Z").expect("now")
    }

    use crate::simulator::fixture::load as fixture;

    /// The `status` an action writes, in a TaskRun-shaped object, after checking that its
    /// Succeeded condition is `want` (status, reason, message).
    fn written_with(status: Option<Value>, want: (&str, &str, &str)) -> Value {
        let wrapped = json!({"status": status.expect("status")});
        assert_eq!(util::succeeded_parts(&wrapped), Some(want));
        wrapped
    }

    /// A freshly created TaskRun (the fixture's b without status).
    fn new_tr() -> Value {
        let mut tr = fixture(FAILED_TR);
        tr.as_object_mut().expect("obj").remove("status");
        tr
    }

    #[test]
    fn pod_names_follow_retries() {
        let mut tr = new_tr();
        assert_eq!(pod_name_for(&tr), "demo-run-b-pod");
        tr["status"] = json!({"podName": "", "retriesStatus": [{}, {}]});
        assert_eq!(pod_name_for(&tr), "demo-run-b-pod-retry2");
        tr["status"]["podName"] = "x-pod".into();
        assert_eq!(pod_name_for(&tr), "x-pod");
    }

    #[test]
    fn new_taskrun_gets_a_pending_pod_and_resolved_spec() {
        let task = fixture(BUILD_TASK);
        let a = reconcile_taskrun(&new_tr(), Some(&task), None, now());
        let pod = a.create_pod.expect("pod created");
        assert_eq!(util::name(&pod), "demo-run-b-pod");
        assert_eq!(util::label(&pod, rules::LABEL_TASK_RUN), Some("demo-run-b"));
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "TaskRun");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(pod["spec"]["containers"][0]["name"], "step-compile");
        let wrapped = written_with(a.status, ("Unknown", "Pending", "Pending"));
        let script = str_or_empty(&wrapped["status"]["taskSpec"]["steps"][0], &["script"]);
        assert!(
            script.contains("echo building commit-from-demo-run-a-pod"),
            "{script}"
        );
        assert!(script.contains("/tekton/results/image"), "{script}");
    }

    #[test]
    fn a_leftover_failed_pod_of_the_same_name_is_adopted() {
        let pod = fixture(FAILED_POD);
        let task = fixture(BUILD_TASK);
        let a = reconcile_taskrun(&new_tr(), Some(&task), Some(&pod), now());
        assert!(a.create_pod.is_none(), "no new pod");
        let wrapped = written_with(
            a.status,
            (
                "False",
                "StepFailed",
                "\"step-compile\" exited with code 1: Error",
            ),
        );
        assert_eq!(wrapped["status"]["podName"], "demo-run-b-pod");
        assert_eq!(
            wrapped["status"]["steps"][0]["terminated"]["startedAt"],
            "2026-11-26T19:27:14Z"
        );
        assert!(
            wrapped["status"]["steps"][0]["terminated"]
                .get("message")
                .is_none(),
            "internal entries removed"
        );
    }

    #[test]
    fn a_taskrun_being_deleted_gets_no_new_pod() {
        let mut tr = new_tr();
        tr["metadata"]["deletionTimestamp"] = "2026-11-26T19:39:00Z".into();
        assert!(reconcile_taskrun(&tr, Some(&fixture(BUILD_TASK)), None, now()).is_empty());
    }

    #[test]
    fn done_taskrun_is_left_alone() {
        let tr = fixture(FAILED_TR);
        assert!(reconcile_taskrun(&tr, None, None, now()).is_empty());
    }

    #[test]
    fn cancellation_fails_terminates_steps_and_deletes_the_pod() {
        let mut tr = new_tr();
        tr["spec"]["status"] = rules::TR_SPEC_CANCELLED.into();
        tr["spec"]["statusMessage"] = rules::MSG_CANCELLED_BY_PIPELINE.into();
        tr["status"] = json!({
            "startTime": "2026-11-26T19:39:00Z", "podName": "demo-run-b-pod",
            "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": rules::MSG_TR_RUNNING}],
            "steps": [{"name": "compile", "container": "step-compile", "running": {"startedAt": "2026-11-26T19:39:01Z"}}],
        });
        let a = reconcile_taskrun(&tr, None, None, now());
        assert_eq!(a.delete_pod.as_deref(), Some("demo-run-b-pod"));
        let wrapped = written_with(
            a.status,
            (
                "False",
                "TaskRunCancelled",
                "TaskRun \"demo-run-b\" was cancelled. TaskRun cancelled as the PipelineRun it belongs to has been cancelled.",
            ),
        );
        let t = &wrapped["status"]["steps"][0]["terminated"];
        assert_eq!(t["reason"], "TaskRunCancelled");
        assert_eq!(t["exitCode"], 1);
        assert_eq!(t["startedAt"], "2026-11-26T19:39:01Z");
        assert_eq!(
            t["message"],
            "Step compile terminated as pod demo-run-b-pod is terminated"
        );
    }

    #[test]
    fn timeout_fails_with_the_go_duration() {
        let mut tr = new_tr();
        tr["spec"]["timeout"] = "1m0s".into();
        tr["status"] = json!({"startTime": "2026-11-26T19:38:00Z", "podName": "",
            "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": rules::MSG_TR_RUNNING}]});
        written_with(
            reconcile_taskrun(&tr, None, None, now()).status,
            (
                "False",
                "TaskRunTimeout",
                "TaskRun \"demo-run-b\" failed to finish within \"1m0s\"",
            ),
        );
    }

    #[test]
    fn a_failure_with_retries_left_is_archived_and_retried() {
        let mut tr = new_tr();
        tr["spec"]["retries"] = 1.into();
        let pod = fixture(FAILED_POD);
        let task = fixture(BUILD_TASK);
        let st = reconcile_taskrun(&tr, Some(&task), Some(&pod), now())
            .status
            .expect("status");
        let wrapped = json!({"status": st});
        assert_eq!(
            util::succeeded_parts(&wrapped).map(|(s, r, _)| (s, r)),
            Some(("Unknown", "ToBeRetried"))
        );
        assert_eq!(wrapped["status"]["podName"], "");
        assert!(wrapped["status"].get("startTime").is_none());
        let archived = &wrapped["status"]["retriesStatus"][0];
        assert_eq!(archived["podName"], "demo-run-b-pod");
        assert_eq!(archived["conditions"][0]["reason"], "StepFailed");
        let mut retried = tr.clone();
        retried["status"] = wrapped["status"].clone();
        assert_eq!(pod_name_for(&retried), "demo-run-b-pod-retry1");
        // No retry is left once one attempt is archived.
        let again = reconcile_taskrun(&retried, Some(&task), Some(&pod), now());
        let wrapped = json!({"status": again.status.expect("status")});
        assert_eq!(
            util::succeeded_parts(&wrapped).map(|(s, r, _)| (s, r)),
            Some(("False", "StepFailed"))
        );
        assert_eq!(
            wrapped["status"]["retriesStatus"].as_array().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn previous_status_context_is_kept_except_for_running_states() {
        let c = |r: &str| json!({"reason": r, "message": "m"});
        assert_eq!(append_previous(Some(&c("Running")), "x".into()), "x");
        assert_eq!(append_previous(Some(&c("Started")), "x".into()), "x");
        assert_eq!(
            append_previous(Some(&c("Pending")), "x".into()),
            "x\nPrevious status: [Pending] m"
        );
        assert_eq!(
            append_previous(Some(&c("ToBeRetried")), "x".into()),
            "x\nPrevious status: [ToBeRetried] m"
        );
        assert_eq!(append_previous(None, "x".into()), "x");
    }
}

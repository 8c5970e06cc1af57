//! Views of a PipelineRun's child runs: TaskRuns, CustomRuns and child PipelineRuns, with the
//! outcome Tekton reads from each (pkg/reconciler/pipelinerun/resources/pipelinerunresolution.go
//! `isSuccessful`, `isFailure`, `isCancelled`, `getReason`).

use serde_json::Value;

use chrono::{DateTime, Utc};

use super::object::{fields, ObjectView};
use super::reasons::{child as r, pipelinerun_reason, pipelinerun_spec_status};
use super::time::parse_time;

/// Label Tekton sets on every child run: the pipeline task it runs.
pub const PIPELINE_TASK_LABEL: &str = "tekton.dev/pipelineTask";
/// Label Tekton sets on every child run: the PipelineRun it belongs to.
pub const PIPELINE_RUN_LABEL: &str = "tekton.dev/pipelineRun";

/// The kind of a child run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildKind {
    TaskRun,
    CustomRun,
    PipelineRun,
}

impl ChildKind {
    pub fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "TaskRun" => Some(ChildKind::TaskRun),
            "CustomRun" | "Run" => Some(ChildKind::CustomRun),
            "PipelineRun" => Some(ChildKind::PipelineRun),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChildKind::TaskRun => "TaskRun",
            ChildKind::CustomRun => "CustomRun",
            ChildKind::PipelineRun => "PipelineRun",
        }
    }

    /// The version Tekton creates this kind in (`CustomRun` is only served as `v1beta1`).
    pub fn default_api_version(self) -> &'static str {
        match self {
            ChildKind::CustomRun => "tekton.dev/v1beta1",
            ChildKind::TaskRun | ChildKind::PipelineRun => "tekton.dev/v1",
        }
    }
}

/// What a child run tells about its pipeline task.
/// The reasons borrow the object (or are Tekton's constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildOutcome<'a> {
    /// Not done and not asked to stop.
    Running,
    Succeeded,
    /// Done, `False`, for another reason than cancellation or timeout.
    Failed(&'a str),
    /// Done and cancelled, or asked to cancel (`spec.status`) and not yet done.
    Cancelled(&'a str),
    /// Done with the kind's timeout reason.
    TimedOut(&'a str),
}

impl ChildOutcome<'_> {
    /// Whether Tekton considers the run done, or the run was asked to cancel.
    pub fn is_settled(&self) -> bool {
        !matches!(self, ChildOutcome::Running)
    }
}

/// A borrowed view of one child run. The fields the planner reads for every run are looked up
/// once, when the view is made.
#[derive(Clone, Copy, Debug)]
pub struct ChildView<'a> {
    pub obj: ObjectView<'a>,
    /// `metadata.name`.
    pub name: &'a str,
    pub kind: ChildKind,
    /// `apiVersion` of the object, or of its kind when the object does not say.
    pub api_version: &'a str,
    /// `metadata.uid`.
    uid: &'a str,
    /// `metadata.labels`, `metadata.annotations`, `metadata.creationTimestamp`, `spec`, and the
    /// `Succeeded` condition (`Null` / `None` when absent).
    labels: &'a Value,
    annotations: &'a Value,
    created: Option<&'a str>,
    spec: &'a Value,
    condition: Option<&'a Value>,
}

impl<'a> ChildView<'a> {
    /// `None` when `kind` is not a child-run kind.
    pub fn new(json: &'a Value) -> Option<Self> {
        Self::with_fallback(json, None)
    }

    /// Like [`ChildView::new`], for objects whose `kind` may be missing (items of some list
    /// responses): then `fallback_kind` is used (e.g. the `childReferences` entry's kind), and a
    /// run labelled with its pipeline task counts as a `TaskRun`.
    pub fn with_fallback(json: &'a Value, fallback_kind: Option<&str>) -> Option<Self> {
        Self::with_kind_lookup(json, |_| fallback_kind)
    }

    /// Like [`ChildView::with_fallback`], asking `fallback_kind(name)` only when the object has no
    /// `kind`.
    pub fn with_kind_lookup<'k>(
        json: &'a Value,
        fallback_kind: impl FnOnce(&'a str) -> Option<&'k str>,
    ) -> Option<Self> {
        const NULL: &Value = &Value::Null;
        let [api_version, kind, metadata, spec, status] =
            fields(json, ["apiVersion", "kind", "metadata", "spec", "status"]);
        let [name, uid, labels, annotations, created] = fields(
            metadata.unwrap_or(NULL),
            ["name", "uid", "labels", "annotations", "creationTimestamp"],
        );
        let mut view = ChildView {
            obj: ObjectView::new(json),
            name: name.and_then(Value::as_str).unwrap_or_default(),
            kind: ChildKind::TaskRun,
            api_version: "",
            uid: uid.and_then(Value::as_str).unwrap_or_default(),
            labels: labels.unwrap_or(NULL),
            annotations: annotations.unwrap_or(NULL),
            created: created.and_then(Value::as_str),
            spec: spec.unwrap_or(NULL),
            condition: status.and_then(ObjectView::succeeded_condition_of),
        };
        view.kind = match kind.and_then(Value::as_str).unwrap_or_default() {
            "" => match fallback_kind(view.name) {
                Some(k) => ChildKind::from_kind(k)?,
                None if view.label(PIPELINE_TASK_LABEL).is_some() => ChildKind::TaskRun,
                None => return None,
            },
            k => ChildKind::from_kind(k)?,
        };
        view.api_version = match api_version.and_then(Value::as_str).unwrap_or_default() {
            "" => view.kind.default_api_version(),
            v => v,
        };
        Some(view)
    }

    pub fn name(&self) -> &'a str {
        self.name
    }

    pub fn uid(&self) -> &'a str {
        self.uid
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        let [v] = fields(self.labels, [key]);
        v.and_then(Value::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        let [v] = fields(self.annotations, [key]);
        v.and_then(Value::as_str)
    }

    pub fn creation_timestamp(&self) -> Option<DateTime<Utc>> {
        self.created.and_then(parse_time)
    }

    /// `spec.status` (a cancel request), when set and non-empty.
    pub fn spec_status(&self) -> Option<&'a str> {
        self.spec["status"].as_str().filter(|s| !s.is_empty())
    }

    /// The pipeline task it ran (`tekton.dev/pipelineTask` label).
    pub fn pipeline_task_label(&self) -> Option<&'a str> {
        self.label(PIPELINE_TASK_LABEL)
    }

    /// Whether `spec.status` asks this run to cancel (`TaskRunCancelled`, `RunCancelled`, or a
    /// PipelineRun cancel/stop request).
    pub fn cancel_requested(&self) -> bool {
        let Some(s) = self.spec_status() else {
            return false;
        };
        match self.kind {
            ChildKind::TaskRun => s == r::TASKRUN_SPEC_CANCELLED,
            ChildKind::CustomRun => s == r::CUSTOMRUN_SPEC_CANCELLED,
            ChildKind::PipelineRun => matches!(
                s,
                pipelinerun_spec_status::CANCELLED
                    | pipelinerun_spec_status::CANCELLED_RUN_FINALLY
                    | pipelinerun_spec_status::STOPPED_RUN_FINALLY
            ),
        }
    }

    /// The outcome. A run not yet done counts as cancelled only when `cancel_counts` is set (the
    /// PipelineRun itself was cancelled) and the run was asked to cancel: Tekton marks a cancelled
    /// PipelineRun done before its children finish cancelling (fixture `cancelled/timeline.txt`:
    /// run `False/Cancelled` at 19:29:15.998, `demo-run-b` `False/TaskRunCancelled` at 16.018).
    pub fn outcome(&self, cancel_counts: bool) -> ChildOutcome<'a> {
        let [status, reason] = match self.condition {
            Some(c) => fields(c, ["status", "reason"]),
            None => [None, None],
        };
        let reason = reason.and_then(Value::as_str).unwrap_or_default();
        match status.and_then(Value::as_str) {
            Some("True") => ChildOutcome::Succeeded,
            Some("False") => self.failure(reason),
            _ => {
                if cancel_counts && self.cancel_requested() {
                    ChildOutcome::Cancelled(self.spec_status().unwrap_or_default())
                } else {
                    ChildOutcome::Running
                }
            }
        }
    }

    /// The outcome of a run whose `Succeeded` condition is `False`, from its reason.
    fn failure(&self, reason: &'a str) -> ChildOutcome<'a> {
        let (cancelled, timeout) = match self.kind {
            ChildKind::TaskRun => (r::TASKRUN_CANCELLED, r::TASKRUN_TIMEOUT),
            ChildKind::CustomRun => (r::CUSTOMRUN_CANCELLED, r::CUSTOMRUN_TIMEOUT),
            ChildKind::PipelineRun => {
                (pipelinerun_reason::CANCELLED, pipelinerun_reason::TIMED_OUT)
            }
        };
        if reason == cancelled {
            ChildOutcome::Cancelled(reason)
        } else if reason == timeout {
            ChildOutcome::TimedOut(reason)
        } else if self.cancel_requested() {
            // Cancelled while a step was ending: Tekton's `isCancelled` checks the condition
            // reason; a failure after a cancel request is still a failure to re-run, reported as
            // cancelled.
            ChildOutcome::Cancelled(if reason.is_empty() {
                "Cancelled"
            } else {
                reason
            })
        } else {
            ChildOutcome::Failed(if reason.is_empty() { "Failed" } else { reason })
        }
    }

    /// PVC claim names this run mounts (`spec.workspaces[].persistentVolumeClaim.claimName`),
    /// as `(task workspace name, claim)`.
    pub fn claims(&self) -> Vec<(&'a str, &'a str)> {
        let [workspaces] = fields(self.spec, ["workspaces"]);
        workspaces
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|w| {
                        Some((
                            w["name"].as_str().unwrap_or_default(),
                            w["persistentVolumeClaim"]["claimName"]
                                .as_str()
                                .filter(|c| !c.is_empty())?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the run wrote the result `name` (`status.results`; a CustomRun's too).
    pub fn has_result(&self, name: &str) -> bool {
        self.obj.json()["status"]["results"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| r["name"].as_str() == Some(name)))
    }

    /// `status.retriesStatus` entries: automatic retries Tekton already made.
    pub fn automatic_retries(&self) -> usize {
        self.retries_status().len()
    }

    /// `status.retriesStatus`: the status of each earlier automatic attempt (its `podName`,
    /// `steps`, …), oldest first.
    pub fn retries_status(&self) -> &'a [Value] {
        self.obj.json()["status"]["retriesStatus"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tr(spec_status: &str, status: &str, reason: &str) -> Value {
        json!({"kind": "TaskRun", "metadata": {"name": "x"},
               "spec": {"status": spec_status},
               "status": {"conditions": [{"type": "Succeeded", "status": status, "reason": reason}]}})
    }

    #[test]
    fn classifies_taskruns() {
        let cancelled = "TaskRunCancelled";
        // (spec.status, Succeeded status and reason, whether a cancel counts, the outcome)
        for (spec_status, status, reason, cancel_counts, want) in [
            ("", "True", "Succeeded", false, ChildOutcome::Succeeded),
            (
                "",
                "False",
                "StepFailed",
                false,
                ChildOutcome::Failed("StepFailed"),
            ),
            (
                cancelled,
                "False",
                cancelled,
                false,
                ChildOutcome::Cancelled(cancelled),
            ),
            (
                "",
                "False",
                "TaskRunTimeout",
                false,
                ChildOutcome::TimedOut("TaskRunTimeout"),
            ),
            ("", "Unknown", "Running", true, ChildOutcome::Running),
            (
                cancelled,
                "Unknown",
                "Running",
                false,
                ChildOutcome::Running,
            ),
            (
                cancelled,
                "Unknown",
                "Running",
                true,
                ChildOutcome::Cancelled(cancelled),
            ),
        ] {
            let run = tr(spec_status, status, reason);
            let got = ChildView::new(&run).expect("child").outcome(cancel_counts);
            assert_eq!(
                got, want,
                "{spec_status:?} {status} {reason} {cancel_counts}"
            );
        }
    }

    #[test]
    fn classifies_customruns_and_child_pipelineruns() {
        let cr = json!({"kind": "CustomRun", "apiVersion": "tekton.dev/v1beta1",
            "spec": {"status": "RunCancelled"},
            "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "CustomRunCancelled"}]}});
        assert_eq!(
            ChildView::new(&cr).expect("child").outcome(false),
            ChildOutcome::Cancelled("CustomRunCancelled")
        );
        let pr = json!({"kind": "PipelineRun",
            "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "PipelineRunTimeout"}]}});
        assert_eq!(
            ChildView::new(&pr).expect("child").outcome(false),
            ChildOutcome::TimedOut("PipelineRunTimeout")
        );
        assert!(ChildView::new(&json!({"kind": "Pod"})).is_none());
        let bare = json!({"metadata": {"name": "r-x", "labels": {"tekton.dev/pipelineTask": "x"}}});
        let v = ChildView::new(&bare).expect("labelled run");
        assert_eq!(
            (v.kind, v.api_version),
            (ChildKind::TaskRun, "tekton.dev/v1")
        );
        let v = ChildView::with_fallback(&bare, Some("CustomRun")).expect("custom");
        assert_eq!(
            (v.kind, v.api_version),
            (ChildKind::CustomRun, "tekton.dev/v1beta1")
        );
    }
}

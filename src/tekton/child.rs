//! Views of a PipelineRun's child runs: TaskRuns, CustomRuns and child PipelineRuns, with the
//! outcome Tekton reads from each (pkg/reconciler/pipelinerun/resources/pipelinerunresolution.go
//! `isSuccessful`, `isFailure`, `isCancelled`, `getReason`).

use serde_json::Value;

use super::object::{ConditionStatus, ObjectView};
use super::reasons::{child as r, pipelinerun_reason, pipelinerun_spec_status};

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildOutcome {
    /// Not done and not asked to stop.
    Running,
    Succeeded,
    /// Done, `False`, for another reason than cancellation or timeout.
    Failed(String),
    /// Done and cancelled, or asked to cancel (`spec.status`) and not yet done.
    Cancelled(String),
    /// Done with the kind's timeout reason.
    TimedOut(String),
}

impl ChildOutcome {
    /// Whether Tekton considers the run done, or the run was asked to cancel.
    pub fn is_settled(&self) -> bool {
        !matches!(self, ChildOutcome::Running)
    }
}

/// A borrowed view of one child run.
#[derive(Clone, Copy, Debug)]
pub struct ChildView<'a> {
    pub obj: ObjectView<'a>,
    pub kind: ChildKind,
    /// `apiVersion` of the object, or of its kind when the object does not say.
    pub api_version: &'a str,
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
        let obj = ObjectView::new(json);
        let kind = match obj.kind() {
            "" => match fallback_kind {
                Some(k) => ChildKind::from_kind(k)?,
                None if obj.label(PIPELINE_TASK_LABEL).is_some() => ChildKind::TaskRun,
                None => return None,
            },
            k => ChildKind::from_kind(k)?,
        };
        let api_version = match obj.api_version() {
            "" => kind.default_api_version(),
            v => v,
        };
        Some(ChildView {
            obj,
            kind,
            api_version,
        })
    }

    pub fn name(&self) -> &'a str {
        self.obj.name()
    }

    /// The pipeline task it ran (`tekton.dev/pipelineTask` label).
    pub fn pipeline_task_label(&self) -> Option<&'a str> {
        self.obj.label(PIPELINE_TASK_LABEL)
    }

    /// Whether `spec.status` asks this run to cancel (`TaskRunCancelled`, `RunCancelled`, or a
    /// PipelineRun cancel/stop request).
    pub fn cancel_requested(&self) -> bool {
        let Some(s) = self.obj.spec_status() else {
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
    pub fn outcome(&self, cancel_counts: bool) -> ChildOutcome {
        let reason = self.obj.reason().unwrap_or_default().to_string();
        match self.obj.succeeded_status() {
            ConditionStatus::True => ChildOutcome::Succeeded,
            ConditionStatus::Unknown => {
                if cancel_counts && self.cancel_requested() {
                    ChildOutcome::Cancelled(self.obj.spec_status().unwrap_or_default().to_string())
                } else {
                    ChildOutcome::Running
                }
            }
            ConditionStatus::False => {
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
                    // Cancelled while a step was ending: Tekton's `isCancelled` checks the
                    // condition reason; a failure after a cancel request is still a failure to
                    // re-run, reported as cancelled.
                    ChildOutcome::Cancelled(if reason.is_empty() {
                        "Cancelled".to_string()
                    } else {
                        reason
                    })
                } else {
                    ChildOutcome::Failed(if reason.is_empty() {
                        "Failed".to_string()
                    } else {
                        reason
                    })
                }
            }
        }
    }

    /// PVC claim names this run mounts (`spec.workspaces[].persistentVolumeClaim.claimName`),
    /// as `(task workspace name, claim)`.
    pub fn claims(&self) -> Vec<(&'a str, &'a str)> {
        self.obj.json()["spec"]["workspaces"]
            .as_array()
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

    /// `status.retriesStatus` entries: automatic retries Tekton already made.
    pub fn automatic_retries(&self) -> usize {
        self.obj.json()["status"]["retriesStatus"]
            .as_array()
            .map_or(0, Vec::len)
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
        let o = |v: &Value, c| ChildView::new(v).expect("child").outcome(c);
        assert_eq!(
            o(&tr("", "True", "Succeeded"), false),
            ChildOutcome::Succeeded
        );
        assert_eq!(
            o(&tr("", "False", "StepFailed"), false),
            ChildOutcome::Failed("StepFailed".into())
        );
        assert_eq!(
            o(&tr("TaskRunCancelled", "False", "TaskRunCancelled"), false),
            ChildOutcome::Cancelled("TaskRunCancelled".into())
        );
        assert_eq!(
            o(&tr("", "False", "TaskRunTimeout"), false),
            ChildOutcome::TimedOut("TaskRunTimeout".into())
        );
        assert_eq!(
            o(&tr("", "Unknown", "Running"), true),
            ChildOutcome::Running
        );
        assert_eq!(
            o(&tr("TaskRunCancelled", "Unknown", "Running"), false),
            ChildOutcome::Running
        );
        assert_eq!(
            o(&tr("TaskRunCancelled", "Unknown", "Running"), true),
            ChildOutcome::Cancelled("TaskRunCancelled".into())
        );
    }

    #[test]
    fn classifies_customruns_and_child_pipelineruns() {
        let cr = json!({"kind": "CustomRun", "apiVersion": "tekton.dev/v1beta1",
            "spec": {"status": "RunCancelled"},
            "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "CustomRunCancelled"}]}});
        assert_eq!(
            ChildView::new(&cr).expect("child").outcome(false),
            ChildOutcome::Cancelled("CustomRunCancelled".into())
        );
        let pr = json!({"kind": "PipelineRun",
            "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "PipelineRunTimeout"}]}});
        assert_eq!(
            ChildView::new(&pr).expect("child").outcome(false),
            ChildOutcome::TimedOut("PipelineRunTimeout".into())
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

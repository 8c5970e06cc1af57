//! A view of a Tekton v1 PipelineRun: `spec.status`, timeouts, workspaces, and the status fields a
//! reset reads (`childReferences`, `skippedTasks`, times, the resolved `pipelineSpec`).

use std::time::Duration;

use serde_json::Value;

use super::object::{fields, ObjectView};
use super::reasons::DEFAULT_PIPELINE_TIMEOUT_SECS;
use super::time::{parse_go_duration, DurationError};

/// One `status.childReferences` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildReference<'a> {
    pub api_version: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub name: &'a str,
    pub pipeline_task_name: &'a str,
}

/// One `status.skippedTasks` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedTask<'a> {
    pub name: &'a str,
    pub reason: &'a str,
}

/// The run's pipeline timeouts (pipelinerun_types.go `PipelineTimeout`, `TasksTimeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// `timeouts.pipeline`; `None` when it is `0` (no timeout).
    pub pipeline: Option<Duration>,
    /// `timeouts.tasks`, or `pipeline - finally` when both are set; `None`: no separate limit.
    pub tasks: Option<Duration>,
}

/// A borrowed view of a PipelineRun.
#[derive(Clone, Copy, Debug)]
pub struct PipelineRunView<'a> {
    pub obj: ObjectView<'a>,
}

impl<'a> PipelineRunView<'a> {
    pub fn new(json: &'a Value) -> Self {
        PipelineRunView {
            obj: ObjectView::new(json),
        }
    }

    pub fn json(&self) -> &'a Value {
        self.obj.json()
    }

    pub fn child_references(&self) -> Vec<ChildReference<'a>> {
        self.json()["status"]["childReferences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        let [api_version, kind, name, task] =
                            fields(c, ["apiVersion", "kind", "name", "pipelineTaskName"]);
                        Some(ChildReference {
                            api_version: api_version.and_then(Value::as_str),
                            kind: kind.and_then(Value::as_str),
                            name: name.and_then(Value::as_str)?,
                            pipeline_task_name: task.and_then(Value::as_str).unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn skipped_tasks(&self) -> Vec<SkippedTask<'a>> {
        self.json()["status"]["skippedTasks"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| {
                        let [name, reason] = fields(s, ["name", "reason"]);
                        Some(SkippedTask {
                            name: name.and_then(Value::as_str)?,
                            reason: reason.and_then(Value::as_str).unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pipeline spec Tekton runs: `status.pipelineSpec` (resolved, with parameters applied,
    /// written on the first reconcile — fixture dag-failed/01), else the inline `spec.pipelineSpec`,
    /// else the referenced Pipeline's `spec`.
    pub fn pipeline_spec(&self, pipeline: Option<&'a Value>) -> Option<&'a Value> {
        let status = &self.json()["status"]["pipelineSpec"];
        if status.is_object() {
            return Some(status);
        }
        let inline = &self.json()["spec"]["pipelineSpec"];
        if inline.is_object() {
            return Some(inline);
        }
        pipeline.map(|p| &p["spec"]).filter(|s| s.is_object())
    }

    /// The pipeline timeouts. An absent `timeouts.pipeline` is the 1h default the webhook writes.
    pub fn timeouts(&self) -> Result<Timeouts, DurationError> {
        let t = &self.json()["spec"]["timeouts"];
        let read = |k: &str| t[k].as_str().map(parse_go_duration).transpose();
        let pipeline_raw = read("pipeline")?;
        let tasks_raw = read("tasks")?;
        let finally_raw = read("finally")?;
        let pipeline_total =
            pipeline_raw.unwrap_or(Duration::from_secs(DEFAULT_PIPELINE_TIMEOUT_SECS));
        let non_zero = |d: Duration| (!d.is_zero()).then_some(d);
        let tasks = match (tasks_raw, pipeline_raw, finally_raw) {
            (Some(t), _, _) => non_zero(t),
            (None, Some(p), Some(f)) if !p.is_zero() && !f.is_zero() => Some(p.saturating_sub(f)),
            _ => None,
        };
        Ok(Timeouts {
            pipeline: non_zero(pipeline_total),
            tasks,
        })
    }

    /// `spec.pipelineRef.name`: the Pipeline the run references, if it names one.
    pub fn pipeline_ref_name(&self) -> Option<&'a str> {
        self.json()["spec"]["pipelineRef"]["name"].as_str()
    }

    /// `spec.managedBy`: the controller that reconciles the run, when set and non-empty.
    pub fn managed_by(&self) -> Option<&'a str> {
        self.json()["spec"]["managedBy"]
            .as_str()
            .filter(|m| !m.is_empty())
    }

    /// Whether a workspace binds a claim (`persistentVolumeClaim` or `volumeClaimTemplate`).
    pub fn binds_claims(&self) -> bool {
        self.workspace_bindings().iter().any(|(_, b)| {
            b.get("persistentVolumeClaim").is_some() || b.get("volumeClaimTemplate").is_some()
        })
    }

    /// `spec.workspaces` bindings by name.
    pub fn workspace_bindings(&self) -> Vec<(&'a str, &'a Value)> {
        self.json()["spec"]["workspaces"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| Some((w["name"].as_str()?, w)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_reference_controller_and_claims() {
        let v = json!({"spec": {"pipelineRef": {"name": "p"}, "managedBy": "",
            "workspaces": [{"name": "src", "emptyDir": {}}]}});
        let run = PipelineRunView::new(&v);
        assert_eq!(run.pipeline_ref_name(), Some("p"));
        assert_eq!(run.managed_by(), None, "empty means Tekton");
        assert!(!run.binds_claims());
        let v = json!({"spec": {"managedBy": "kueue.x-k8s.io/multikueue", "workspaces": [
            {"name": "src", "volumeClaimTemplate": {"spec": {}}}]}});
        let run = PipelineRunView::new(&v);
        assert_eq!(run.pipeline_ref_name(), None);
        assert_eq!(run.managed_by(), Some("kueue.x-k8s.io/multikueue"));
        assert!(run.binds_claims());
    }

    #[test]
    fn timeouts_follow_tekton_defaults() {
        let t = |timeouts: Value| {
            PipelineRunView::new(&json!({"spec": {"timeouts": timeouts}}))
                .timeouts()
                .expect("valid")
        };
        assert_eq!(t(json!(null)).pipeline, Some(Duration::from_secs(3600)));
        assert_eq!(t(json!({"pipeline": "0s"})).pipeline, None);
        assert_eq!(
            t(json!({"pipeline": "1m0s"})).pipeline,
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            t(json!({"pipeline": "1h", "finally": "10m"})).tasks,
            Some(Duration::from_secs(3000))
        );
        assert_eq!(
            t(json!({"tasks": "5m"})).tasks,
            Some(Duration::from_secs(300))
        );
        assert!(
            PipelineRunView::new(&json!({"spec": {"timeouts": {"pipeline": "soon"}}}))
                .timeouts()
                .is_err()
        );
    }
}

//! Shared helpers of the planner tests: loading the recorded real-Tekton fixtures and building a
//! [`PlanInput`] over them.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tekton_retry::api::RetrySpec;
use tekton_retry::retry::plan::Claim;
use tekton_retry::retry::planner::attempt_status_reset;
use tekton_retry::retry::{Plan, PlanInput, PlanLimits};

/// `tests/fixtures/tekton/<rel>` parsed as JSON.
pub fn fixture(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/tekton")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The PipelineRun and child runs recorded at one moment of a scenario: files
/// `<scenario>/<moment>-pipelinerun-*.json` and `<moment>-taskrun-*.json`.
pub fn moment(scenario: &str, moment: &str) -> (Value, Vec<Value>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/tekton")
        .join(scenario);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let run_prefix = format!("{moment}-pipelinerun-");
    let tr_prefix = format!("{moment}-taskrun-");
    let run_file = names
        .iter()
        .find(|n| n.starts_with(&run_prefix))
        .unwrap_or_else(|| panic!("no {run_prefix}* in {scenario}"));
    let run = fixture(&format!("{scenario}/{run_file}"));
    let children = names
        .iter()
        .filter(|n| n.starts_with(&tr_prefix))
        .map(|n| fixture(&format!("{scenario}/{n}")))
        .collect();
    (run, children)
}

pub fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

/// A planner input with default limits and no Pipeline or PVC list.
pub fn input<'a>(
    run: &'a Value,
    children: &'a [Value],
    spec: &'a RetrySpec,
    now: DateTime<Utc>,
) -> PlanInput<'a> {
    PlanInput {
        pipeline_run: run,
        children,
        pipeline: None,
        existing_pvcs: None,
        spec,
        record: None,
        now,
        limits: PlanLimits::default(),
    }
}

/// The status patch production writes for `plan` on `run` at `now`: the attempt record the engine
/// claims ([`Plan::record`]) turned into the reset by the executor's own function.
pub fn reset_patch(plan: &Plan, run: &Value, now: DateTime<Utc>) -> Value {
    let record = plan.record(Claim {
        namespace: "ns",
        name: "run",
        by: "tester",
        reason: None,
        finally: None,
        start: now.to_rfc3339(),
    });
    attempt_status_reset(run, &record, now)
}

pub fn pvcs(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Names of the runs a plan deletes at once, after the spec clear.
pub fn names(runs: &[tekton_retry::retry::ChildRun]) -> Vec<&str> {
    runs.iter().map(|c| c.name.as_str()).collect()
}

/// Name, kind and apiVersion of each run the plan deletes at once.
pub fn deleted_now(plan: &Plan) -> Vec<(&str, &str, &str)> {
    let runs = plan.delete_now.iter();
    runs.map(|c| (c.name.as_str(), c.kind.as_str(), c.api_version.as_str()))
        .collect()
}

/// `status.startTime` and `status.completionTime` of attempt 1, as the plan carries them.
pub fn original_times(plan: &Plan) -> (Option<&str>, Option<&str>) {
    (
        plan.original.start.as_deref(),
        plan.original.completion.as_deref(),
    )
}

/// Asserts that the reset written for `plan` on `run` at `now` keeps the `childReferences` that
/// the reset Tekton accepted in the recorded request `fixture_path` kept.
pub fn assert_references_as_recorded(plan: &Plan, run: &Value, now: &str, fixture_path: &str) {
    let real = fixture(fixture_path);
    assert_eq!(
        reset_patch(plan, run, time(now))["childReferences"],
        real["status"]["childReferences"],
        "{fixture_path}"
    );
}

/// Outcome of a synthetic child run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    Succeeded,
    Failed,
    Cancelled,
    Timeout,
    Running,
}

/// A synthetic PipelineRun shaped like the recorded ones (`status.pipelineSpec`,
/// `childReferences`, `skippedTasks`), for hand-made cases and generated DAGs.
#[derive(Clone, Debug)]
pub struct Sim {
    pub name: String,
    pub tasks: Vec<Value>,
    pub finally: Vec<Value>,
    pub children: Vec<Value>,
    pub refs: Vec<Value>,
    pub skipped: Vec<Value>,
    pub reason: String,
    pub condition: String,
}

pub const START: &str = "2026-11-26T10:00:00Z";
pub const END: &str = "2026-11-26T10:05:00Z";
pub const NOW: &str = "2026-11-26T10:10:00Z";

impl Sim {
    pub fn new() -> Self {
        Sim {
            name: "run".into(),
            tasks: Vec::new(),
            finally: Vec::new(),
            children: Vec::new(),
            refs: Vec::new(),
            skipped: Vec::new(),
            reason: "Failed".into(),
            condition: "False".into(),
        }
    }

    /// Adds a DAG task (`extra` is merged into `{name, taskRef}`).
    pub fn task(mut self, name: &str, extra: Value) -> Self {
        self.tasks.push(pipeline_task(name, extra));
        self
    }

    pub fn finally_task(mut self, name: &str, extra: Value) -> Self {
        self.finally.push(pipeline_task(name, extra));
        self
    }

    /// Adds a TaskRun `<run>-<task>` with this outcome, referenced in childReferences.
    pub fn ran(self, task: &str, out: Out) -> Self {
        let name = format!("{}-{task}", self.name);
        self.child(task, &name, "TaskRun", out, serde_json::json!({}))
    }

    /// Adds a TaskRun for each of `tasks`, all with this outcome (as [`Sim::ran`]).
    pub fn ran_all(self, tasks: &[&str], out: Out) -> Self {
        tasks.iter().fold(self, |sim, task| sim.ran(task, out))
    }

    /// Adds a child run of any kind; `extra` is merged into the object.
    pub fn child(mut self, task: &str, name: &str, kind: &str, out: Out, extra: Value) -> Self {
        let api = if kind == "CustomRun" {
            "tekton.dev/v1beta1"
        } else {
            "tekton.dev/v1"
        };
        let (status, reason) = match (out, kind) {
            (Out::Succeeded, _) => ("True", "Succeeded"),
            (Out::Failed, _) => ("False", "Failed"),
            (Out::Cancelled, "CustomRun") => ("False", "CustomRunCancelled"),
            (Out::Cancelled, "PipelineRun") => ("False", "Cancelled"),
            (Out::Cancelled, _) => ("False", "TaskRunCancelled"),
            (Out::Timeout, "CustomRun") => ("False", "CustomRunTimedOut"),
            (Out::Timeout, "PipelineRun") => ("False", "PipelineRunTimeout"),
            (Out::Timeout, _) => ("False", "TaskRunTimeout"),
            (Out::Running, _) => ("Unknown", "Running"),
        };
        let mut obj = serde_json::json!({
            "apiVersion": api,
            "kind": kind,
            "metadata": {
                "name": name,
                "uid": format!("uid-{name}"),
                "creationTimestamp": START,
                "labels": {
                    "tekton.dev/pipelineRun": self.name,
                    "tekton.dev/pipelineTask": task,
                },
                // Tekton's controller reference (`createTaskRun`: `kmeta.NewControllerRef`).
                "ownerReferences": [{
                    "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": self.name,
                    "uid": "run-uid", "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": {},
            "status": {"conditions": [{"type": "Succeeded", "status": status, "reason": reason}]},
        });
        json_patch::merge(&mut obj, &extra);
        self.refs.push(serde_json::json!({
            "apiVersion": api, "kind": kind, "name": name, "pipelineTaskName": task,
        }));
        self.children.push(obj);
        self
    }

    pub fn skipped(mut self, task: &str, reason: &str) -> Self {
        self.skipped
            .push(serde_json::json!({"name": task, "reason": reason}));
        self
    }

    pub fn outcome(mut self, condition: &str, reason: &str) -> Self {
        self.condition = condition.into();
        self.reason = reason.into();
        self
    }

    /// The PipelineRun object.
    pub fn run(&self) -> Value {
        serde_json::json!({
            "apiVersion": "tekton.dev/v1",
            "kind": "PipelineRun",
            "metadata": {
                "name": self.name,
                "namespace": "ns",
                "uid": "run-uid",
                "annotations": {"example.dev/owner": "alice"},
            },
            "spec": {"pipelineRef": {"name": "p"}, "timeouts": {"pipeline": "1h0m0s"}},
            "status": {
                "startTime": START,
                "completionTime": END,
                "conditions": [{
                    "type": "Succeeded", "status": self.condition, "reason": self.reason,
                    "message": "m", "lastTransitionTime": END,
                }],
                "childReferences": self.refs,
                "skippedTasks": self.skipped,
                "pipelineSpec": {"tasks": self.tasks, "finally": self.finally},
                "provenance": {"featureFlags": {"enableAPIFields": "beta"}},
                "futureField": {"kept": true},
            },
        })
    }
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new()
    }
}

fn pipeline_task(name: &str, extra: Value) -> Value {
    let mut t = serde_json::json!({"name": name, "taskRef": {"kind": "Task", "name": "t"}});
    json_patch::merge(&mut t, &extra);
    t
}

//! The planner's input and output types. The planner itself is in [`super::planner`].

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::record::{AttemptRecord, LastRetry, OriginalTimes, Phase, RunRef};
use crate::api::{FinallyPolicy, RetriedTask, RetrySpec};

/// Everything the planner looks at. No I/O happens in the planner: the executor gathers this.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    /// The PipelineRun as read (full JSON, unknown fields included).
    pub pipeline_run: &'a Value,
    /// Its child runs: TaskRuns, CustomRuns and child PipelineRuns labelled
    /// `tekton.dev/pipelineRun=<name>` in the run's namespace (full JSON). Only those the run
    /// controls (ownerReference) count; the planner ignores the others.
    pub children: &'a [Value],
    /// The referenced Pipeline, when the run uses `pipelineRef` and it could be read.
    pub pipeline: Option<&'a Value>,
    /// Names of the PersistentVolumeClaims that exist in the namespace, when known
    /// (`None`: not checked).
    pub existing_pvcs: Option<&'a BTreeSet<String>>,
    pub spec: &'a RetrySpec,
    /// The run's attempt record (`None`: never retried). The current attempt and the original
    /// times come from it, never from the run's annotations, which anyone may write.
    pub record: Option<&'a AttemptRecord>,
    pub now: DateTime<Utc>,
    pub limits: PlanLimits,
}

/// Tunables of the planner.
#[derive(Clone, Copy, Debug)]
pub struct PlanLimits {
    /// Refuse when less than this much of the pipeline timeout budget is left.
    pub min_timeout_budget: Duration,
}

impl Default for PlanLimits {
    fn default() -> Self {
        PlanLimits {
            min_timeout_budget: Duration::from_secs(60),
        }
    }
}

/// A child run (TaskRun, CustomRun or child PipelineRun) the plan deletes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChildRun {
    /// e.g. `tekton.dev/v1`
    pub api_version: String,
    /// `TaskRun`, `CustomRun` or `PipelineRun`
    pub kind: String,
    pub name: String,
    pub uid: String,
    /// The pipeline task it ran.
    pub pipeline_task: String,
}

/// What a retry does. Produced by the planner, performed by the executor.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The attempt this retry starts (the first run is attempt 1, so at least 2).
    pub attempt: u32,
    pub pipeline_run_uid: String,
    /// Pipeline tasks that run again, in pipeline order (DAG tasks, then finally tasks).
    pub retried: Vec<RetriedTask>,
    /// Pipeline tasks whose succeeded runs are kept.
    pub preserved: Vec<String>,
    /// Child runs deleted before the status write.
    pub delete_now: Vec<ChildRun>,
    /// Child runs deleted only after `spec.status` is cleared (finally runs of a gracefully
    /// cancelled or stopped run: deleting them earlier schedules finally at once).
    pub delete_after_spec_clear: Vec<ChildRun>,
    /// The run carries `spec.status` (cancelled): it must be cleared after the status write.
    pub clear_spec_status: bool,
    /// Pipeline timeout budget left, measured from the original `startTime`. `None`: no timeout.
    pub remaining_timeout: Option<Duration>,
    /// `status.startTime` and `status.completionTime` of attempt 1 (from the record when already
    /// retried).
    pub original: OriginalTimes,
    /// Annotations removed from the run by the claim (`chains.tekton.dev/*`, so the final attempt
    /// is attested again).
    pub remove_annotations: Vec<String>,
    /// Dangling `status.childReferences` entries (no such run) of tasks that run again: the
    /// reset drops them with the references of the deleted runs.
    pub dangling_references: Vec<String>,
}

/// Who claims an attempt, and when: what the record adds to the plan.
#[derive(Clone, Debug)]
pub struct Claim<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// The authenticated user.
    pub by: &'a str,
    pub reason: Option<String>,
    pub finally: Option<FinallyPolicy>,
    /// RFC 3339 time of the claim.
    pub start: String,
}

impl Plan {
    /// The attempt record that claims this plan. The executor performs exactly this record, and
    /// [`super::planner::attempt_status_reset`] turns it into the status write, so a test that
    /// resets a run from a plan goes through the same two functions as production.
    pub fn record(&self, claim: Claim<'_>) -> AttemptRecord {
        let run_ref = |c: &ChildRun| RunRef::new(&c.kind, &c.name, &c.uid);
        AttemptRecord {
            namespace: claim.namespace.to_string(),
            name: claim.name.to_string(),
            uid: self.pipeline_run_uid.clone(),
            retry: LastRetry {
                attempt: self.attempt,
                phase: Some(Phase::Claimed),
                start: claim.start,
                end: None,
                outcome: None,
                by: claim.by.to_string(),
                reason: claim.reason,
                tasks: self.retried.iter().map(|t| t.name.clone()).collect(),
                finally: claim.finally,
            },
            replace_now: self.delete_now.iter().map(run_ref).collect(),
            replace_after_spec_clear: self.delete_after_spec_clear.iter().map(run_ref).collect(),
            drop_references: self.dangling_references.clone(),
            remove_annotations: self.remove_annotations.clone(),
            original: self.original.clone(),
        }
    }

    /// Every child run the plan deletes, in order.
    pub fn all_deletions(&self) -> impl Iterator<Item = &ChildRun> {
        self.delete_now
            .iter()
            .chain(self.delete_after_spec_clear.iter())
    }
}

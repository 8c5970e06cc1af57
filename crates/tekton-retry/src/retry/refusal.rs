//! Every refusal the planner and the engine give: one variant each, with its message (what to do
//! next), its HTTP status (409 for "not now", 422 for "never like this", 404 for no such run) and
//! its label in `tekton_retry_refusals_total{reason}`. The wire texts and labels are cited by the
//! README, the docs and the dashboards: change them only together.
//!
//! The `metav1.Status` is made at the edge: a refusal becomes an [`ApiError`] (`From`), which
//! `api::status` turns into the body. 422s always carry causes (`refusal/causes.rs`): kubectl prints
//! only `FIELD: MESSAGE` from them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::{annotations, ApiError, StatusReason};
use crate::tekton::format_go_duration;

mod causes;
#[cfg(test)]
mod tests;

/// What is left of a run's timeout budget (computed by the planner's `budget` rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The limit that binds (`timeouts.pipeline`, or `timeouts.tasks` when it is tighter).
    pub limit: Duration,
    /// Which one: `"pipeline"` or `"tasks"` (explicit, or pipeline − finally).
    pub which: &'static str,
    /// The start Tekton measures from.
    pub start: DateTime<Utc>,
    pub remaining: Duration,
}

/// A name in `restartTasks` or `acknowledgeNonIdempotent` that is not a pipeline task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownTask {
    /// `spec.restartTasks` or `spec.acknowledgeNonIdempotent`.
    pub field: &'static str,
    pub index: usize,
    pub name: String,
}

/// A kept task's child run (named in `status.childReferences`) that no longer exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingChild {
    pub task: String,
    pub child: String,
}

/// A task that runs again references a result its kept producer never wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingResult {
    pub consumer: String,
    pub producer: String,
    pub result: String,
    /// The kept run of the producer.
    pub producer_run: String,
}

/// A task that runs again references a Task that no longer exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoneTask {
    pub task: String,
    pub task_ref: String,
}

/// A task to re-run that is marked `retry.tekton.dev/idempotent: "false"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonIdempotent {
    pub task: String,
    /// Where the mark was found (`TaskRun demo-run-deploy`, `pipeline task taskSpec`).
    pub marked_on: String,
}

/// A PersistentVolumeClaim a re-run task mounts that no longer exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoneClaim {
    /// The pipeline workspace, when known.
    pub workspace: Option<String>,
    pub claim: String,
    pub task: String,
}

/// Why a retry is not done. `run` is the PipelineRun's name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `spec.preconditions.uid` names another run: it was deleted and created again. (The
    /// engine checks this before anything else, so its wording is the one clients have seen.)
    #[error(
        "precondition failed: pipelinerun {namespace}/{run} has uid {actual}, not {wanted}: it \
         was replaced by a new run"
    )]
    UidMismatch {
        namespace: String,
        run: String,
        wanted: String,
        actual: String,
    },
    /// `spec.preconditions.attempt` is not the run's attempt: another retry started since.
    #[error(
        "Precondition failed: PipelineRun \"{run}\" is at attempt {actual}, not {wanted} \
         (spec.preconditions.attempt): another retry started since. See its \
         {} annotation; retry with preconditions.attempt={actual} if it still needs one.",
        annotations::LAST_RETRY
    )]
    AttemptMismatch {
        run: String,
        wanted: u32,
        actual: u32,
    },
    #[error(
        "PipelineRun \"{run}\" is pending (spec.status: PipelineRunPending) and never started: \
         there is nothing to retry. Clear spec.status to start it."
    )]
    Pending { run: String },
    /// `Succeeded=Unknown`; `stopping` is the `spec.status` that asks it to stop.
    #[error(
        "PipelineRun \"{run}\" is still running (Succeeded=Unknown{}): only a finished run can \
         be retried; {}",
        .reason.as_ref().map(|r| format!(", reason {r}")).unwrap_or_default(),
        not_done_next(.stopping.as_deref())
    )]
    NotDone {
        run: String,
        reason: Option<String>,
        stopping: Option<String>,
    },
    #[error(
        "PipelineRun \"{run}\" succeeded{}: a successful run is not retried. Create a new \
         PipelineRun to run the pipeline again.",
        in_parens(.reason.as_deref())
    )]
    Succeeded { run: String, reason: Option<String> },
    /// Opted out with `retry.tekton.dev/retryable: "false"`; `on` says where
    /// (`PipelineRun "x"`, `Pipeline "p"`).
    #[error("PipelineRunRetry \"{run}\" is invalid: {on} opts out of retries")]
    NotRetryable { run: String, on: String },
    /// Failed with a reason the same spec always fails with.
    #[error(
        "PipelineRunRetry \"{run}\" is invalid: the run failed with {reason}, which a retry \
         cannot fix"
    )]
    Deterministic {
        run: String,
        reason: String,
        message: Option<String>,
    },
    /// Failed `PipelineRunTimeout`; `budget` is what is left, when the run has a timeout.
    #[error("PipelineRunRetry \"{run}\" is invalid: the run failed with PipelineRunTimeout")]
    TimedOut { run: String, budget: Option<Budget> },
    /// Less than `minimum` of the timeout budget is left.
    #[error(
        "PipelineRunRetry \"{run}\" is invalid: only {} of the {} timeout is left",
        format_go_duration(.budget.remaining),
        .budget.which
    )]
    BudgetSpent {
        run: String,
        budget: Budget,
        minimum: Duration,
    },
    /// `spec.timeouts` cannot be parsed.
    #[error("PipelineRunRetry \"{run}\" is invalid: its timeouts cannot be read")]
    BadTimeout { run: String, error: String },
    /// `spec.managedBy` names another controller.
    #[error(
        "PipelineRunRetry \"{run}\" is invalid: it is managed by {managed_by:?}, not by Tekton"
    )]
    ManagedElsewhere { run: String, managed_by: String },
    #[error("PipelineRunRetry \"{run}\" is invalid: its pipeline spec is unknown")]
    NoPipelineSpec { run: String },
    /// `known` are the pipeline's task names.
    #[error("PipelineRunRetry \"{run}\" is invalid: it names tasks the pipeline does not have")]
    UnknownTasks {
        run: String,
        unknown: Vec<UnknownTask>,
        known: Vec<String>,
    },
    /// The run is done, these child runs are not yet.
    #[error(
        "PipelineRun \"{run}\" is done but its child runs {} are not: retry once they have \
         finished (usually within seconds).",
        .children.join(", ")
    )]
    ChildrenRunning { run: String, children: Vec<String> },
    #[error("PipelineRunRetry \"{run}\" is invalid: child runs of tasks it would keep are gone")]
    MissingChildren {
        run: String,
        missing: Vec<MissingChild>,
    },
    #[error(
        "PipelineRunRetry \"{run}\" is invalid: tasks it would run again use results that kept \
         runs never wrote"
    )]
    MissingResults {
        run: String,
        missing: Vec<MissingResult>,
    },
    #[error("PipelineRunRetry \"{run}\" is invalid: Tasks it would run again are gone")]
    TasksGone { run: String, gone: Vec<GoneTask> },
    #[error(
        "PipelineRunRetry \"{run}\" is invalid: tasks {} are not idempotent",
        .tasks.iter().map(|t| t.task.as_str()).collect::<Vec<_>>().join(", ")
    )]
    NonIdempotent {
        run: String,
        tasks: Vec<NonIdempotent>,
    },
    #[error("PipelineRunRetry \"{run}\" is invalid: workspace data is gone")]
    WorkspaceGone { run: String, gone: Vec<GoneClaim> },
    /// Kept runs were pinned to an affinity assistant Tekton deleted.
    #[error("PipelineRunRetry \"{run}\" is invalid: its affinity assistant is gone")]
    AffinityAssistantGone { run: String, assistant: String },
    /// No task failed, was cancelled or skipped because of one.
    #[error("PipelineRunRetry \"{run}\" is invalid: no task needs to run again")]
    NothingToRetry { run: String, reason: Option<String> },
    /// Tekton's webhook rejects writes to the run since `disable-inline-spec` was turned on;
    /// `field` is the field it names (`spec.pipelineSpec`).
    #[error("PipelineRunRetry \"{run}\" is invalid: Tekton no longer accepts its inline spec")]
    InlineSpecDisabled { run: String, field: String },
    /// Admission refused a write of the retry to the run (`what`: `claim`, `status reset`, …).
    #[error("the cluster refused the {what} of pipelinerun {namespace}/{run}: {message}")]
    StatusRejected {
        namespace: String,
        run: String,
        what: String,
        message: String,
    },
    /// Another replica or request claimed the attempt first.
    #[error(
        "attempt {attempt} of pipelinerun {namespace}/{run} was already started by {by} at \
         {start}; check the run before retrying again"
    )]
    AlreadyStarted {
        namespace: String,
        run: String,
        attempt: u32,
        by: String,
        start: String,
    },
    /// A claimed attempt younger than the claim grace that no request here is working on.
    #[error(
        "attempt {attempt} of pipelinerun {namespace}/{run} was started by {by} at {start} and is \
         still in progress; if it does not finish, a retry after {grace_seconds}s completes it"
    )]
    InProgress {
        namespace: String,
        run: String,
        attempt: u32,
        by: String,
        start: String,
        grace_seconds: u64,
    },
    /// A request on this server is working on the run.
    #[error(
        "another retry of pipelinerun {namespace}/{run} is in progress on this server; wait for \
         it and check the run"
    )]
    InFlight { namespace: String, run: String },
    #[error(
        "pipelineruns.tekton.dev \"{run}\" not found in namespace \"{namespace}\"; check the name \
         with `kubectl get pipelineruns -n {namespace}`"
    )]
    RunNotFound { namespace: String, run: String },
}

fn in_parens(s: Option<&str>) -> String {
    s.map(|s| format!(" ({s})")).unwrap_or_default()
}

fn not_done_next(stopping: Option<&str>) -> String {
    match stopping {
        Some(s) => format!("it is stopping (spec.status: {s}): retry once it has ended."),
        None => {
            "wait until it ends, or cancel it (spec.status: Cancelled), then retry.".to_string()
        }
    }
}

impl Refusal {
    /// The label in `tekton_retry_refusals_total{reason}`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::UidMismatch { .. } | Refusal::AttemptMismatch { .. } => "PreconditionFailed",
            Refusal::Pending { .. } => "Pending",
            Refusal::NotDone { .. } => "NotDone",
            Refusal::Succeeded { .. } => "Succeeded",
            Refusal::NotRetryable { .. } => "NotRetryable",
            Refusal::Deterministic { .. } => "Deterministic",
            Refusal::TimedOut { .. } | Refusal::BudgetSpent { .. } | Refusal::BadTimeout { .. } => {
                "TimeoutBudget"
            }
            Refusal::ManagedElsewhere { .. } => "ManagedElsewhere",
            Refusal::NoPipelineSpec { .. } => "NoPipelineSpec",
            Refusal::UnknownTasks { .. } => "UnknownTask",
            Refusal::ChildrenRunning { .. } => "ChildrenRunning",
            Refusal::MissingChildren { .. } => "MissingChild",
            Refusal::MissingResults { .. } => "MissingResult",
            Refusal::TasksGone { .. } => "TaskGone",
            Refusal::NonIdempotent { .. } => "NonIdempotent",
            Refusal::WorkspaceGone { .. } => "WorkspaceGone",
            Refusal::AffinityAssistantGone { .. } => "AffinityAssistantGone",
            Refusal::NothingToRetry { .. } => "NothingToRetry",
            Refusal::InlineSpecDisabled { .. } => "InlineSpecDisabled",
            Refusal::StatusRejected { .. } => "StatusRejected",
            Refusal::AlreadyStarted { .. } => "AlreadyStarted",
            Refusal::InProgress { .. } => "InProgress",
            Refusal::InFlight { .. } => "InFlight",
            Refusal::RunNotFound { .. } => "NotFound",
        }
    }

    /// The `metav1.Status` reason: 409 Conflict (not now), 422 Invalid (not like this), 404.
    pub fn status_reason(&self) -> StatusReason {
        match self {
            Refusal::UidMismatch { .. }
            | Refusal::AttemptMismatch { .. }
            | Refusal::Pending { .. }
            | Refusal::NotDone { .. }
            | Refusal::Succeeded { .. }
            | Refusal::ChildrenRunning { .. }
            | Refusal::AlreadyStarted { .. }
            | Refusal::InProgress { .. }
            | Refusal::InFlight { .. } => StatusReason::Conflict,
            Refusal::RunNotFound { .. } => StatusReason::NotFound,
            Refusal::NotRetryable { .. }
            | Refusal::Deterministic { .. }
            | Refusal::TimedOut { .. }
            | Refusal::BudgetSpent { .. }
            | Refusal::BadTimeout { .. }
            | Refusal::ManagedElsewhere { .. }
            | Refusal::NoPipelineSpec { .. }
            | Refusal::UnknownTasks { .. }
            | Refusal::MissingChildren { .. }
            | Refusal::MissingResults { .. }
            | Refusal::TasksGone { .. }
            | Refusal::NonIdempotent { .. }
            | Refusal::WorkspaceGone { .. }
            | Refusal::AffinityAssistantGone { .. }
            | Refusal::NothingToRetry { .. }
            | Refusal::InlineSpecDisabled { .. }
            | Refusal::StatusRejected { .. } => StatusReason::Invalid,
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.status_reason().code()
    }

    /// The run named in `details.name`. The engine's own refusals leave it to the request.
    pub fn run(&self) -> Option<&str> {
        match self {
            Refusal::AlreadyStarted { .. }
            | Refusal::InProgress { .. }
            | Refusal::InFlight { .. }
            | Refusal::RunNotFound { .. } => None,
            Refusal::UidMismatch { run, .. }
            | Refusal::AttemptMismatch { run, .. }
            | Refusal::Pending { run }
            | Refusal::NotDone { run, .. }
            | Refusal::Succeeded { run, .. }
            | Refusal::NotRetryable { run, .. }
            | Refusal::Deterministic { run, .. }
            | Refusal::TimedOut { run, .. }
            | Refusal::BudgetSpent { run, .. }
            | Refusal::BadTimeout { run, .. }
            | Refusal::ManagedElsewhere { run, .. }
            | Refusal::NoPipelineSpec { run }
            | Refusal::UnknownTasks { run, .. }
            | Refusal::ChildrenRunning { run, .. }
            | Refusal::MissingChildren { run, .. }
            | Refusal::MissingResults { run, .. }
            | Refusal::TasksGone { run, .. }
            | Refusal::NonIdempotent { run, .. }
            | Refusal::WorkspaceGone { run, .. }
            | Refusal::AffinityAssistantGone { run, .. }
            | Refusal::NothingToRetry { run, .. }
            | Refusal::InlineSpecDisabled { run, .. }
            | Refusal::StatusRejected { run, .. } => Some(run),
        }
    }

    /// Seconds after which the same request may succeed (`Retry-After`).
    pub fn retry_after_seconds(&self) -> Option<u32> {
        matches!(self, Refusal::ChildrenRunning { .. }).then_some(5)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let mut e = ApiError::new(refusal.status_reason(), refusal.to_string());
        e.causes = refusal.causes();
        e.name = refusal.run().map(str::to_string);
        e.retry_after_seconds = refusal.retry_after_seconds();
        e.refusal = Some(refusal.label());
        e
    }
}

//! Every refusal the planner and the engine give: one variant each, with its message (what to do
//! next), its HTTP status (409 for "not now", 422 for "never like this", 404 for no such run) and
//! its label in `tekton_retry_refusals_total{reason}`. The wire texts and labels are cited by the
//! README, the docs and the dashboards: change them only together.
//!
//! The `metav1.Status` is made at the edge: a refusal becomes an [`ApiError`] (`From`), which
//! `api::status` turns into the body. 422s always carry causes: kubectl prints only
//! `FIELD: MESSAGE` from them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::{annotations, ApiError, Cause, StatusReason};
use crate::tekton::{format_go_duration, format_time};

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

    /// The `details.causes` of a 422: the field at fault and what to do about it.
    pub fn causes(&self) -> Vec<Cause> {
        match self {
            Refusal::UidMismatch { .. }
            | Refusal::AttemptMismatch { .. }
            | Refusal::Pending { .. }
            | Refusal::NotDone { .. }
            | Refusal::Succeeded { .. }
            | Refusal::ChildrenRunning { .. }
            | Refusal::AlreadyStarted { .. }
            | Refusal::InProgress { .. }
            | Refusal::InFlight { .. }
            | Refusal::RunNotFound { .. } => Vec::new(),
            Refusal::NotRetryable { on, .. } => vec![Cause::forbidden(
                format!("metadata.annotations[{}]", annotations::RETRYABLE),
                format!(
                    "{on} is annotated {}: \"false\", so it may not be retried; create a new \
                     PipelineRun instead, or remove the annotation if retries are now safe",
                    annotations::RETRYABLE
                ),
            )],
            Refusal::Deterministic {
                reason, message, ..
            } => vec![Cause::forbidden(
                "status.conditions[Succeeded].reason",
                format!(
                    "the run failed with {reason}{} before its tasks could run: the same spec \
                     fails the same way. Fix the Pipeline, Task or parameters and create a new \
                     PipelineRun",
                    in_parens(message.as_deref())
                ),
            )],
            Refusal::TimedOut { budget, .. } => {
                let detail = match budget {
                    Some(b) => format!(
                        "its budget of {} measured from {} has {} left",
                        format_go_duration(b.limit),
                        format_time(b.start),
                        format_go_duration(b.remaining)
                    ),
                    None => "its pipeline timeout was reached".to_string(),
                };
                vec![Cause::forbidden(
                    "spec.timeouts.pipeline",
                    format!(
                        "the run timed out (PipelineRunTimeout) and {detail}; Tekton measures the \
                         timeout from the original start and would time the retry out at once. \
                         Create a new PipelineRun (with a longer timeouts.pipeline if needed)"
                    ),
                )]
            }
            Refusal::BudgetSpent {
                budget, minimum, ..
            } => {
                let (field, effect) = if budget.which == "tasks" {
                    (
                        "spec.timeouts.tasks",
                        // The run of spaces is in the text the server has always answered.
                        "Tekton ends the run PipelineRunTimeout once the tasks timeout has passed, even when              only finally tasks run again",
                    )
                } else {
                    ("spec.timeouts.pipeline", "Tekton would time the retry out")
                };
                vec![Cause::forbidden(
                    field,
                    format!(
                        "the {} timeout of {} is measured from the original start {}: only {} is \
                         left, less than the {} a retry needs, and {effect}. Create a new \
                         PipelineRun (with longer timeouts if needed)",
                        budget.which,
                        format_go_duration(budget.limit),
                        format_time(budget.start),
                        format_go_duration(budget.remaining),
                        format_go_duration(*minimum)
                    ),
                )]
            }
            Refusal::BadTimeout { error, .. } => vec![Cause::invalid(
                "spec.timeouts",
                format!(
                    "{error}; the remaining budget cannot be computed, so the run is not retried"
                ),
            )],
            Refusal::ManagedElsewhere { managed_by, .. } => vec![Cause::forbidden(
                "spec.managedBy",
                format!(
                    "spec.managedBy is {managed_by:?}: the Tekton controller never reconciles \
                     this run, so a reset would leave it running with nothing scheduled. Retry it \
                     with the controller that manages it"
                ),
            )],
            Refusal::NoPipelineSpec { .. } => vec![Cause::invalid(
                "status.pipelineSpec",
                "the run has no resolved pipeline spec and its Pipeline could not be read, so the \
                 tasks to re-run cannot be determined; create a new PipelineRun",
            )],
            Refusal::UnknownTasks {
                run,
                unknown,
                known,
            } => unknown
                .iter()
                .map(|u| {
                    Cause::invalid(
                        format!("{}[{}]", u.field, u.index),
                        format!(
                            "PipelineRun \"{run}\" has no pipeline task \"{}\"; its tasks are: {}",
                            u.name,
                            known.join(", ")
                        ),
                    )
                })
                .collect(),
            Refusal::MissingChildren { missing, .. } => missing
                .iter()
                .map(|m| {
                    Cause::invalid(
                        "spec.restartTasks",
                        format!(
                            "the run \"{}\" of task \"{}\" (in status.childReferences) no longer \
                             exists, so its outcome and results are lost while later tasks may \
                             have used them; add \"{}\" to spec.restartTasks to run it and its \
                             dependents again",
                            m.child, m.task, m.task
                        ),
                    )
                })
                .collect(),
            Refusal::MissingResults { missing, .. } => missing
                .iter()
                .map(|m| {
                    Cause::invalid(
                        "spec.restartTasks",
                        format!(
                            "task \"{}\" uses the result \"{}\" of task \"{}\", whose kept run \
                             \"{}\" did not write it: Tekton would fail the run \
                             PipelineValidationFailed again (\"Failed Validation\"); add \"{}\" \
                             to spec.restartTasks to run it again",
                            m.consumer, m.result, m.producer, m.producer_run, m.producer
                        ),
                    )
                })
                .collect(),
            Refusal::TasksGone { gone, .. } => gone
                .iter()
                .map(|g| {
                    Cause::invalid(
                        "status.pipelineSpec",
                        format!(
                            "task \"{}\" runs Task \"{}\", which no longer exists: Tekton would \
                             fail the retry CouldntGetTask without running anything. Restore the \
                             Task, or create a new PipelineRun",
                            g.task, g.task_ref
                        ),
                    )
                })
                .collect(),
            Refusal::NonIdempotent { tasks, .. } => tasks
                .iter()
                .map(|t| {
                    Cause::forbidden(
                        "spec.acknowledgeNonIdempotent",
                        format!(
                            "task \"{}\" is marked {}: \"false\" (on {}); add \"{}\" to \
                             spec.acknowledgeNonIdempotent to run it again anyway",
                            t.task,
                            annotations::IDEMPOTENT,
                            t.marked_on,
                            t.task
                        ),
                    )
                })
                .collect(),
            Refusal::WorkspaceGone { gone, .. } => gone
                .iter()
                .map(|g| {
                    let field = match &g.workspace {
                        Some(w) => format!("pipelineRun.spec.workspaces[{w}]"),
                        None => "pipelineRun.spec.workspaces".to_string(),
                    };
                    Cause::forbidden(
                        field,
                        format!(
                            "PersistentVolumeClaim \"{}\" that task \"{}\" mounts no longer \
                             exists: the data the kept tasks wrote there is gone. Create a new \
                             PipelineRun",
                            g.claim, g.task
                        ),
                    )
                })
                .collect(),
            Refusal::AffinityAssistantGone { assistant, .. } => vec![Cause::forbidden(
                "pipelineRun.spec.workspaces",
                format!(
                    "the run's pods must run next to affinity assistant \"{assistant}\", which \
                     Tekton deleted when the run finished and creates again only for a run \
                     without child runs: re-run pods would stay Pending. Add every task to \
                     spec.restartTasks to start over, or create a new PipelineRun"
                ),
            )],
            Refusal::NothingToRetry { reason, .. } => vec![Cause::invalid(
                "spec.restartTasks",
                format!(
                    "the run failed{} but no task failed, was cancelled or was skipped because \
                     of one, so a retry would end the same way; name the tasks to run again in \
                     spec.restartTasks",
                    in_parens(reason.as_deref())
                ),
            )],
            Refusal::InlineSpecDisabled { field, .. } => vec![Cause::forbidden(
                format!("pipelineRun.{field}"),
                "the Tekton feature flag disable-inline-spec was turned on after this run was \
                 created, and Tekton's webhook now rejects every write to the run, so it cannot \
                 be retried in place. Create a new PipelineRun that references a Pipeline (or \
                 turn the flag off)",
            )],
            Refusal::StatusRejected { message, .. } => vec![Cause::invalid(
                "metadata.name",
                format!(
                    "the PipelineRun no longer passes the cluster's validation ({message}); for \
                     example a Tekton feature flag changed after it started. Re-run it as a new \
                     PipelineRun"
                ),
            )],
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(which: &'static str) -> Budget {
        Budget {
            limit: Duration::from_secs(3600),
            which,
            start: chrono::DateTime::parse_from_rfc3339("2026-11-26T19:30:30Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            remaining: Duration::from_secs(30),
        }
    }

    /// The wire texts README, docs and dashboards cite, byte for byte.
    #[test]
    fn messages_on_the_wire() {
        let cases = [
            (
                Refusal::AttemptMismatch {
                    run: "r".into(),
                    wanted: 1,
                    actual: 2,
                },
                "Precondition failed: PipelineRun \"r\" is at attempt 2, not 1 \
                 (spec.preconditions.attempt): another retry started since. See its \
                 retry.tekton.dev/last-retry annotation; retry with preconditions.attempt=2 if it \
                 still needs one.",
            ),
            (
                Refusal::NotDone {
                    run: "r".into(),
                    reason: Some("Running".into()),
                    stopping: None,
                },
                "PipelineRun \"r\" is still running (Succeeded=Unknown, reason Running): only a \
                 finished run can be retried; wait until it ends, or cancel it (spec.status: \
                 Cancelled), then retry.",
            ),
            (
                Refusal::NotDone {
                    run: "r".into(),
                    reason: None,
                    stopping: Some("Cancelled".into()),
                },
                "PipelineRun \"r\" is still running (Succeeded=Unknown): only a finished run can \
                 be retried; it is stopping (spec.status: Cancelled): retry once it has ended.",
            ),
            (
                Refusal::Succeeded {
                    run: "r".into(),
                    reason: Some("Completed".into()),
                },
                "PipelineRun \"r\" succeeded (Completed): a successful run is not retried. Create \
                 a new PipelineRun to run the pipeline again.",
            ),
            (
                Refusal::BudgetSpent {
                    run: "r".into(),
                    budget: budget("tasks"),
                    minimum: Duration::from_secs(60),
                },
                "PipelineRunRetry \"r\" is invalid: only 30s of the tasks timeout is left",
            ),
            (
                Refusal::ManagedElsewhere {
                    run: "r".into(),
                    managed_by: "kueue.x-k8s.io/multikueue".into(),
                },
                "PipelineRunRetry \"r\" is invalid: it is managed by \
                 \"kueue.x-k8s.io/multikueue\", not by Tekton",
            ),
            (
                Refusal::StatusRejected {
                    namespace: "ns".into(),
                    run: "r".into(),
                    what: "claim".into(),
                    message: "denied".into(),
                },
                "the cluster refused the claim of pipelinerun ns/r: denied",
            ),
            (
                Refusal::InProgress {
                    namespace: "ns".into(),
                    run: "r".into(),
                    attempt: 2,
                    by: "alice".into(),
                    start: "2026-11-26T19:30:30Z".into(),
                    grace_seconds: 30,
                },
                "attempt 2 of pipelinerun ns/r was started by alice at 2026-11-26T19:30:30Z and \
                 is still in progress; if it does not finish, a retry after 30s completes it",
            ),
            (
                Refusal::InFlight {
                    namespace: "ns".into(),
                    run: "r".into(),
                },
                "another retry of pipelinerun ns/r is in progress on this server; wait for it and \
                 check the run",
            ),
            (
                Refusal::RunNotFound {
                    namespace: "ns".into(),
                    run: "r".into(),
                },
                "pipelineruns.tekton.dev \"r\" not found in namespace \"ns\"; check the name with \
                 `kubectl get pipelineruns -n ns`",
            ),
        ];
        for (refusal, text) in cases {
            assert_eq!(refusal.to_string(), text);
        }
        let spent = Refusal::BudgetSpent {
            run: "r".into(),
            budget: budget("tasks"),
            minimum: Duration::from_secs(60),
        };
        assert_eq!(
            spent.causes(),
            [Cause::forbidden(
                "spec.timeouts.tasks",
                "the tasks timeout of 1h0m0s is measured from the original start \
                 2026-11-26T19:30:30Z: only 30s is left, less than the 1m0s a retry needs, and \
                 Tekton ends the run PipelineRunTimeout once the tasks timeout has passed, even \
                 when              only finally tasks run again. Create a new PipelineRun (with \
                 longer timeouts if needed)"
            )]
        );
    }

    #[test]
    fn the_status_carries_code_label_name_and_causes() {
        let e = ApiError::from(Refusal::ChildrenRunning {
            run: "r".into(),
            children: vec!["r-a".into(), "r-b".into()],
        });
        assert_eq!(
            (e.code(), e.refusal, e.name.as_deref()),
            (409, Some("ChildrenRunning"), Some("r"))
        );
        assert_eq!(e.retry_after_seconds, Some(5));
        assert!(e.message.contains("child runs r-a, r-b are not"));
        let s = e.to_status();
        assert_eq!(s["reason"], "Conflict");
        assert_eq!(s["details"]["retryAfterSeconds"], 5);

        let e = ApiError::from(Refusal::MissingChildren {
            run: "r".into(),
            missing: vec![MissingChild {
                task: "a".into(),
                child: "r-a".into(),
            }],
        });
        assert_eq!((e.code(), e.refusal), (422, Some("MissingChild")));
        assert_eq!(e.causes[0].reason, "FieldValueInvalid");
        assert_eq!(e.causes[0].field, "spec.restartTasks");

        // The engine's own refusals leave `details.name` to the request they answer.
        let e = ApiError::from(Refusal::RunNotFound {
            namespace: "ns".into(),
            run: "r".into(),
        });
        assert_eq!((e.code(), e.refusal, e.name), (404, Some("NotFound"), None));
        assert!(e.causes.is_empty());
    }

    #[test]
    fn precondition_refusals_share_one_label() {
        let uid = Refusal::UidMismatch {
            namespace: "ns".into(),
            run: "r".into(),
            wanted: "a".into(),
            actual: "b".into(),
        };
        let attempt = Refusal::AttemptMismatch {
            run: "r".into(),
            wanted: 1,
            actual: 2,
        };
        assert_eq!(
            uid.to_string(),
            "precondition failed: pipelinerun ns/r has uid b, not a: it was replaced by a new run"
        );
        assert_eq!(uid.label(), "PreconditionFailed");
        assert_eq!(attempt.label(), "PreconditionFailed");
        assert_eq!((uid.code(), attempt.code()), (409, 409));
    }
}

//! Every refusal the planner gives, as `metav1.Status` errors whose message says what to do next.
//! 422s always carry causes: kubectl prints only `FIELD: MESSAGE` from them.

use std::time::Duration;

use crate::api::{annotations, ApiError, Cause};
use crate::tekton::{format_go_duration, format_time};

use super::budget::Budget;
use super::hazards::{GoneClaim, NonIdempotent};

fn invalid(run: &str, kind: &'static str, summary: String, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid(
        format!("PipelineRunRetry \"{run}\" is invalid: {summary}"),
        causes,
    )
    .with_name(run)
    .with_refusal(kind)
}

fn conflict(run: &str, kind: &'static str, message: String) -> ApiError {
    ApiError::conflict(message)
        .with_name(run)
        .with_refusal(kind)
}

pub fn uid_mismatch(run: &str, wanted: &str, actual: &str) -> ApiError {
    conflict(
        run,
        "PreconditionFailed",
        format!(
            "Precondition failed: PipelineRun \"{run}\" has uid {actual}, not {wanted} \
             (spec.preconditions.uid): it was deleted and created again. Read the run again and \
             retry with its current uid if it still needs a retry."
        ),
    )
}

pub fn attempt_mismatch(run: &str, wanted: u32, actual: u32) -> ApiError {
    conflict(
        run,
        "PreconditionFailed",
        format!(
            "Precondition failed: PipelineRun \"{run}\" is at attempt {actual}, not {wanted} \
             (spec.preconditions.attempt): another retry started since. See its \
             {} annotation; retry with preconditions.attempt={actual} if it still needs one.",
            annotations::LAST_RETRY
        ),
    )
}

pub fn pending(run: &str) -> ApiError {
    conflict(
        run,
        "Pending",
        format!(
            "PipelineRun \"{run}\" is pending (spec.status: PipelineRunPending) and never started: \
             there is nothing to retry. Clear spec.status to start it."
        ),
    )
}

pub fn not_done(run: &str, reason: Option<&str>, stopping: Option<&str>) -> ApiError {
    let next = match stopping {
        Some(s) => format!("it is stopping (spec.status: {s}): retry once it has ended."),
        None => {
            "wait until it ends, or cancel it (spec.status: Cancelled), then retry.".to_string()
        }
    };
    conflict(
        run,
        "NotDone",
        format!(
            "PipelineRun \"{run}\" is still running (Succeeded=Unknown{}): only a finished run can \
             be retried; {next}",
            reason.map(|r| format!(", reason {r}")).unwrap_or_default()
        ),
    )
}

pub fn succeeded(run: &str, reason: Option<&str>) -> ApiError {
    conflict(
        run,
        "Succeeded",
        format!(
            "PipelineRun \"{run}\" succeeded{}: a successful run is not retried. Create a new \
             PipelineRun to run the pipeline again.",
            reason.map(|r| format!(" ({r})")).unwrap_or_default()
        ),
    )
}

pub fn not_retryable(run: &str, on: &str) -> ApiError {
    invalid(
        run,
        "NotRetryable",
        format!("{on} opts out of retries"),
        vec![Cause::forbidden(
            format!("metadata.annotations[{}]", annotations::RETRYABLE),
            format!(
                "{on} is annotated {}: \"false\", so it may not be retried; create a new \
                 PipelineRun instead, or remove the annotation if retries are now safe",
                annotations::RETRYABLE
            ),
        )],
    )
}

pub fn deterministic(run: &str, reason: &str, message: Option<&str>) -> ApiError {
    invalid(
        run,
        "Deterministic",
        format!("the run failed with {reason}, which a retry cannot fix"),
        vec![Cause::forbidden(
            "status.conditions[Succeeded].reason",
            format!(
                "the run failed with {reason}{} before its tasks could run: the same spec fails \
                 the same way. Fix the Pipeline, Task or parameters and create a new PipelineRun",
                message.map(|m| format!(" ({m})")).unwrap_or_default()
            ),
        )],
    )
}

pub fn timed_out(run: &str, budget: Option<&Budget>) -> ApiError {
    let detail = match budget {
        Some(b) => format!(
            "its budget of {} measured from {} has {} left",
            format_go_duration(b.limit),
            format_time(b.start),
            format_go_duration(b.remaining)
        ),
        None => "its pipeline timeout was reached".to_string(),
    };
    invalid(
        run,
        "TimeoutBudget",
        "the run failed with PipelineRunTimeout".to_string(),
        vec![Cause::forbidden(
            "spec.timeouts.pipeline",
            format!(
                "the run timed out (PipelineRunTimeout) and {detail}; Tekton measures the timeout \
                 from the original start and would time the retry out at once. Create a new \
                 PipelineRun (with a longer timeouts.pipeline if needed)"
            ),
        )],
    )
}

/// `spec.managedBy` names another controller: Tekton filters the run out of its work queue
/// (pkg/reconciler/pipelinerun/controller.go `pipelineRunFilterManagedBy`) and would never act on
/// a reset; it would stay `Unknown/Running` with no TaskRun.
pub fn managed_elsewhere(run: &str, managed_by: &str) -> ApiError {
    invalid(
        run,
        "ManagedElsewhere",
        format!("it is managed by {managed_by:?}, not by Tekton"),
        vec![Cause::forbidden(
            "spec.managedBy",
            format!(
                "spec.managedBy is {managed_by:?}: the Tekton controller never reconciles this run, \
                 so a reset would leave it running with nothing scheduled. Retry it with the \
                 controller that manages it"
            ),
        )],
    )
}

pub fn budget_spent(run: &str, budget: &Budget, minimum: Duration) -> ApiError {
    let (field, effect) = if budget.which == "tasks" {
        (
            "spec.timeouts.tasks",
            "Tekton ends the run PipelineRunTimeout once the tasks timeout has passed, even when              only finally tasks run again",
        )
    } else {
        ("spec.timeouts.pipeline", "Tekton would time the retry out")
    };
    invalid(
        run,
        "TimeoutBudget",
        format!(
            "only {} of the {} timeout is left",
            format_go_duration(budget.remaining),
            budget.which
        ),
        vec![Cause::forbidden(
            field,
            format!(
                "the {} timeout of {} is measured from the original start {}: only {} is left, \
                 less than the {} a retry needs, and {effect}. Create a new PipelineRun (with \
                 longer timeouts if needed)",
                budget.which,
                format_go_duration(budget.limit),
                format_time(budget.start),
                format_go_duration(budget.remaining),
                format_go_duration(minimum)
            ),
        )],
    )
}

pub fn bad_timeout(run: &str, error: &str) -> ApiError {
    invalid(
        run,
        "TimeoutBudget",
        "its timeouts cannot be read".to_string(),
        vec![Cause::invalid(
            "spec.timeouts",
            format!("{error}; the remaining budget cannot be computed, so the run is not retried"),
        )],
    )
}

pub fn no_pipeline_spec(run: &str) -> ApiError {
    invalid(
        run,
        "NoPipelineSpec",
        "its pipeline spec is unknown".to_string(),
        vec![Cause::invalid(
            "status.pipelineSpec",
            "the run has no resolved pipeline spec and its Pipeline could not be read, so the \
             tasks to re-run cannot be determined; create a new PipelineRun",
        )],
    )
}

/// Names in `field` (restartTasks, acknowledgeNonIdempotent) that are not pipeline tasks.
pub fn unknown_tasks(run: &str, unknown: &[(String, usize, String)], known: &[&str]) -> ApiError {
    let causes = unknown
        .iter()
        .map(|(field, i, name)| {
            Cause::invalid(
                format!("{field}[{i}]"),
                format!(
                    "PipelineRun \"{run}\" has no pipeline task \"{name}\"; its tasks are: {}",
                    known.join(", ")
                ),
            )
        })
        .collect();
    invalid(
        run,
        "UnknownTask",
        "it names tasks the pipeline does not have".to_string(),
        causes,
    )
}

pub fn children_running(run: &str, names: &[&str]) -> ApiError {
    conflict(
        run,
        "ChildrenRunning",
        format!(
            "PipelineRun \"{run}\" is done but its child runs {} are not: retry once they have \
             finished (usually within seconds).",
            names.join(", ")
        ),
    )
    .with_retry_after(5)
}

pub fn missing_children(run: &str, missing: &[(&str, &str)]) -> ApiError {
    let causes = missing
        .iter()
        .map(|(task, child)| {
            Cause::invalid(
                "spec.restartTasks",
                format!(
                    "the run \"{child}\" of task \"{task}\" (in status.childReferences) no longer \
                     exists, so its outcome and results are lost while later tasks may have used \
                     them; add \"{task}\" to spec.restartTasks to run it and its dependents again"
                ),
            )
        })
        .collect();
    invalid(
        run,
        "MissingChild",
        "child runs of tasks it would keep are gone".to_string(),
        causes,
    )
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

pub fn missing_results(run: &str, missing: &[MissingResult]) -> ApiError {
    let causes = missing
        .iter()
        .map(|m| {
            Cause::invalid(
                "spec.restartTasks",
                format!(
                    "task \"{}\" uses the result \"{}\" of task \"{}\", whose kept run \"{}\" \
                     did not write it: Tekton would fail the run PipelineValidationFailed again \
                     (\"Failed Validation\"); add \"{}\" to spec.restartTasks to run it again",
                    m.consumer, m.result, m.producer, m.producer_run, m.producer
                ),
            )
        })
        .collect();
    invalid(
        run,
        "MissingResult",
        "tasks it would run again use results that kept runs never wrote".to_string(),
        causes,
    )
}

/// Tasks that run again reference a Task that no longer exists.
pub fn tasks_gone(run: &str, gone: &[(String, String)]) -> ApiError {
    let causes = gone
        .iter()
        .map(|(task, task_ref)| {
            Cause::invalid(
                "status.pipelineSpec",
                format!(
                    "task \"{task}\" runs Task \"{task_ref}\", which no longer exists: Tekton \
                     would fail the retry CouldntGetTask without running anything. Restore the \
                     Task, or create a new PipelineRun"
                ),
            )
        })
        .collect();
    invalid(
        run,
        "TaskGone",
        "Tasks it would run again are gone".to_string(),
        causes,
    )
}

pub fn non_idempotent(run: &str, tasks: &[NonIdempotent]) -> ApiError {
    let causes = tasks
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
        .collect();
    let names: Vec<&str> = tasks.iter().map(|t| t.task.as_str()).collect();
    invalid(
        run,
        "NonIdempotent",
        format!("tasks {} are not idempotent", names.join(", ")),
        causes,
    )
}

pub fn workspace_gone(run: &str, gone: &[GoneClaim]) -> ApiError {
    let causes = gone
        .iter()
        .map(|g| {
            let field = match &g.workspace {
                Some(w) => format!("pipelineRun.spec.workspaces[{w}]"),
                None => "pipelineRun.spec.workspaces".to_string(),
            };
            Cause::forbidden(
                field,
                format!(
                    "PersistentVolumeClaim \"{}\" that task \"{}\" mounts no longer exists: the \
                     data the kept tasks wrote there is gone. Create a new PipelineRun",
                    g.claim, g.task
                ),
            )
        })
        .collect();
    invalid(
        run,
        "WorkspaceGone",
        "workspace data is gone".to_string(),
        causes,
    )
}

pub fn affinity_assistant(run: &str, assistant: &str) -> ApiError {
    invalid(
        run,
        "AffinityAssistantGone",
        "its affinity assistant is gone".to_string(),
        vec![Cause::forbidden(
            "pipelineRun.spec.workspaces",
            format!(
                "the run's pods must run next to affinity assistant \"{assistant}\", which Tekton \
                 deleted when the run finished and creates again only for a run without child \
                 runs: re-run pods would stay Pending. Add every task to spec.restartTasks to \
                 start over, or create a new PipelineRun"
            ),
        )],
    )
}

pub fn nothing_to_retry(run: &str, reason: Option<&str>) -> ApiError {
    invalid(
        run,
        "NothingToRetry",
        "no task needs to run again".to_string(),
        vec![Cause::invalid(
            "spec.restartTasks",
            format!(
                "the run failed{} but no task failed, was cancelled or was skipped because of \
                 one, so a retry would end the same way; name the tasks to run again in \
                 spec.restartTasks",
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        )],
    )
}

/// Marker of the webhook's `apis.ErrDisallowedFields` message.
const DISALLOWED: &str = "must not set the field(s): ";

/// The refusal for a write the Tekton webhook rejected because `disable-inline-spec` was turned on
/// after the run was created: every later write to the run (status and metadata alike) is then
/// refused with `must not set the field(s): spec.pipelineSpec` (fixture
/// retries/06-status-write-with-disable-inline-spec.error.txt; pipelinerun_validation.go and
/// pipeline_validation.go `validateEnabledInlineSpec`). `None` for any other error.
pub fn inline_spec_disabled(run: &str, webhook_message: &str) -> Option<ApiError> {
    let fields = &webhook_message[webhook_message.find(DISALLOWED)? + DISALLOWED.len()..];
    if !(fields.contains("pipelineSpec") || fields.contains("taskSpec")) {
        return None;
    }
    let field = fields
        .split_whitespace()
        .next()
        .unwrap_or(fields)
        .trim_end_matches(',');
    Some(invalid(
        run,
        "InlineSpecDisabled",
        "Tekton no longer accepts its inline spec".to_string(),
        vec![Cause::forbidden(
            format!("pipelineRun.{field}"),
            "the Tekton feature flag disable-inline-spec was turned on after this run was \
             created, and Tekton's webhook now rejects every write to the run, so it cannot be \
             retried in place. Create a new PipelineRun that references a Pipeline (or turn the \
             flag off)",
        )],
    ))
}

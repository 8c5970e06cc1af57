//! The `details.causes` of each 422 refusal: the field at fault and what to do about it
//! (kubectl prints only `FIELD: MESSAGE` from them).

use crate::api::{annotations, Cause, StatusReason};
use crate::tekton::{format_go_duration, format_time};

use super::{in_parens, Refusal};

impl Refusal {
    /// The `details.causes` of a 422: the field at fault and what to do about it.
    /// A 409 or 404 has none.
    pub fn causes(&self) -> Vec<Cause> {
        if self.status_reason() != StatusReason::Invalid {
            return Vec::new();
        }
        match self {
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
            // Returned above: every other refusal is a 409 or a 404 (and
            // `every_variant_is_a_documented_4xx` checks that each 422 has causes).
            _ => Vec::new(),
        }
    }
}

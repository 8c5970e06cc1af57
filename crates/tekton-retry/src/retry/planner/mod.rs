//! The planner: every Tekton rule the reset depends on, in one place. Pure: no I/O.
//!
//! [`plan`] turns a done PipelineRun and its child runs into a [`Plan`] or a
//! refusal; [`attempt_status_reset`] is the status merge patch of the reset. Each rule cites
//! the recorded real-Tekton fixture (`tests/fixtures/tekton/`) or the tektoncd/pipeline source
//! (v1.15, commit 3ee1745ae) it comes from.
//!
//! # Semantics
//!
//! **Re-run** (child runs deleted, Tekton creates them again under the same names): DAG tasks
//! that failed, were cancelled or timed out; `restartTasks`; every DAG task downstream of those
//! (by `runAfter` and by result references in params, matrix, `when` and the steps and sidecars of
//! an embedded taskSpec); all finally tasks (`finally: Rerun`, the default) or, with `Keep`, those
//! in `restartTasks` and those whose run did not succeed. A matrix task goes whole. Tasks without a
//! run (skipped, never scheduled) are listed as retried with their skip reason: Tekton schedules or
//! skips them again by itself; a task whose `when` Tekton will evaluate to false again is listed
//! as kept.
//!
//! **Kept**: every other run, including a failure ignored by `onError: continue` (Tekton already
//! went on past it; name it in `restartTasks` to run it again).
//!
//! **Refused**: 409 when the run is pending, running, succeeded, a precondition does not hold, or
//! a child run is still going (except a child already asked to cancel in a cancelled run); 422
//! when the run opted out (`retry.tekton.dev/retryable: "false"`), failed deterministically,
//! timed out or has less than the minimum budget left (the timeout is measured from the original
//! start), names unknown tasks, would keep a task whose run is gone, would re-run a task marked
//! `retry.tekton.dev/idempotent: "false"` without acknowledgement, needs a PVC that is gone,
//! would run a task pinned to an affinity assistant Tekton deleted, would run a task whose
//! referenced result its kept producer never wrote, is managed by another controller
//! (`spec.managedBy`), or would change nothing.

mod assemble;
mod budget;
mod hazards;
mod refuse;
mod reset;
mod select;
mod state;

use crate::api::annotations;
use crate::tekton::child::PIPELINE_TASK_LABEL;
use crate::tekton::reasons::{
    pipelinerun_reason, pipelinerun_spec_status, DETERMINISTIC_RUN_FAILURES,
};
use crate::tekton::{ChildView, ConditionStatus, ObjectView, PipelineRunView, PipelineSpecView};

use super::plan::{Plan, PlanInput};
use super::refusal::{MissingChild, Refusal, UnknownTask};

pub use reset::{attempt_status_reset, reset_message};

/// The `spec.managedBy` value of runs the Tekton controller reconciles
/// (pkg/apis/pipeline/v1/pipelinerun_types.go `ManagedBy`, controller.go `pipelineRunFilterManagedBy`).
pub const TEKTON_MANAGED_BY: &str = "tekton.dev/pipeline";

/// The refusal to answer when the Tekton webhook rejected a write to the run because inline specs
/// were disabled after it was created (`disable-inline-spec`). The planner cannot see the flag, so
/// the executor calls this with the webhook's message; `None` when the message is about
/// something else.
pub fn inline_spec_refusal(run: &str, webhook_message: &str) -> Option<Refusal> {
    refuse::inline_spec_disabled(run, webhook_message)
}

/// Plans a retry of `input.pipeline_run`, or refuses it.
///
/// Checks, in order: preconditions (uid, attempt) → the run is done and neither succeeded nor
/// pending → opt-outs → deterministic failure → `PipelineRunTimeout` → the task names of the
/// request → every child run done → the re-run set → missing children, non-idempotent tasks,
/// workspace hazards → something to do → the timeout budget.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan, Refusal> {
    let run = PipelineRunView::new(input.pipeline_run);
    let name = run.obj.name();
    let spec = input.spec;

    // Preconditions first: a replayed request learns that its attempt already happened.
    if let Some(uid) = spec.preconditions.as_ref().and_then(|p| p.uid.as_deref()) {
        if uid != run.obj.uid() {
            return Err(Refusal::UidMismatch {
                namespace: run.obj.namespace().to_string(),
                run: name.to_string(),
                wanted: uid.to_string(),
                actual: run.obj.uid().to_string(),
            });
        }
    }
    let current_attempt = crate::retry::record::current_attempt(input.record);
    if let Some(want) = spec.preconditions.as_ref().and_then(|p| p.attempt) {
        if want != current_attempt {
            return Err(Refusal::AttemptMismatch {
                run: name.to_string(),
                wanted: want,
                actual: current_attempt,
            });
        }
    }

    // The run must be done and not successful (retrying a success is a TEP-0065
    // non-goal). A pending run never started (pipelinerun_types.go `PipelineRunSpecStatusPending`).
    let spec_status = run.obj.spec_status();
    let reason = run.obj.reason();
    if spec_status == Some(pipelinerun_spec_status::PENDING)
        || reason == Some(pipelinerun_reason::PENDING)
    {
        return Err(Refusal::Pending {
            run: name.to_string(),
        });
    }
    match run.obj.succeeded_status() {
        ConditionStatus::Unknown => {
            return Err(Refusal::NotDone {
                run: name.to_string(),
                reason: reason.map(str::to_string),
                stopping: spec_status.map(str::to_string),
            })
        }
        ConditionStatus::True => {
            return Err(Refusal::Succeeded {
                run: name.to_string(),
                reason: reason.map(str::to_string),
            })
        }
        ConditionStatus::False => {}
    }

    // Opt-out on the run or its Pipeline.
    if run.obj.annotation(annotations::RETRYABLE) == Some("false") {
        return Err(Refusal::NotRetryable {
            run: name.to_string(),
            on: format!("PipelineRun \"{name}\""),
        });
    }
    if let Some(p) = input.pipeline.map(ObjectView::new) {
        if p.annotation(annotations::RETRYABLE) == Some("false") {
            return Err(Refusal::NotRetryable {
                run: name.to_string(),
                on: format!("Pipeline \"{}\"", p.name()),
            });
        }
    }

    if let Some(m) = run.managed_by().filter(|m| *m != TEKTON_MANAGED_BY) {
        return Err(Refusal::ManagedElsewhere {
            run: name.to_string(),
            managed_by: m.to_string(),
        });
    }

    // `PipelineValidationFailed` is also the runtime outcome of a missing task result: the
    // condition message then carries ", Failed Validation: N (…)" (pipelinerunstate.go
    // `GetPipelineConditionStatus`), and re-running the producer can recover it.
    let runtime_validation = reason == Some(pipelinerun_reason::VALIDATION_FAILED)
        && run
            .obj
            .message()
            .is_some_and(|m| m.contains(", Failed Validation: "));
    if let Some(r) = reason
        .filter(|r| DETERMINISTIC_RUN_FAILURES.contains(r))
        .filter(|_| !runtime_validation)
    {
        return Err(Refusal::Deterministic {
            run: name.to_string(),
            reason: r.to_string(),
            message: run.obj.message().map(str::to_string),
        });
    }

    let timeouts = run.timeouts().map_err(|e| Refusal::BadTimeout {
        run: name.to_string(),
        error: e.to_string(),
    })?;
    if reason == Some(pipelinerun_reason::TIMED_OUT) {
        let b = budget::remaining(&run, timeouts, &[], input.now);
        return Err(Refusal::TimedOut {
            run: name.to_string(),
            budget: b,
        });
    }

    let Some(pipeline_spec) = run.pipeline_spec(input.pipeline) else {
        return Err(Refusal::NoPipelineSpec {
            run: name.to_string(),
        });
    };
    let pipeline_spec = PipelineSpecView::from_json(pipeline_spec);
    check_task_names(name, &pipeline_spec, spec)?;

    // A cancelled run is done before its children finish cancelling (fixture cancelled/timeline:
    // 20 ms); a child asked to cancel then counts as cancelled. Any other unfinished child means
    // Tekton has not settled: wait.
    let cancelled = matches!(
        spec_status,
        Some(
            pipelinerun_spec_status::CANCELLED
                | pipelinerun_spec_status::CANCELLED_RUN_FINALLY
                | pipelinerun_spec_status::STOPPED_RUN_FINALLY
        )
    );
    let cancel_counts = cancelled || reason == Some(pipelinerun_reason::CANCELLED);
    let state = state::RunState::build(&run, pipeline_spec, input.children, cancel_counts);
    let running = state.running_children();
    if !running.is_empty() {
        return Err(Refusal::ChildrenRunning {
            run: name.to_string(),
            children: running.into_iter().map(str::to_string).collect(),
        });
    }

    let finally = spec.finally.unwrap_or_default();
    let sel = select::select(&state, &spec.restart_tasks, finally);

    // A kept task whose run is gone: Tekton would silently run it again, after later tasks used
    // its results (fixture childrefs v2: a dangling reference is dropped and the run re-created).
    let missing: Vec<MissingChild> = state
        .tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| !sel.is_selected(*i))
        .flat_map(|(_, t)| {
            t.missing.iter().map(move |m| MissingChild {
                task: t.task.name.to_string(),
                child: m.to_string(),
            })
        })
        .collect();
    if !missing.is_empty() {
        return Err(Refusal::MissingChildren {
            run: name.to_string(),
            missing,
        });
    }

    let non_idempotent = hazards::non_idempotent(&state, &sel, &spec.acknowledge_non_idempotent);
    if !non_idempotent.is_empty() {
        return Err(Refusal::NonIdempotent {
            run: name.to_string(),
            tasks: non_idempotent,
        });
    }
    let gone = hazards::gone_claims(&run, &state, &sel, input.existing_pvcs);
    if !gone.is_empty() {
        return Err(Refusal::WorkspaceGone {
            run: name.to_string(),
            gone,
        });
    }
    let missing_results = hazards::missing_results(&state, &sel);
    if !missing_results.is_empty() {
        return Err(Refusal::MissingResults {
            run: name.to_string(),
            missing: missing_results,
        });
    }
    if let Some(assistant) = hazards::lost_affinity_assistant(&run, &state, &sel) {
        return Err(Refusal::AffinityAssistantGone {
            run: name.to_string(),
            assistant,
        });
    }
    // Tasks named in restartTasks are work by request.
    if spec.restart_tasks.is_empty() && !select::has_work(&state, &sel) {
        return Err(Refusal::NothingToRetry {
            run: name.to_string(),
            reason: reason.map(str::to_string),
        });
    }

    let kept: Vec<ChildView<'_>> = state
        .tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| !sel.is_rerun(*i))
        .flat_map(|(_, t)| t.runs.iter().copied())
        .collect();
    let budget = budget::remaining(&run, timeouts, &kept, input.now);
    if let Some(b) = &budget {
        if b.remaining < input.limits.min_timeout_budget {
            return Err(Refusal::BudgetSpent {
                run: name.to_string(),
                budget: *b,
                minimum: input.limits.min_timeout_budget,
            });
        }
    }

    Ok(assemble::build_plan(
        input,
        &run,
        &state,
        &sel,
        cancelled,
        current_attempt,
        budget,
    ))
}

/// The namespace-local Tasks Tekton will fetch again for `plan`, as `(pipeline task, Task name)`:
/// a task without a run after the reset is resolved from its `taskRef`
/// (pipelinerunresolution.go `resolveTask`: only an existing TaskRun's `status.taskSpec` spares
/// the fetch), and a missing Task fails the run `CouldntGetTask` at once. Only plain references
/// (`kind: Task` or none, no resolver, no custom `apiVersion`) are listed; `children` are the
/// run's child runs (a preserved task without one, e.g. skipped, is resolved too).
pub fn local_task_refs(input: &PlanInput<'_>, plan: &Plan) -> Vec<(String, String)> {
    let run = PipelineRunView::new(input.pipeline_run);
    let Some(spec) = run.pipeline_spec(input.pipeline) else {
        return Vec::new();
    };
    let spec = PipelineSpecView::from_json(spec);
    let has_child = |task: &str| {
        input
            .children
            .iter()
            .any(|c| ObjectView::new(c).label(PIPELINE_TASK_LABEL) == Some(task))
    };
    let deleted: std::collections::HashSet<&str> = plan
        .all_deletions()
        .map(|c| c.pipeline_task.as_str())
        .collect();
    spec.all()
        .filter(|t| deleted.contains(t.name) || !has_child(t.name))
        .filter_map(|t| {
            let r = &t.json["taskRef"];
            let name = r["name"].as_str().filter(|n| !n.is_empty())?;
            let plain = r["kind"].as_str().is_none_or(|k| k == "Task")
                && r["resolver"].is_null()
                && r["apiVersion"]
                    .as_str()
                    .is_none_or(|a| a.is_empty() || a.starts_with("tekton.dev/"));
            plain.then(|| (t.name.to_string(), name.to_string()))
        })
        .collect()
}

/// `restartTasks` and `acknowledgeNonIdempotent` must name pipeline tasks.
fn check_task_names(
    run: &str,
    spec_view: &PipelineSpecView<'_>,
    spec: &crate::api::RetrySpec,
) -> Result<(), Refusal> {
    let mut unknown = Vec::new();
    for (field, names) in [
        ("spec.restartTasks", &spec.restart_tasks),
        (
            "spec.acknowledgeNonIdempotent",
            &spec.acknowledge_non_idempotent,
        ),
    ] {
        for (i, n) in names.iter().enumerate() {
            if spec_view.get(n).is_none() {
                unknown.push(UnknownTask {
                    field,
                    index: i,
                    name: n.clone(),
                });
            }
        }
    }
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Refusal::UnknownTasks {
        run: run.to_string(),
        unknown,
        known: spec_view.all().map(|t| t.name.to_string()).collect(),
    })
}

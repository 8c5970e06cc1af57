//! Writes the [`Plan`] once the checks passed: retried and preserved tasks, the deletions in
//! their two phases, the status patch and the records.

use crate::api::RetriedTask;
use crate::tekton::reasons::{pipelinerun_spec_status, CHAINS_ANNOTATION_PREFIX};
use crate::tekton::PipelineRunView;

use super::super::plan::{ChildRun, Plan, PlanInput};
use super::super::record::OriginalTimes;
use super::budget::Budget;
use super::select::Selection;
use super::state::RunState;

/// Task `i` has no run and Tekton will skip it again: its `when` expressions are false and read
/// nothing that can change (pipelinerunresolution.go `skip` →
/// `skipBecauseWhenExpressionsEvaluatedToFalse`, `WhenExpressions.AllowsExecution`). Either
/// `status.skippedTasks` says the `when` was false and it reads no result of a task that runs
/// again, or (skipped for another reason first, e.g. "PipelineRun was stopping", which overrides
/// a when-skip) one of its expressions is false as written: `in`/`notin` over strings, or a CEL
/// expression, without any `$(…)` left in the stored spec (parameters are already applied there).
/// Such a task is reported as kept, not as retried.
fn skipped_again(state: &RunState<'_>, sel: &Selection, i: usize) -> bool {
    let t = &state.tasks[i];
    let when = t.task.json["when"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if when.iter().any(statically_false) {
        return true;
    }
    if t.skip_reason != Some(crate::tekton::reasons::skip_reason::WHEN_EXPRESSIONS) {
        return false;
    }
    let mut refs = Vec::new();
    let mut stack: Vec<&serde_json::Value> = when.iter().collect();
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::String(s) => {
                refs.extend(crate::tekton::pipeline::result_ref_tasks(s))
            }
            serde_json::Value::Array(a) => stack.extend(a),
            serde_json::Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    refs.iter()
        .all(|r| state.index.get(r).is_none_or(|&j| !sel.runs_again(j)))
}

/// A `when` expression that is false whatever runs: no variable left, and `in` or `notin` over
/// strings, or a CEL expression that evaluates to false ([`crate::tekton::cel`]: Tekton evaluates
/// it without variables, so with nothing left to substitute its value is fixed; a form the
/// evaluator does not implement counts as not false).
fn statically_false(w: &serde_json::Value) -> bool {
    if let Some(cel) = w.get("cel").and_then(serde_json::Value::as_str) {
        return !cel.contains("$(") && crate::tekton::cel::evaluate(cel) == Ok(false);
    }
    let (Some(input), Some(values)) = (w["input"].as_str(), w["values"].as_array()) else {
        return false;
    };
    let values: Option<Vec<&str>> = values.iter().map(serde_json::Value::as_str).collect();
    let Some(values) = values else {
        return false;
    };
    if input.contains("$(") || values.iter().any(|v| v.contains("$(")) {
        return false;
    }
    let contains = values.contains(&input);
    match w["operator"].as_str() {
        Some("in") => !contains,
        Some("notin") => contains,
        _ => false,
    }
}

pub(super) fn build_plan(
    input: &PlanInput<'_>,
    run: &PipelineRunView<'_>,
    state: &RunState<'_>,
    sel: &Selection,
    cancelled: bool,
    current_attempt: u32,
    budget: Option<Budget>,
) -> Plan {
    // Finally runs of a gracefully cancelled/stopped run go only after spec.status is cleared:
    // deleted earlier, the graceful path schedules finally at once (fixture
    // cancelled-finally-trap). A hard `Cancelled` never schedules finally
    // (pipelinerun.go `cancelPipelineRun`), so its finally runs go at once.
    let graceful = matches!(
        run.obj.spec_status(),
        Some(
            pipelinerun_spec_status::CANCELLED_RUN_FINALLY
                | pipelinerun_spec_status::STOPPED_RUN_FINALLY
        )
    );
    let mut retried = Vec::new();
    let mut preserved = Vec::new();
    let mut delete_now = Vec::new();
    let mut delete_after_spec_clear = Vec::new();
    for (i, t) in state.tasks.iter().enumerate() {
        let name = t.task.name;
        if sel.is_rerun(i) {
            retried.push(RetriedTask {
                name: name.to_string(),
                previous_run: t.runs.first().map(|c| c.name().to_string()),
                previous_reason: t.outcome.reason().map(str::to_string),
            });
            let target = if graceful && t.task.is_finally {
                &mut delete_after_spec_clear
            } else {
                &mut delete_now
            };
            target.extend(t.runs.iter().map(|c| ChildRun {
                api_version: c.api_version.to_string(),
                kind: c.kind.as_str().to_string(),
                name: c.name().to_string(),
                uid: c.uid().to_string(),
                pipeline_task: name.to_string(),
            }));
        } else if sel.is_not_run(i) && !skipped_again(state, sel, i) {
            retried.push(RetriedTask {
                name: name.to_string(),
                previous_run: None,
                previous_reason: t.skip_reason.map(str::to_string),
            });
        } else {
            preserved.push(name.to_string());
        }
    }
    // References to drop besides the deleted runs': dangling references of tasks that run again
    // (harmless to Tekton, which drops them itself — fixture childrefs v2 — but stale).
    let dangling_references: Vec<String> = state
        .tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| sel.runs_again(*i))
        .flat_map(|(_, t)| t.missing.iter().map(|m| m.to_string()))
        .collect();
    let attempt = current_attempt.saturating_add(1);
    let remove_annotations = run
        .obj
        .annotations()
        .map(|a| {
            a.keys()
                .filter(|k| k.starts_with(CHAINS_ANNOTATION_PREFIX))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    // Attempt 1's times: from the record once retried (the run's status then holds later ones).
    // Attempt 1's times: the record's once the run was retried, else the run's own.
    let original = match input.record {
        Some(record) => record.original.clone(),
        None => OriginalTimes {
            start: run.obj.status_time_str("startTime").map(str::to_string),
            completion: run
                .obj
                .status_time_str("completionTime")
                .map(str::to_string),
        },
    };
    Plan {
        attempt,
        pipeline_run_uid: run.obj.uid().to_string(),
        retried,
        preserved,
        delete_now,
        delete_after_spec_clear,
        clear_spec_status: cancelled,
        remaining_timeout: budget.map(|b| b.remaining),
        original,
        remove_annotations,
        dangling_references,
    }
}

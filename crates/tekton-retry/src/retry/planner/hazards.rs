//! Hazards that make a re-run unsafe even though Tekton would accept it: non-idempotent tasks,
//! workspace data that is gone, and the affinity assistant Tekton does not bring back.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::annotations::IDEMPOTENT;
use crate::tekton::reasons::{AFFINITY_ASSISTANT_ANNOTATION, AUTO_CLEANUP_PVC_ANNOTATION};
use crate::tekton::PipelineRunView;

use super::select::Selection;
use super::state::RunState;
pub use crate::retry::refusal::{GoneClaim, MissingResult, NonIdempotent};

/// Tasks whose runs are re-run and that carry the opt-out mark, unless acknowledged.
///
/// The mark is read from the child run's annotations — Tekton copies the embedded
/// `taskSpec.metadata` annotations onto the TaskRun it creates (pkg/reconciler/pipelinerun/
/// pipelinerun.go `createTaskRun` → `combineTaskRunAndTaskSpecAnnotations`) and the referenced
/// Task's annotations once it resolves it (pkg/reconciler/taskrun/taskrun.go
/// `storeTaskSpecAndMergeMeta`); fixture dag-failed/06 shows the run's annotations on re-created
/// TaskRuns — and from the pipeline task's `taskSpec.metadata.annotations`. A task that never ran did nothing yet and needs no
/// acknowledgement.
pub fn non_idempotent(state: &RunState<'_>, sel: &Selection, ack: &[String]) -> Vec<NonIdempotent> {
    let ack: BTreeSet<&str> = ack.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for (_, t) in state
        .tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| sel.is_rerun(*i))
    {
        if ack.contains(t.task.name) {
            continue;
        }
        let on_run = t
            .runs
            .iter()
            .find(|c| c.annotation(IDEMPOTENT) == Some("false"))
            .map(|c| format!("{} {}", c.kind.as_str(), c.name()));
        let on_spec = (t.task.spec_annotation(IDEMPOTENT) == Some("false"))
            .then(|| "the pipeline task's taskSpec.metadata".to_string());
        if let Some(marked_on) = on_run.or(on_spec) {
            out.push(NonIdempotent {
                task: t.task.name.to_string(),
                marked_on,
            });
        }
    }
    out
}

/// Claims that the tasks to run again (re-run or never run) would mount and that are not in
/// `existing` (when known), or that Tekton deleted by itself.
///
/// The claim of a pipeline workspace is `spec.workspaces[].persistentVolumeClaim.claimName`, or
/// for a `volumeClaimTemplate` the claim Tekton created, read from the child runs that bound the
/// workspace (fixture affinity/01: `ws-run-a` and `ws-run-b` mount `pvc-1dbde596f6`; Tekton derives
/// the name in pkg/reconciler/volumeclaim/pvchandler.go `GeneratePVCNameFromWorkspaceBinding`).
///
/// Tekton creates template claims only before the first child run exists (pipelinerun.go
/// `reconcile`: `createOrUpdateAffinityAssistantsAndPVCs` under `IsBeforeFirstTaskRun`), so a
/// missing template claim is a hazard only when some run is kept; a retry that keeps nothing
/// starts over and gets new ones. A missing user claim (`persistentVolumeClaim`) always is.
/// `emptyDir` and other volume workspaces are per pod: no task ever shares data through them, so a
/// retry loses nothing there.
pub fn gone_claims(
    run: &PipelineRunView<'_>,
    state: &RunState<'_>,
    sel: &Selection,
    existing: Option<&BTreeSet<String>>,
) -> Vec<GoneClaim> {
    let starts_over = state
        .tasks
        .iter()
        .enumerate()
        .all(|(i, t)| t.runs.is_empty() || sel.is_rerun(i));
    // With `tekton.dev/auto-cleanup-pvc: "true"` Tekton deletes the claims it created from
    // `volumeClaimTemplate`s when the run is done (affinity_assistant.go
    // `cleanupAffinityAssistantsAndPVCs`, `AutoCleanupPVCAnnotation`): gone even when unchecked.
    let auto_cleanup = run.obj.annotation(AUTO_CLEANUP_PVC_ANNOTATION) == Some("true");
    let templated: BTreeSet<&str> = run
        .workspace_bindings()
        .into_iter()
        .filter(|(_, b)| !b["volumeClaimTemplate"].is_null())
        .map(|(n, _)| n)
        .collect();
    let mut claim_of: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, binding) in run.workspace_bindings() {
        if let Some(c) = binding["persistentVolumeClaim"]["claimName"]
            .as_str()
            .filter(|c| !c.is_empty())
        {
            claim_of.insert(name, c);
        }
    }
    for t in &state.tasks {
        let bindings = t.task.workspace_bindings();
        for c in &t.runs {
            for (task_ws, claim) in c.claims() {
                if let Some((_, pipeline_ws)) = bindings.iter().find(|(n, _)| *n == task_ws) {
                    claim_of.entry(pipeline_ws).or_insert(claim);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let again = state
        .tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| sel.runs_again(*i))
        .map(|(_, t)| t);
    for t in again {
        let bindings = t.task.workspace_bindings();
        // (pipeline workspace if known, claim) pairs this task would mount.
        let mut needed: Vec<(Option<&str>, &str)> = bindings
            .iter()
            .filter_map(|(_, ws)| claim_of.get(ws).map(|c| (Some(*ws), *c)))
            .collect();
        for c in &t.runs {
            for (task_ws, claim) in c.claims() {
                let ws = bindings
                    .iter()
                    .find(|(n, _)| *n == task_ws)
                    .map(|(_, w)| *w);
                needed.push((ws, claim));
            }
        }
        if existing.is_none() && auto_cleanup {
            // The claim name may be unknown (no child mounted it yet).
            for (_, ws) in &bindings {
                if templated.contains(ws) && !claim_of.contains_key(ws) {
                    needed.push((Some(*ws), "(from volumeClaimTemplate)"));
                }
            }
        }
        for (ws, claim) in needed {
            let is_template = ws.is_some_and(|w| templated.contains(w));
            if is_template && starts_over {
                continue;
            }
            let gone = match existing {
                Some(e) => !e.contains(claim),
                None => is_template && auto_cleanup,
            };
            if gone && seen.insert(claim.to_string()) {
                out.push(GoneClaim {
                    workspace: ws.map(str::to_string),
                    claim: claim.to_string(),
                    task: t.task.name.to_string(),
                });
            }
        }
    }
    out
}

/// The affinity assistant the run's pods were pinned to, when a retry would keep some child runs
/// and a task that runs again would be pinned to it.
///
/// Tekton deletes the assistant's StatefulSet when the run completes and creates it only before
/// the first child run exists (pipelinerun.go `reconcile`: `createOrUpdateAffinityAssistantsAndPVCs`
/// runs under `IsBeforeFirstTaskRun`; `cleanupAffinityAssistantsAndPVCs` when done). Re-created
/// TaskRuns still carry the annotation and their pods the required `podAffinity` (fixture
/// affinity/03), so with any child kept they can never be scheduled. With no child kept, Tekton
/// starts over and creates a new assistant.
///
/// Which TaskRuns get the annotation depends on the `coschedule` feature flag, which the planner
/// cannot read (pipelinerun.go `createTaskRun`, affinity_assistant.go
/// `getAffinityAssistantAnnotationVal`): with `workspaces` (the default) only tasks that bind a PVC
/// or `volumeClaimTemplate` workspace, with `pipelineruns`/`isolate-pipelinerun` every task. The
/// runs tell: an annotated run of a task without such a workspace means per-pipelinerun; a run
/// without the annotation means per-workspace. Only when per-workspace is certain does a retry that
/// re-runs just tasks without claim workspaces go ahead.
pub fn lost_affinity_assistant(
    run: &PipelineRunView<'_>,
    state: &RunState<'_>,
    sel: &Selection,
) -> Option<String> {
    let assistant = state
        .tasks
        .iter()
        .flat_map(|t| t.runs.iter())
        .find_map(|c| c.annotation(AFFINITY_ASSISTANT_ANNOTATION))?;
    let keeps_a_run = state
        .tasks
        .iter()
        .enumerate()
        .any(|(i, t)| !t.runs.is_empty() && !sel.is_rerun(i));
    if !keeps_a_run {
        return None;
    }
    let claim_workspaces: BTreeSet<&str> = run
        .workspace_bindings()
        .into_iter()
        .filter(|(_, b)| {
            !b["persistentVolumeClaim"].is_null() || !b["volumeClaimTemplate"].is_null()
        })
        .map(|(n, _)| n)
        .collect();
    let binds_claim = |t: &super::state::TaskState<'_>| {
        t.task
            .workspace_bindings()
            .iter()
            .any(|(_, ws)| claim_workspaces.contains(ws))
    };
    let runs = || {
        state
            .tasks
            .iter()
            .flat_map(|t| t.runs.iter().map(move |c| (t, c)))
    };
    let per_pipelinerun = runs()
        .any(|(t, c)| c.annotation(AFFINITY_ASSISTANT_ANNOTATION).is_some() && !binds_claim(t));
    let per_workspace = runs().any(|(_, c)| c.annotation(AFFINITY_ASSISTANT_ANNOTATION).is_none());
    let pinned_again = state
        .tasks
        .iter()
        .enumerate()
        .filter(|(i, _)| sel.runs_again(*i))
        .any(|(_, t)| per_pipelinerun || !per_workspace || binds_claim(t));
    pinned_again.then(|| assistant.to_string())
}

/// Result references of the tasks that run again that a kept producer run cannot satisfy.
///
/// Before creating a DAG task Tekton checks that every result it references exists
/// (pipelinerunresolution.go `CheckMissingResultReferences`); if not, the task is not created and
/// the run ends `PipelineValidationFailed` with "Failed Validation: N (…)" — a runtime outcome,
/// e.g. of a producer that failed under `onError: continue` or succeeded without writing the
/// result. Re-running the consumer while keeping such a producer fails the same way; re-running
/// the producer (in `restartTasks`) can recover it.
pub fn missing_results(state: &RunState<'_>, sel: &Selection) -> Vec<MissingResult> {
    let mut out = Vec::new();
    for (i, t) in state.tasks.iter().enumerate() {
        // A finally task, or one under `onError: continue`, with a missing result is skipped
        // ("Results were missing"), not failed (pipelinerunresolution.go `skip`, `IsFinallySkipped`).
        if !sel.runs_again(i) || t.task.is_finally || t.task.on_error_continue() {
            continue;
        }
        for (producer, result) in t.task.result_references() {
            let Some(&j) = state.index.get(producer) else {
                continue;
            };
            if sel.runs_again(j) {
                continue;
            }
            if let Some(run) = state.tasks[j].runs.iter().find(|c| !c.has_result(result)) {
                out.push(MissingResult {
                    consumer: t.task.name.to_string(),
                    producer: producer.to_string(),
                    result: result.to_string(),
                    producer_run: run.name().to_string(),
                });
            }
        }
    }
    out
}

//! The Tekton simulator: reconciles PipelineRuns and TaskRuns the way the real Tekton controller
//! did on the recorded fixtures (`tests/fixtures/tekton/`), so that an in-place retry engine tested
//! against it behaves as it would on real Tekton.
//!
//! Layout (pure logic separated from plumbing): [`pipelinerun`] and [`taskrun`] are pure reconcile
//! functions over JSON objects, [`facts`] holds Tekton's questions about a run's state, [`kubelet`]
//! decides pod outcomes, [`memory`] is a serial in-memory cluster with a fake clock (tests), and
//! [`driver`] runs the same functions against a Kubernetes API (through [`api`]). [`volumeclaim`]
//! and [`affinity`] model workspace claims and the affinity assistant, both named after the
//! `coschedule` mode ([`coschedule`]); [`placement`] plays the scheduler and the StatefulSet
//! controller for them in the driver. All constants are in [`rules`].
//!
//! # Rules (source in brackets; `pr.go` = `pkg/reconciler/pipelinerun/pipelinerun.go`,
//! `state.go` = `resources/pipelinerunstate.go`, `resolution.go` = `resources/pipelinerunresolution.go`,
//! `tr.go` = `pkg/reconciler/taskrun/taskrun.go`, Tekton v1.15.0-49-g3ee1745ae)
//!
//! PipelineRun:
//! 1. A done run is left alone: no write at all [`ReconcileKind` "already done on entry"; every
//!    fixture's api-writes.txt]. Hence a status flipped back to Unknown is reconciled again at once
//!    [flip-only].
//! 2. A run being deleted (deletionTimestamp) is not reconciled [knative generated reconciler].
//!    First reconcile: `startTime = now`, `Unknown/Started` \[`InitializeConditions`\].
//! 3. Timed out for ≥ 2× `timeouts.pipeline`: cancel referenced TaskRuns with the timeout message,
//!    `False/PipelineRunTimeout "PipelineRun \"x\" failed to finish within \"1m0s\""`, stop — no
//!    skippedTasks, no finallyStartTime [`HasTimedOutForALongTime`; timeout-long].
//! 4. Label `tekton.dev/pipeline` = pipelineRef name, else the run's name
//!    \[`propagatePipelineNameLabelToPipelineRun`\].
//! 5. `spec.status: Cancelled` (even right after a status reset): patch every referenced running
//!    TaskRun `spec.status: TaskRunCancelled` + `statusMessage`, `False/Cancelled "PipelineRun \"x\"
//!    was cancelled"`, completionTime, childReferences/skippedTasks untouched [`cancelPipelineRun`;
//!    cancelled/02, race 1 in cancelled/06].
//! 6. Owned TaskRuns labelled with the run but missing from childReferences are re-adopted; refs
//!    sorted by (task, name) [`updatePipelineRunStatusFromChildRefs`; childrefs v1].
//! 7. Pipeline spec: `status.pipelineSpec` if present, else the Pipeline/inline spec with defaults
//!    and `$(params.*)`/`$(context.*)` applied, stored back [`GetPipelineFunc`, `ApplyParameters`].
//! 8. TaskRun names: from childReferences for the task, else `<run>-<task>` / matrix
//!    `<run>-<task>-<i>`; TaskRuns are looked up by those names [`GetNamesOfTaskRuns`; matrix:
//!    a deleted combination whose reference was kept is never re-created, dangling non-matrix refs
//!    are re-created under the same name (childrefs v2)]. A matrix name gets its combination by
//!    its **position** in that list, not by its `-<i>` suffix \[`createTaskRuns`\]: refs left for
//!    `-1`, `-2` only re-create those two, with combinations 0 and 1.
//! 9. Skip reasons, recomputed every reconcile, first match wins: scheduled/finally → none;
//!    stopping; gracefully cancelled; gracefully stopped; when false (parents done); parent skipped
//!    (not for when-skipped parents); missing results; pipeline timeout; tasks timeout; empty matrix.
//!    `when`: `in`/`notin` over input and values, or `cel` evaluated by [`tekton_retry::tekton::cel`],
//!    after parameters (with the spec) and task results (input, values and CEL) are substituted;
//!    a `cel` that is not a bool fails the run `CELEvaluationFailed` \[`EvaluateCEL`\].
//!    Finally tasks (once the DAG is done): missing results, when, pipeline timeout, finally timeout
//!    [`skip`, `IsFinallySkipped`; matrix timeline, timeout/03].
//! 10. Scheduling: no new DAG task when cancelled, gracefully cancelled/stopped or stopping; DAG
//!     tasks whose parents are done and that have no TaskRun; finally tasks without a TaskRun once
//!     the DAG is done; finallyStartTime stamped when a finally task is scheduled or already exists
//!     [`DAGExecutionQueue`, `GetFinalTasks`, `runNextSchedulableTask`; keep-finally,
//!     cancelled-finally-trap].
//! 11. Created TaskRuns: run labels + pipelineRun/UID/pipelineTask/memberOf/managed-by/task labels,
//!     run annotations, owner ref (controller, blockOwnerDeletion), params with results,
//!     `$(tasks.status)` / `$(tasks.<t>.status)` substituted, matrix params first, `taskRef` or
//!     `taskSpec`, `serviceAccountName` from `taskRunTemplate`, `timeout` default `1h0m0s`,
//!     `retries` [`createTaskRun`; dag-failed/06, matrix/01, timeout-within/03].
//! 12. Graceful cancel while DAG tasks run cancels every referenced TaskRun \[`gracefullyCancelPipelineRun`\].
//! 13. Tasks timeout = `timeouts.tasks`, else `pipeline − finally` when both are set and non-zero;
//!     finally timeout symmetrically \[`TasksTimeout`, `FinallyTimeout`\].
//!     `timeouts.tasks` / `timeouts.finally` exceeded: running TaskRuns of that phase are cancelled
//!     with the timeout message.
//! 14. `now - startTime > timeouts.pipeline`: cancel referenced TaskRuns with "…has timed out.",
//!     `False/PipelineRunTimeout` [`timeoutPipelineRun`; timeout/03, timeout-startreset].
//! 15. Condition \[`GetPipelineConditionStatus`\]: all done → `Tasks Completed: N (Failed: F,
//!     Cancelled C), Skipped: S` with Succeeded / Completed (skips) / Failed / Cancelled ("PipelineRun
//!     \"x\" was cancelled" when gracefully cancelled or stopped); otherwise Unknown with
//!     `Tasks Completed: N (Failed: F, Cancelled C), Incomplete: I, Skipped: S` and reason Running,
//!     CancelledRunningFinally, StoppedRunningFinally or PipelineRunStopping. A TaskRun cancelled by
//!     the pipeline timeout counts as failed. completionTime = the condition's transition time.
//! 16. startTime is pulled back to the earliest child TaskRun's creationTimestamp
//!     [`AdjustStartTime`; timeout-within, timeout-startreset].
//! 18. `syncMetadata` after every reconcile that does work (Tekton runs it after every reconcile,
//!     but one of a done or pending run returns at once, leaving no window): labels and annotations become
//!     `Union(current, reconcile copy)` with the reconcile's copy (as read at its start) winning, by
//!     an Update fenced by the resourceVersion just read — a key changed by someone else during the
//!     reconcile is written back \[`updateLabelsAndAnnotations`, `kmap.Union`\]. The driver models it
//!     ([`SimulatorOptions::metadata_sync_lag`] widens the window); the memory cluster does not.
//! 20. A run whose `spec.managedBy` is not `tekton.dev/pipeline` is never reconciled (nor such a
//!     TaskRun) \[`pipelineRunFilterManagedBy`\].
//! 21. Workspaces, claims and the affinity assistant ([`volumeclaim`], [`affinity`]; the
//!     `coschedule` flag read from the `tekton-pipelines/feature-flags` ConfigMap): while no child
//!     run exists, the run's claims from `volumeClaimTemplate`s (`pvc-<sha256(ws+uid)[:10]>`, owned
//!     by the run, reused when they exist) and its affinity-assistant StatefulSets are created;
//!     TaskRuns bind the claim instead of the template and carry
//!     `pipeline.tekton.dev/affinity-assistant` per mode; when the run is done the StatefulSets
//!     (and, per mode, template claims) are deleted \[`createOrUpdateAffinityAssistantsAndPVCs`,
//!     `cleanupAffinityAssistantsAndPVCs`, `getAffinityAssistantAnnotationVal`,
//!     `taskWorkspaceByWorkspaceVolumeSource`; affinity fixture\]. Pods get the claims as volumes
//!     and the required pod affinity; the driver's scheduler keeps a pod `Pending`
//!     (`PodScheduled=False`) while its claim or its assistant's pod is missing.
//! 22. DAG edges: `runAfter` and `$(tasks.X.results.…)` in params, `when`, matrix and the steps
//!     and sidecars of an embedded taskSpec, whose results are substituted into the created
//!     TaskRun too \[`PipelineTask.Deps`, `GetVarSubstitutionExpressions`, `ApplyTaskResults`\].
//! 23. A DAG candidate referencing a result that does not exist (producer failed under `onError:
//!     continue`, or succeeded without it) is not created: it is validation-failed (done, makes the
//!     run stop), no DAG task is created in that reconcile, and the run ends
//!     `False/PipelineValidationFailed` with `…, Failed Validation: N (error)` in the message
//!     \[`CheckMissingResultReferences`, `GetPipelineConditionStatus`\].
//! 24. Pipelines in pipelines: a pipeline task with `pipelineSpec`/`pipelineRef` gets a child
//!     PipelineRun named like a TaskRun (`GetNamesOfChildPipelineRuns`, references of kind
//!     PipelineRun), with the run's labels and annotations, `tekton.dev/pipelineRun` and
//!     `pipelineTask`, the run as owner, the task's params and workspaces; the child's condition is
//!     the task's outcome \[`createChildPipelineRun`; pipelinerun_pinp_test.go\]. A hard cancel
//!     of such a run fails on the child's "unknown kind" and leaves it
//!     `Unknown/PipelineRunCouldntCancel` \[cancel.go `getChildObjectsFromPRStatusForTaskNames`\].
//! 19. Only children whose first ownerReference is the run are adopted into childReferences
//!     \[`filterTaskRunsForPipelineRunStatus`\]; a labelled TaskRun of another owner is ignored.
//! 17. childReferences rebuilt from existing TaskRuns in task order (dangling refs dropped);
//!     skippedTasks with whenExpressions; results from task results when done, a result whose
//!     reference cannot be resolved is omitted [`GetChildReferences`, `GetSkippedTasks`,
//!     `ApplyTaskResultsToPipelineResults`; dag-failed/01 has no results].
//!
//! TaskRun:
//! 1. Done on entry: nothing, except a failed non-cancelled run with retries left is retried.
//!    Being deleted: nothing (no pod is re-created while a foreground deletion waits for its pod).
//! 2. No startTime: `startTime = now`, reason Started \[`InitializeConditions`\].
//! 3. `spec.status: TaskRunCancelled` → `False/TaskRunCancelled "TaskRun \"x\" was cancelled. <msg>"`
//!    (+ "\nPrevious status: \[R\] M" unless Started/Running/TaskRunPending), completionTime, running steps
//!    terminated with the reason, pod deleted [`failTaskRun`, `appendPreviousConditionContext`;
//!    cancelled/02, cancelled-inplace].
//! 4. Timeout (`spec.timeout`, default 1h): `False/TaskRunTimeout "TaskRun \"x\" failed to finish
//!    within \"1h0m0s\""`, pod deleted.
//! 5. Task spec: `status.taskSpec`, else inline, else the referenced Task (re-created TaskRuns
//!    re-resolve — dag-failed/06), params and `$(results.r.path)` applied.
//! 6. Pod `<tr>-pod` (`-retry<N>` after N archived attempts) is created when missing; an existing pod
//!    of that name is adopted even if stale [`createPod` AlreadyExists; orphan-pod].
//! 7. Status from the pod \[`MakeTaskRunStatus`\]: Pending → `Unknown/Pending "Pending"`, Running →
//!    `Unknown/Running "Not all Steps in the Task have finished executing"`, success →
//!    `True/Succeeded "All Steps have completed executing"` with results from type-1 termination
//!    entries, failure → `False/StepFailed "\"step-x\" exited with code 1: Error"`.
//! 8. Failed, not cancelled, `len(retriesStatus) < spec.retries` → status archived into
//!    retriesStatus, `Unknown/ToBeRetried`, podName cleared [`retryTaskRun`; retries/01, /03].
//!
//! Plumbing (see [`driver`] and [`memory`]):
//! * Status writes follow knative's generated reconciler: PUT with the read resourceVersion, on 409
//!   re-GET and PUT the same desired status (race 2 of `cancelled/` 07–09 and
//!   `cancelled-finally/` 05–06). [`SimulatorOptions::stale_read_lag`] widens the read→write window;
//!   [`MemoryCluster::begin_pipelinerun_reconcile`] / [`MemoryCluster::commit_status`] split it
//!   deterministically.
//! * Race 1 (re-cancel right after a status reset while `spec.status: Cancelled` is still set) needs
//!   no knob: every reconcile of such a run re-cancels it (rule 5).
//! * Adoption of a leftover pod with the TaskRun's pod name is always on (TaskRun rule 6).
//! * The fake kubelet ([`kubelet`]) completes pods by the `sandbox.retry.tekton.dev/*` annotations;
//!   Task results get `<result>-from-<pod name>`, the recorded kubelet's values, so the fixtures'
//!   result values and the params derived from them compare exactly.
//!
//! Finalizers that delay deletion are the emulator's (an object with `metadata.finalizers` stays,
//! with its deletionTimestamp, until they are removed).
//!
//! Not modelled: custom tasks, pipeline-ref cycle detection, CEL beyond the forms of [`tekton_retry::tekton::cel`] (such a
//! run fails `CELEvaluationFailed` here instead of being guessed), array/object params
//! and results, `matrix.include`, onError annotations on pods, sidecars (only their result
//! references), resolvers; the in-memory cluster ([`memory`]) creates no StatefulSet or claim and
//! schedules every pod (like the lab the fixtures were recorded in, whose fake kubelet ran pods
//! pinned to a deleted assistant: fixture affinity/03); TaskRun-level `volumeClaimTemplate`s.
//! Names of TaskRuns and pods follow `kmeta.ChildName` (hashed when too long,
//! [`tekton_retry::tekton::names`]).

pub mod affinity;
#[cfg(test)]
mod affinity_fixture;
pub mod api;
pub mod coschedule;
pub mod driver;
pub mod facts;
#[cfg(test)]
mod fixture;
pub mod kubelet;
pub mod memory;
pub mod pipelinerun;
pub mod placement;
pub mod rules;
pub mod taskrun;
pub mod util;
pub mod volumeclaim;

pub use affinity::Coschedule;
pub use driver::{Simulator, SimulatorError, SimulatorHandle, SimulatorOptions};
pub use kubelet::{FakeKubelet, OutcomeRules};
pub use memory::{Kind, MemoryCluster, MemoryError, Propagation};
pub use pipelinerun::{
    reconcile_pipelinerun, reconcile_pipelinerun_with, PipelineRunActions, TaskRunCancel,
};
pub use taskrun::{pod_name_for, reconcile_taskrun, TaskRunActions};

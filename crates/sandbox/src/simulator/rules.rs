//! Every Tekton string and constant the simulator reproduces, in one place, each with its source.
//!
//! Sources: `tektoncd/pipeline` at v1.15.0-49-g3ee1745ae (the commit the fixtures were recorded with) and
//! the recorded fixtures in `tests/fixtures/tekton/` (README "Verdict" table). The reconcile rules that use
//! these constants are listed in the module documentation of [`super`].

/// Label keys (`pkg/apis/pipeline/register.go`); values seen on every fixture TaskRun (e.g.
/// `dag-failed/01-failed-taskrun-demo-run-b.json`).
pub const LABEL_PIPELINE: &str = "tekton.dev/pipeline";
/// `tekton.dev/pipelineRun` – the owning run's name.
pub const LABEL_PIPELINE_RUN: &str = "tekton.dev/pipelineRun";
/// `tekton.dev/pipelineRunUID` – the owning run's uid.
pub const LABEL_PIPELINE_RUN_UID: &str = "tekton.dev/pipelineRunUID";
/// `tekton.dev/pipelineTask` – the pipeline task a child runs.
pub const LABEL_PIPELINE_TASK: &str = "tekton.dev/pipelineTask";
/// `tekton.dev/memberOf` – `tasks` or `finally` (`memberOfLookup` in `pipelinerun.go`).
pub const LABEL_MEMBER_OF: &str = "tekton.dev/memberOf";
/// `tekton.dev/task` – the referenced Task's name.
pub const LABEL_TASK: &str = "tekton.dev/task";
/// `tekton.dev/taskRun` – on pods, the owning TaskRun (`pkg/pod/pod.go`).
pub const LABEL_TASK_RUN: &str = "tekton.dev/taskRun";
/// `tekton.dev/taskRunUID` – on pods.
pub const LABEL_TASK_RUN_UID: &str = "tekton.dev/taskRunUID";
/// `app.kubernetes.io/managed-by: tekton-pipelines` (fixture TaskRuns and pods).
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The only `spec.managedBy` the controller reconciles; runs naming another controller are
/// filtered out of its work queue (pipelinerun/controller.go `pipelineRunFilterManagedBy`,
/// taskrun/controller.go `taskRunFilterManagedBy`).
pub const SPEC_MANAGED_BY: &str = "tekton.dev/pipeline";

/// Whether the Tekton controller reconciles `run` at all (no `spec.managedBy`, or Tekton's).
pub fn managed_by_tekton(run: &serde_json::Value) -> bool {
    run.pointer("/spec/managedBy")
        .and_then(serde_json::Value::as_str)
        .is_none_or(|m| m.is_empty() || m == SPEC_MANAGED_BY)
}

/// Annotation naming the affinity assistant a TaskRun's pod must run next to.
pub const ANN_AFFINITY_ASSISTANT: &str = "pipeline.tekton.dev/affinity-assistant";

/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGED_BY: &str = "tekton-pipelines";

/// `PipelineRunSpecStatusCancelled` (`pipelinerun_types.go`).
pub const PR_SPEC_CANCELLED: &str = "Cancelled";
/// `PipelineRunSpecStatusCancelledRunFinally`.
pub const PR_SPEC_CANCELLED_RUN_FINALLY: &str = "CancelledRunFinally";
/// `PipelineRunSpecStatusStoppedRunFinally`.
pub const PR_SPEC_STOPPED_RUN_FINALLY: &str = "StoppedRunFinally";
/// `PipelineRunSpecStatusPending`.
pub const PR_SPEC_PENDING: &str = "PipelineRunPending";
/// `TaskRunSpecStatusCancelled` (`taskrun_types.go`).
pub const TR_SPEC_CANCELLED: &str = "TaskRunCancelled";

/// `TaskRunCancelledByPipelineMsg` (`taskrun_types.go`; fixture `cancelled/02-cancelled-taskrun-demo-run-b.json`).
pub const MSG_CANCELLED_BY_PIPELINE: &str =
    "TaskRun cancelled as the PipelineRun it belongs to has been cancelled.";
/// `TaskRunCancelledByPipelineTimeoutMsg` (fixture `timeout-startreset/03-after-reset-taskrun-demo-run-b.json`).
pub const MSG_CANCELLED_BY_PIPELINE_TIMEOUT: &str =
    "TaskRun cancelled as the PipelineRun it belongs to has timed out.";

/// PipelineRun condition reasons (`PipelineRunReason*` in `pipelinerun_types.go`).
pub mod pr_reason {
    /// `PipelineRunReasonStarted`.
    pub const STARTED: &str = "Started";
    /// `PipelineRunReasonRunning`.
    pub const RUNNING: &str = "Running";
    /// `PipelineRunReasonSuccessful`.
    pub const SUCCEEDED: &str = "Succeeded";
    /// `PipelineRunReasonCompleted` (done, at least one task skipped).
    pub const COMPLETED: &str = "Completed";
    /// `PipelineRunReasonFailed`.
    pub const FAILED: &str = "Failed";
    /// `PipelineRunReasonCancelled`.
    pub const CANCELLED: &str = "Cancelled";
    /// `PipelineRunReasonPending`.
    pub const PENDING: &str = "PipelineRunPending";
    /// `PipelineRunReasonTimedOut`.
    pub const TIMEOUT: &str = "PipelineRunTimeout";
    /// `PipelineRunReasonStopping`.
    pub const STOPPING: &str = "PipelineRunStopping";
    /// `PipelineRunReasonTimedOutRunningFinally`.
    pub const TIMEOUT_RUNNING_FINALLY: &str = "PipelineRunTimeoutRunningFinally";
    /// `PipelineRunReasonCancelledRunningFinally`.
    pub const CANCELLED_RUNNING_FINALLY: &str = "CancelledRunningFinally";
    /// `PipelineRunReasonStoppedRunningFinally`.
    pub const STOPPED_RUNNING_FINALLY: &str = "StoppedRunningFinally";
    /// `PipelineRunReasonCouldntGetPipeline`.
    pub const COULDNT_GET_PIPELINE: &str = "CouldntGetPipeline";
    /// `PipelineRunReasonCouldntGetTask`.
    pub const COULDNT_GET_TASK: &str = "CouldntGetTask";
    /// `PipelineRunReasonCouldntCancel`: the cancel failed on some child (cancel.go).
    pub const COULDNT_CANCEL: &str = "PipelineRunCouldntCancel";
    /// `PipelineRunReasonInvalidGraph`.
    pub const INVALID_GRAPH: &str = "PipelineInvalidGraph";
    /// `PipelineRunReasonFailedValidation`: also the runtime outcome of a missing task result.
    pub const VALIDATION_FAILED: &str = "PipelineValidationFailed";
    /// `PipelineRunReasonCELEvaluationFailed` (pipelinerun_types.go).
    pub const CEL_EVALUATION_FAILED: &str = "CELEvaluationFailed";
}

/// Skipping reasons (`SkippingReason` constants in `pipelinerun_types.go`).
pub mod skip {
    /// `WhenExpressionsSkip`.
    pub const WHEN: &str = "When Expressions evaluated to false";
    /// `ParentTasksSkip`.
    pub const PARENT: &str = "Parent Tasks were skipped";
    /// `StoppingSkip`.
    pub const STOPPING: &str = "PipelineRun was stopping";
    /// `GracefullyCancelledSkip`.
    pub const GRACEFULLY_CANCELLED: &str = "PipelineRun was gracefully cancelled";
    /// `GracefullyStoppedSkip`.
    pub const GRACEFULLY_STOPPED: &str = "PipelineRun was gracefully stopped";
    /// `MissingResultsSkip`.
    pub const MISSING_RESULTS: &str = "Results were missing";
    /// `PipelineTimedOutSkip`.
    pub const PIPELINE_TIMEOUT: &str = "PipelineRun timeout has been reached";
    /// `TasksTimedOutSkip`.
    pub const TASKS_TIMEOUT: &str = "PipelineRun Tasks timeout has been reached";
    /// `FinallyTimedOutSkip`.
    pub const FINALLY_TIMEOUT: &str = "PipelineRun Finally timeout has been reached";
    /// `EmptyArrayInMatrixParams`.
    pub const EMPTY_MATRIX: &str = "Matrix Parameters have an empty array";
}

/// TaskRun condition reasons (`TaskRunReason*` in `taskrun_types.go`, `pkg/pod/status.go`).
pub mod tr_reason {
    /// `TaskRunReasonStarted`.
    pub const STARTED: &str = "Started";
    /// `TaskRunReasonRunning`.
    pub const RUNNING: &str = "Running";
    /// `TaskRunReasonSuccessful`.
    pub const SUCCEEDED: &str = "Succeeded";
    /// `TaskRunReasonFailed`.
    pub const FAILED: &str = "Failed";
    /// `TaskRunReasonStepFailed` – what this Tekton reports for a failed step (fixture README).
    pub const STEP_FAILED: &str = "StepFailed";
    /// `TaskRunReasonCancelled`.
    pub const CANCELLED: &str = "TaskRunCancelled";
    /// `TaskRunReasonTimedOut`.
    pub const TIMEOUT: &str = "TaskRunTimeout";
    /// `TaskRunReasonToBeRetried`.
    pub const TO_BE_RETRIED: &str = "ToBeRetried";
    /// `TaskRunReasonPending` (`spec.status: TaskRunPending`; not the pod's `Pending`).
    pub const TASKRUN_PENDING: &str = "TaskRunPending";
    /// `ReasonPodPending` (`pkg/pod/status.go`).
    pub const PENDING: &str = "Pending";
    /// `TaskRunReasonFailedResolution` – the Task could not be resolved (`prepare` in `taskrun.go`).
    pub const FAILED_RESOLUTION: &str = "TaskRunResolutionFailed";
}

/// `markStatusRunning(..., "Not all Steps in the Task have finished executing")` (`pkg/pod/status.go`).
pub const MSG_TR_RUNNING: &str = "Not all Steps in the Task have finished executing";
/// `markStatusSuccess` message (`pkg/pod/status.go`).
pub const MSG_TR_SUCCEEDED: &str = "All Steps have completed executing";

/// The default `timeouts.pipeline` and TaskRun `timeout` (`config/config-defaults.yaml`
/// `default-timeout-minutes: 60`; fixture TaskRuns carry `timeout: 1h0m0s`).
pub const DEFAULT_TIMEOUT: &str = "1h0m0s";

/// The entrypoint termination-message result types (`pkg/result/result.go`): 1 = task result,
/// 3 = internal Tekton result (`StartedAt`, `Reason`, `ExitCode`).
pub const RESULT_TYPE_TASK: i64 = 1;
/// See [`RESULT_TYPE_TASK`].
pub const RESULT_TYPE_INTERNAL: i64 = 3;

/// Where a step writes result `r`: `$(results.r.path)` (`pkg/pod` `/tekton/results`).
pub const RESULTS_DIR: &str = "/tekton/results";

/// `status.provenance` as the recorded controller wrote it on PipelineRuns and TaskRuns (fixture
/// `dag-failed/01-failed-pipelinerun-demo-run.json`: the default feature flags of this Tekton).
pub fn provenance() -> serde_json::Value {
    serde_json::json!({"featureFlags": {
        "awaitSidecarReadiness": true,
        "coschedule": "workspaces",
        "enableAPIFields": "beta",
        "enableProvenanceInStatus": true,
        "enforceNonfalsifiability": "none",
        "maxResultSize": 4096,
        "resultExtractionMethod": "termination-message",
        "runningInEnvWithInjectedSidecars": true,
        "sendCloudEventsForRuns": true,
        "verificationNoMatchPolicy": "ignore"
    }})
}

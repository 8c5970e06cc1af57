//! Tekton's reason and `spec.status` strings the planner depends on, each with its source in
//! tektoncd/pipeline (v1.15, commit 3ee1745ae — the version the fixtures were recorded with).

/// `spec.status` of a PipelineRun (pkg/apis/pipeline/v1/pipelinerun_types.go
/// `PipelineRunSpecStatus*`).
pub mod pipelinerun_spec_status {
    pub const CANCELLED: &str = "Cancelled";
    pub const CANCELLED_RUN_FINALLY: &str = "CancelledRunFinally";
    pub const STOPPED_RUN_FINALLY: &str = "StoppedRunFinally";
    pub const PENDING: &str = "PipelineRunPending";
}

/// `Succeeded` reasons of a PipelineRun (pipelinerun_types.go `PipelineRunReason*`).
pub mod pipelinerun_reason {
    pub const CANCELLED: &str = "Cancelled";
    pub const PENDING: &str = "PipelineRunPending";
    pub const TIMED_OUT: &str = "PipelineRunTimeout";
    /// `PipelineRunReasonFailedValidation`: a spec error, or at run time a missing task result.
    pub const VALIDATION_FAILED: &str = "PipelineValidationFailed";
}

/// PipelineRun failure reasons that come from the spec or its resolution, not from running a task:
/// set by `MarkFailed` in pkg/reconciler/pipelinerun/pipelinerun.go (`prepare`, `reconcile`,
/// `runNextSchedulableTask`) before any child run exists or when the graph cannot be scheduled.
/// Re-running the same spec fails the same way, so a retry is refused.
///
/// Not listed on purpose: `CreateRunFailed` (the API refused a child create: may be quota or a
/// webhook outage), `CouldntCreateWorkspacePVC` and the affinity-assistant StatefulSet failure
/// (cluster state), `CouldntGetPipelineResult` (set after the tasks ran; the normal rules decide
/// from the tasks' outcomes).
pub const DETERMINISTIC_RUN_FAILURES: &[&str] = &[
    "CouldntGetPipeline",
    "CouldntGetTask",
    "PipelineValidationFailed",
    "ResourceVerificationFailed",
    "PipelineInvalidGraph",
    "InvalidPipelineResourceBindings",
    "InvalidWorkspaceBindings",
    "InvalidTaskRunSpecs",
    "ParameterTypeMismatch",
    "ObjectParameterMissKeys",
    "ParamArrayIndexingInvalid",
    "ParameterMissing",
    "InvalidParamValue",
    "InvalidMatrixParameterTypes",
    "InvalidTaskResultReference",
    "InvalidPipelineResultReference",
    "RequiredWorkspaceMarkedOptional",
    "CELEvaluationFailed",
];

/// Skip reasons of `status.skippedTasks` (pipelinerun_types.go `SkippingReason`).
pub mod skip_reason {
    /// The task's `when` expressions were false: Tekton evaluates them again on the next attempt.
    pub const WHEN_EXPRESSIONS: &str = "When Expressions evaluated to false";
}

/// The cancel request and outcome strings of each child kind.
pub mod child {
    /// TaskRun `spec.status` (taskrun_types.go `TaskRunSpecStatusCancelled`).
    pub const TASKRUN_SPEC_CANCELLED: &str = "TaskRunCancelled";
    /// TaskRun reasons (taskrun_types.go `TaskRunReasonCancelled`, `TaskRunReasonTimedOut`).
    pub const TASKRUN_CANCELLED: &str = "TaskRunCancelled";
    pub const TASKRUN_TIMEOUT: &str = "TaskRunTimeout";
    /// CustomRun `spec.status` (pkg/apis/pipeline/v1beta1/customrun_types.go
    /// `CustomRunSpecStatusCancelled`).
    pub const CUSTOMRUN_SPEC_CANCELLED: &str = "RunCancelled";
    /// CustomRun reasons (customrun_types.go `CustomRunReasonCancelled`, `CustomRunReasonTimedOut`).
    pub const CUSTOMRUN_CANCELLED: &str = "CustomRunCancelled";
    pub const CUSTOMRUN_TIMEOUT: &str = "CustomRunTimedOut";
}

/// Annotation Tekton puts on TaskRuns whose pods must co-locate with an affinity assistant
/// (pkg/workspace/affinity_assistant_names.go `AnnotationAffinityAssistantName`; seen on
/// fixture `affinity/01-failed-taskrun-ws-run-*.json`).
pub const AFFINITY_ASSISTANT_ANNOTATION: &str = "pipeline.tekton.dev/affinity-assistant";

/// PipelineRun annotation that makes Tekton delete the PVCs it created from `volumeClaimTemplate`s
/// when the run is done (pkg/reconciler/pipelinerun/affinity_assistant.go `AutoCleanupPVCAnnotation`).
pub const AUTO_CLEANUP_PVC_ANNOTATION: &str = "tekton.dev/auto-cleanup-pvc";

/// Prefix of Tekton Chains' annotations (`chains.tekton.dev/signed`, …): removed on retry so the
/// final attempt is signed and attested again.
pub const CHAINS_ANNOTATION_PREFIX: &str = "chains.tekton.dev/";

/// Default of `timeouts.pipeline` when the run does not set it: the webhook defaults it from
/// `config-defaults` `default-timeout-minutes` (60); fixture README "the webhook defaults
/// `timeouts.pipeline: 1h0m0s`" (dag-failed/01-failed-pipelinerun-demo-run.json `spec.timeouts`).
pub const DEFAULT_PIPELINE_TIMEOUT_SECS: u64 = 3600;

//! Wire types of the `retry.tekton.dev` API: the `PipelineRunRetry` object, the `metav1.Status` errors,
//! and the identity of the caller as the server saw it.

mod status;
mod types;
mod user;

pub use status::{ApiError, Cause, StatusReason};
pub use types::*;
pub use user::UserInfo;

/// API group served by tekton-retry.
pub const GROUP: &str = "retry.tekton.dev";
/// The one served version.
pub const VERSION: &str = "v1alpha1";
/// `group/version`, as in `apiVersion`.
pub const API_VERSION: &str = "retry.tekton.dev/v1alpha1";
/// Kind of the subresource's request and response object.
pub const KIND: &str = "PipelineRunRetry";
/// The parent resource the subresource hangs off.
pub const RESOURCE: &str = "pipelineruns";
/// The subresource name.
pub const SUBRESOURCE: &str = "retry";
/// The read-only subresource with a run's attempt history.
pub const HISTORY_SUBRESOURCE: &str = "history";
/// Kind of the history subresource's answer.
pub const HISTORY_KIND: &str = "PipelineRunRetryHistory";
/// Name of the APIService object (`<version>.<group>`).
pub const APISERVICE_NAME: &str = "v1alpha1.retry.tekton.dev";
/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Labels written on a retried PipelineRun.
pub mod labels {
    /// `"true"` on a run that was retried: the recorder watches only runs with this label. A user
    /// can set it on any run; the recorder then finds no record for it and leaves it alone.
    pub const RETRIED: &str = "retry.tekton.dev/retried";
}

/// Annotation keys on a retried PipelineRun. `attempt`, `last-retry` and the original times are a
/// mirror of the server's own record, written by the server and never read back as input.
pub mod annotations {
    /// Current attempt number, `"2"` after the first retry. Absent: never retried.
    pub const ATTEMPT: &str = "retry.tekton.dev/attempt";
    /// JSON record of the latest retry (see `retry::record::LastRetry`).
    pub const LAST_RETRY: &str = "retry.tekton.dev/last-retry";
    /// `status.startTime` of attempt 1.
    pub const ORIGINAL_START_TIME: &str = "retry.tekton.dev/original-start-time";
    /// `status.completionTime` of attempt 1.
    pub const ORIGINAL_COMPLETION_TIME: &str = "retry.tekton.dev/original-completion-time";
    /// `"false"` on a Task, pipeline task or TaskRun: re-running it needs an acknowledgement.
    pub const IDEMPOTENT: &str = "retry.tekton.dev/idempotent";
    /// `"false"` on a PipelineRun or its Pipeline: the run may not be retried.
    pub const RETRYABLE: &str = "retry.tekton.dev/retryable";
}

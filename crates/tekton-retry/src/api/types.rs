use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{API_VERSION, KIND};

/// The request and response object of `POST …/pipelineruns/{name}/retry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineRunRetry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: RetryMeta,
    #[serde(default)]
    pub spec: RetrySpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RetryStatus>,
}

impl PipelineRunRetry {
    /// A response object for the run `namespace/name`.
    pub fn response(namespace: &str, name: &str, spec: RetrySpec, status: RetryStatus) -> Self {
        PipelineRunRetry {
            api_version: Some(API_VERSION.to_string()),
            kind: Some(KIND.to_string()),
            metadata: RetryMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            spec,
            status: Some(status),
        }
    }
}

/// The part of `ObjectMeta` a client may send; other metadata fields are accepted and ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What the caller asks for. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrySpec {
    /// Free text recorded on the run and in the Event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preconditions: Option<Preconditions>,
    /// What happens to finally tasks that already ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finally: Option<FinallyPolicy>,
    /// Succeeded tasks to run again too, with their dependents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_tasks: Vec<String>,
    /// Tasks marked non-idempotent that the caller accepts to re-run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acknowledge_non_idempotent: Vec<String>,
}

/// Refuse the retry unless these hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preconditions {
    /// The run's uid: refuse (409) if the run was deleted and re-created under the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The current attempt (1 = never retried): makes client replays safe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// `Rerun` (default): all finally tasks run again after the DAG. `Keep`: finally runs that
/// succeeded are kept and not run again; a failed, cancelled or timed-out one runs again (Tekton
/// would count it into the new outcome).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinallyPolicy {
    #[default]
    Rerun,
    Keep,
}

/// What the server did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStatus {
    /// The attempt this retry started (the first run is attempt 1).
    pub attempt: u32,
    pub dry_run: bool,
    #[serde(default, rename = "pipelineRunUID")]
    pub pipeline_run_uid: String,
    #[serde(default)]
    pub retried_tasks: Vec<RetriedTask>,
    #[serde(default)]
    pub preserved_tasks: Vec<String>,
    /// When this attempt started (`last-retry.start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_completion_time: Option<String>,
    /// Pipeline timeout budget left, as a Go duration (`41m10s`). Tekton measures it from the
    /// original `startTime`. Absent when the pipeline has no timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_timeout: Option<String>,
    /// Human-readable summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One pipeline task the retry runs again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetriedTask {
    pub name: String,
    /// Name of the child run that is replaced (absent for a task that never ran, e.g. skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_run: Option<String>,
    /// Its `Succeeded` reason (`Failed`, `StepFailed`, `TaskRunCancelled`, …) or the skip reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_reason: Option<String>,
}

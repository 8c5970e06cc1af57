//! The recorded `dag-failed` run (`tests/fixtures/tekton/dag-failed/`) as the plugin's tests use
//! it: its objects, the mirror annotations a retry leaves on it, a TaskRun caught running, and the
//! plan the server answers for it (b failed with StepFailed, c skipped, a kept).

use serde_json::{json, Value};
use std::collections::BTreeMap;

use tekton_retry::api::{annotations, RetriedTask, RetryStatus};
use tekton_retry::retry::record::history::ArchivedRun;

/// An object of the recording, by file name (`01-failed-pipelinerun-demo-run.json`, …).
pub fn fixture(file: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/tekton/dag-failed/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture JSON")
}

/// The annotations of attempt 2 on `run`: the attempt, the last retry (`record`, serialized) and
/// the original start and completion times of the recording.
pub fn annotate_attempt_2(run: &mut Value, record: &impl serde::Serialize) {
    let ann = run["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations");
    ann.insert(annotations::ATTEMPT.into(), json!("2"));
    ann.insert(
        annotations::LAST_RETRY.into(),
        json!(serde_json::to_string(record).expect("json")),
    );
    ann.insert(
        annotations::ORIGINAL_START_TIME.into(),
        json!("2026-11-26T19:27:10Z"),
    );
    ann.insert(
        annotations::ORIGINAL_COMPLETION_TIME.into(),
        json!("2026-11-26T19:27:19Z"),
    );
}

/// The TaskRuns a retry of the recording replaces (b failed, report ran), as the history
/// archives them (01-failed), each with `logs`.
pub fn archived_replaced_runs(logs: &BTreeMap<String, String>) -> Vec<ArchivedRun> {
    ["b", "report"]
        .iter()
        .map(|t| ArchivedRun {
            kind: "TaskRun".into(),
            name: format!("demo-run-{t}"),
            pipeline_task: t.to_string(),
            object: fixture(&format!("01-failed-taskrun-demo-run-{t}.json")),
            logs: logs.clone(),
        })
        .collect()
}

/// `taskrun` as it was while running: condition Unknown/Running, no completion time.
pub fn running(mut taskrun: Value) -> Value {
    taskrun["status"]["conditions"] =
        json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]);
    taskrun["status"]
        .as_object_mut()
        .expect("status")
        .remove("completionTime");
    taskrun
}

/// The plan's status for attempt 2: b (StepFailed) and c (skipped while stopping) re-run, a
/// kept, 59m20s of the timeout left; callers add the finally task and the times they show.
pub fn plan_status(dry_run: bool) -> RetryStatus {
    RetryStatus {
        attempt: 2,
        dry_run,
        pipeline_run_uid: "679e284d-e47e-4d0c-880e-4f1c5abad32c".into(),
        retried_tasks: vec![
            RetriedTask {
                name: "b".into(),
                previous_run: Some("demo-run-b".into()),
                previous_reason: Some("StepFailed".into()),
            },
            RetriedTask {
                name: "c".into(),
                previous_run: None,
                previous_reason: Some("PipelineRun was stopping".into()),
            },
        ],
        preserved_tasks: vec!["a".into()],
        original_start_time: Some("2026-11-26T19:27:10Z".into()),
        remaining_timeout: Some("59m20s".into()),
        ..Default::default()
    }
}

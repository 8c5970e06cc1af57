//! The status half of a reset: the JSON merge patch that makes Tekton run the run again.
//!
//! [`attempt_status_reset`] is the only way to build it: the executor writes what it returns for
//! the claimed attempt record, and the fixture tests build the record from a plan with
//! [`crate::retry::Plan::record`] and call the same function.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::retry::record::AttemptRecord;
use crate::tekton::{format_time, is_succeeded_condition};

/// The `status` object of the merge patch that resets `pipeline_run` for the attempt `record`
/// claims: the reset (`status_reset`) dropping the `childReferences` of every run the attempt replaces
/// before the reset (`replace_now`) **and** the dangling references of the tasks that run again
/// (`drop_references`). Tekton re-creates runs from the names left in `childReferences` and, for a
/// matrix task, gives the i-th listed name the i-th combination
/// (pipelinerunresolution.go `GetNamesOfTaskRuns`, pipelinerun.go `createTaskRuns`): a reference
/// left behind would re-create only the listed names, with the wrong parameters.
///
/// The runs replaced after `spec.status` is cleared (finally runs of a gracefully cancelled run)
/// still exist at this point: Tekton re-adds the reference of an existing owned run on its next
/// reconcile (`updatePipelineRunStatusFromChildRefs`), so their references stay, and Tekton
/// re-creates them under the same names once they are deleted (fixture childrefs v2).
pub fn attempt_status_reset(
    pipeline_run: &Value,
    record: &AttemptRecord,
    now: DateTime<Utc>,
) -> Value {
    let dropped: HashSet<&str> = record
        .replace_now
        .iter()
        .map(|r| r.name.as_str())
        .chain(record.drop_references.iter().map(String::as_str))
        .collect();
    status_reset(
        pipeline_run,
        |n| dropped.contains(n),
        now,
        &reset_message(record),
    )
}

/// The `Succeeded` message of the reset condition (Tekton replaces it with its own
/// `Tasks Completed: …` on the next reconcile).
pub fn reset_message(record: &AttemptRecord) -> String {
    format!(
        "Retry attempt {} started by {}: re-running {}",
        record.retry.attempt,
        record.retry.by,
        if record.retry.tasks.is_empty() {
            "the remaining tasks".to_string()
        } else {
            record.retry.tasks.join(", ")
        }
    )
}

/// The `status` object of a JSON merge patch that resets a done PipelineRun.
///
/// - `conditions`: the current list with the `Succeeded` condition replaced by
///   `Unknown`/`Running` (other conditions kept; appended when absent);
/// - `completionTime`, `finallyStartTime`, `skippedTasks`, `results`: removed (`null`), or Tekton
///   re-fails the run with the stale values (fixture flip-only: a bare condition flip is undone
///   39 ms later; dag-failed: this recipe worked);
/// - `childReferences`: the current list without the entries whose run `is_deleted` (matrix
///   children included); omitted when the run has none.
///
/// Nothing else is written, so `startTime` (Tekton measures the timeout from it), `pipelineSpec`,
/// `provenance` and fields this code does not know are left as they are by the merge.
fn status_reset(
    pipeline_run: &Value,
    is_deleted: impl Fn(&str) -> bool,
    now: DateTime<Utc>,
    message: &str,
) -> Value {
    let status = &pipeline_run["status"];
    let running = json!({
        "type": "Succeeded",
        "status": "Unknown",
        "reason": "Running",
        "message": message,
        "lastTransitionTime": format_time(now),
    });
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    match conditions.iter_mut().find(|c| is_succeeded_condition(c)) {
        Some(c) => *c = running,
        None => conditions.push(running),
    }
    let mut patch = Map::new();
    patch.insert("conditions".into(), Value::Array(conditions));
    for field in [
        "completionTime",
        "finallyStartTime",
        "skippedTasks",
        "results",
    ] {
        patch.insert(field.into(), Value::Null);
    }
    if let Some(refs) = status["childReferences"].as_array() {
        let kept: Vec<Value> = refs
            .iter()
            .filter(|r| r["name"].as_str().is_none_or(|n| !is_deleted(n)))
            .cloned()
            .collect();
        patch.insert("childReferences".into(), Value::Array(kept));
    }
    Value::Object(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::record::LastRetry;

    #[test]
    fn resets_condition_and_drops_deleted_references() {
        let run = json!({"status": {
            "startTime": "2026-11-26T19:27:10Z",
            "completionTime": "2026-11-26T19:27:19Z",
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Succeeded", "status": "False", "reason": "Failed"}
            ],
            "childReferences": [{"name": "r-a"}, {"name": "r-b"}, {"name": "r-m-0"}],
            "pipelineSpec": {"tasks": []},
            "somethingNew": 1
        }});
        // r-b is replaced now, r-m-0 is a dangling reference of a task that runs again.
        let record = AttemptRecord {
            retry: LastRetry {
                attempt: 2,
                by: "alice".into(),
                tasks: vec!["b".into(), "m".into()],
                ..Default::default()
            },
            replace_now: vec![crate::retry::record::RunRef::new("TaskRun", "r-b", "u-b")],
            drop_references: vec!["r-m-0".into()],
            ..Default::default()
        };
        let now = DateTime::parse_from_rfc3339("2026-11-26T20:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let p = attempt_status_reset(&run, &record, now);
        assert_eq!(
            p["conditions"][1]["message"],
            "Retry attempt 2 started by alice: re-running b, m"
        );
        assert_eq!(
            p["conditions"][0],
            json!({"type": "Ready", "status": "True"})
        );
        assert_eq!(p["conditions"][1]["status"], "Unknown");
        assert_eq!(p["conditions"][1]["reason"], "Running");
        assert_eq!(
            p["conditions"][1]["lastTransitionTime"],
            "2026-11-26T20:00:00Z"
        );
        assert_eq!(p["childReferences"], json!([{"name": "r-a"}]));
        assert!(p["completionTime"].is_null() && p.get("completionTime").is_some());
        let keys: Vec<&String> = p.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            [
                "conditions",
                "completionTime",
                "finallyStartTime",
                "skippedTasks",
                "results",
                "childReferences"
            ]
        );
    }

    #[test]
    fn appends_a_condition_when_none() {
        let p = status_reset(&json!({}), |_| false, Utc::now(), "m");
        assert_eq!(p["conditions"].as_array().map(Vec::len), Some(1));
        assert!(p.get("childReferences").is_none());
    }
}

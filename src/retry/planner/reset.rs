//! The status half of a reset: the JSON merge patch that makes Tekton run the run again.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::tekton::format_time;

/// The `status` object of a JSON merge patch that resets a done PipelineRun (DESIGN §2 step 5).
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
pub fn status_reset(
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
    match conditions
        .iter_mut()
        .find(|c| c["type"].as_str() == Some("Succeeded"))
    {
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
        let deleted = ["r-b", "r-m-0"];
        let now = DateTime::parse_from_rfc3339("2026-11-26T20:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let p = status_reset(&run, |n| deleted.contains(&n), now, "retry");
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

//! What a retry leaves behind (DESIGN §3): the claim annotations on the run and the attempt-history
//! ConfigMap. Pure builders; the executor writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::api::{annotations, LastRetry};

/// Most a history ConfigMap may hold (a ConfigMap is capped at 1 MiB by the API server).
pub const HISTORY_CAP_BYTES: usize = 900 * 1024;
/// Per step container, the tail of the log that is archived.
pub const LOG_TAIL_BYTES: usize = 64 * 1024;
/// Key of the attempt index in the history ConfigMap.
pub const INDEX_KEY: &str = "attempts.json";

/// Name of the history ConfigMap of a run.
pub fn history_name(run: &str) -> String {
    // ConfigMap names are DNS subdomains (253); PipelineRun names are too, so trim if needed.
    let suffix = "-retry-history";
    let max = 253 - suffix.len();
    let base: String = run.chars().take(max).collect();
    format!("{base}{suffix}")
}

/// The attempt the run is in: the `retry.tekton.dev/attempt` annotation, 1 when absent.
pub fn current_attempt(run: &Value) -> u32 {
    annotation(run, annotations::ATTEMPT)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The parsed `last-retry` annotation, if any.
pub fn last_retry(run: &Value) -> Option<LastRetry> {
    annotation(run, annotations::LAST_RETRY).and_then(|s| serde_json::from_str(s).ok())
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// The metadata merge patch that claims `record.attempt`, fenced by `resource_version`.
/// Writes the original times only when absent, and removes `remove` annotations.
pub fn claim_patch(
    run: &Value,
    resource_version: &str,
    record: &LastRetry,
    original_start: Option<&str>,
    original_completion: Option<&str>,
    remove: &[String],
) -> Value {
    let mut ann = Map::new();
    ann.insert(
        annotations::ATTEMPT.into(),
        json!(record.attempt.to_string()),
    );
    ann.insert(
        annotations::LAST_RETRY.into(),
        json!(serde_json::to_string(record).unwrap_or_default()),
    );
    if annotation(run, annotations::ORIGINAL_START_TIME).is_none() {
        if let Some(t) = original_start {
            ann.insert(annotations::ORIGINAL_START_TIME.into(), json!(t));
        }
    }
    if annotation(run, annotations::ORIGINAL_COMPLETION_TIME).is_none() {
        if let Some(t) = original_completion {
            ann.insert(annotations::ORIGINAL_COMPLETION_TIME.into(), json!(t));
        }
    }
    for key in remove {
        ann.insert(key.clone(), Value::Null);
    }
    json!({"metadata": {"resourceVersion": resource_version, "annotations": Value::Object(ann)}})
}

/// A metadata merge patch that rewrites only `last-retry`, fenced by `resource_version`.
pub fn last_retry_patch(resource_version: &str, record: &LastRetry) -> Value {
    json!({"metadata": {
        "resourceVersion": resource_version,
        "annotations": {annotations::LAST_RETRY: serde_json::to_string(record).unwrap_or_default()},
    }})
}

/// One archived child run with the log tails of its steps.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedRun {
    pub kind: String,
    pub name: String,
    pub pipeline_task: String,
    /// The full object as it was before deletion (unknown fields included).
    pub object: Value,
    /// container name → tail of its log (or why it could not be read).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, String>,
}

/// The runs of one attempt that a later attempt replaced.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttemptArchive {
    /// The attempt these runs belonged to.
    pub attempt: u32,
    /// When they were archived (the start of the next attempt).
    pub archived_at: String,
    pub runs: Vec<ArchivedRun>,
    /// Set when logs or objects had to be cut to fit the cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Key of an attempt's archive in the ConfigMap.
pub fn archive_key(attempt: u32) -> String {
    format!("attempt-{attempt}.json")
}

/// The attempt number of a data key, if it is an archive key.
fn key_attempt(key: &str) -> Option<u32> {
    key.strip_prefix("attempt-")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// Adds `archive` and `record` to the history ConfigMap's `data` (a JSON object of strings), keeps
/// the index sorted by attempt, and drops the oldest archives until the total fits
/// [`HISTORY_CAP_BYTES`]. Idempotent: archiving the same attempt twice keeps the first archive.
pub fn add_to_history(data: &mut Map<String, Value>, archive: &AttemptArchive, record: &LastRetry) {
    let key = archive_key(archive.attempt);
    if !data.contains_key(&key) {
        let mut archive = archive.clone();
        let mut text = serde_json::to_string(&archive).unwrap_or_default();
        if text.len() > HISTORY_CAP_BYTES / 2 {
            // Cut the logs first, then the objects' status, so one attempt never takes it all.
            archive.truncated = true;
            for run in &mut archive.runs {
                for log in run.logs.values_mut() {
                    let keep = crate::retry::cluster::tail_bytes(log, 4 * 1024).to_string();
                    *log = keep;
                }
            }
            text = serde_json::to_string(&archive).unwrap_or_default();
            if text.len() > HISTORY_CAP_BYTES / 2 {
                for run in &mut archive.runs {
                    if let Some(obj) = run.object.as_object_mut() {
                        obj.remove("spec");
                        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
                            status.retain(|k, _| {
                                matches!(
                                    k.as_str(),
                                    "conditions"
                                        | "podName"
                                        | "startTime"
                                        | "completionTime"
                                        | "results"
                                )
                            });
                        }
                    }
                }
                text = serde_json::to_string(&archive).unwrap_or_default();
            }
        }
        data.insert(key, Value::String(text));
    }

    let mut index: Vec<LastRetry> = data
        .get(INDEX_KEY)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    index.retain(|r| r.attempt != record.attempt);
    index.push(record.clone());
    index.sort_by_key(|r| r.attempt);
    data.insert(
        INDEX_KEY.into(),
        json!(serde_json::to_string(&index).unwrap_or_default()),
    );

    loop {
        let total: usize = data
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if total <= HISTORY_CAP_BYTES {
            break;
        }
        let oldest = data.keys().filter_map(|k| key_attempt(k)).min();
        match oldest {
            Some(a) => {
                data.remove(&archive_key(a));
            }
            None => break,
        }
    }
}

/// Writes `end` and `outcome` into the index entry of `attempt`. Returns whether it changed.
pub fn set_index_outcome(
    data: &mut Map<String, Value>,
    attempt: u32,
    end: &str,
    outcome: &str,
) -> bool {
    let mut index: Vec<LastRetry> = data
        .get(INDEX_KEY)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let Some(entry) = index.iter_mut().find(|r| r.attempt == attempt) else {
        return false;
    };
    if entry.end.as_deref() == Some(end) && entry.outcome.as_deref() == Some(outcome) {
        return false;
    }
    entry.end = Some(end.to_string());
    entry.outcome = Some(outcome.to_string());
    data.insert(
        INDEX_KEY.into(),
        json!(serde_json::to_string(&index).unwrap_or_default()),
    );
    true
}

/// The history ConfigMap for a run that has none yet, owned by the run so it goes with it.
pub fn new_history(namespace: &str, run: &str, run_uid: &str, data: Map<String, Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": history_name(run),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "tekton-retry", "tekton.dev/pipelineRun": run},
            "ownerReferences": [{
                "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": run, "uid": run_uid,
            }],
        },
        "data": Value::Object(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(attempt: u32) -> LastRetry {
        LastRetry {
            attempt,
            start: "2026-11-26T19:28:00Z".into(),
            by: "alice".into(),
            ..Default::default()
        }
    }

    #[test]
    fn attempt_defaults_to_one() {
        assert_eq!(current_attempt(&json!({"metadata": {}})), 1);
        let run = json!({"metadata": {"annotations": {annotations::ATTEMPT: "3"}}});
        assert_eq!(current_attempt(&run), 3);
    }

    #[test]
    fn claim_keeps_existing_original_times_and_removes_chains() {
        let run = json!({"metadata": {"annotations": {annotations::ORIGINAL_START_TIME: "T0"}}});
        let p = claim_patch(
            &run,
            "42",
            &record(2),
            Some("T1"),
            Some("T2"),
            &["chains.tekton.dev/signed".into()],
        );
        let ann = &p["metadata"]["annotations"];
        assert_eq!(p["metadata"]["resourceVersion"], "42");
        assert!(
            ann.get(annotations::ORIGINAL_START_TIME).is_none(),
            "already set: not rewritten"
        );
        assert_eq!(ann[annotations::ORIGINAL_COMPLETION_TIME], "T2");
        assert_eq!(ann["chains.tekton.dev/signed"], Value::Null);
        let lr: LastRetry =
            serde_json::from_str(ann[annotations::LAST_RETRY].as_str().expect("str"))
                .expect("json");
        assert_eq!(lr.attempt, 2);
    }

    #[test]
    fn history_drops_oldest_attempts_beyond_the_cap() {
        let mut data = Map::new();
        let big = "x".repeat(300 * 1024);
        for attempt in 1..=5 {
            let mut logs = BTreeMap::new();
            logs.insert("step-a".to_string(), big.clone());
            let archive = AttemptArchive {
                attempt,
                archived_at: "t".into(),
                runs: vec![ArchivedRun {
                    kind: "TaskRun".into(),
                    name: format!("r-{attempt}"),
                    logs,
                    ..Default::default()
                }],
                truncated: false,
            };
            add_to_history(&mut data, &archive, &record(attempt + 1));
        }
        let total: usize = data
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        assert!(total <= HISTORY_CAP_BYTES, "{total}");
        assert!(data.contains_key("attempt-5.json"), "newest kept");
        assert!(!data.contains_key("attempt-1.json"), "oldest dropped");
        let index: Vec<LastRetry> =
            serde_json::from_str(data[INDEX_KEY].as_str().expect("s")).expect("index");
        assert_eq!(
            index.iter().map(|r| r.attempt).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn an_oversized_attempt_is_truncated_not_dropped() {
        let mut data = Map::new();
        let mut logs = BTreeMap::new();
        logs.insert("step-a".to_string(), "y\n".repeat(400 * 1024));
        let archive = AttemptArchive {
            attempt: 1,
            archived_at: "t".into(),
            runs: vec![ArchivedRun {
                kind: "TaskRun".into(),
                name: "r".into(),
                logs,
                ..Default::default()
            }],
            truncated: false,
        };
        add_to_history(&mut data, &archive, &record(2));
        let kept: AttemptArchive =
            serde_json::from_str(data["attempt-1.json"].as_str().expect("s")).expect("a");
        assert!(kept.truncated);
        assert!(kept.runs[0].logs["step-a"].len() <= 4 * 1024);
    }

    #[test]
    fn the_index_gets_the_outcome_of_its_attempt() {
        let mut data = Map::new();
        let archive = AttemptArchive {
            attempt: 1,
            archived_at: "t".into(),
            runs: vec![],
            truncated: false,
        };
        add_to_history(&mut data, &archive, &record(2));
        assert!(set_index_outcome(&mut data, 2, "T9", "Succeeded"));
        assert!(
            !set_index_outcome(&mut data, 2, "T9", "Succeeded"),
            "idempotent"
        );
        assert!(
            !set_index_outcome(&mut data, 7, "T9", "Succeeded"),
            "no such attempt"
        );
        let index: Vec<LastRetry> =
            serde_json::from_str(data[INDEX_KEY].as_str().expect("s")).expect("index");
        assert_eq!(index[0].outcome.as_deref(), Some("Succeeded"));
        assert_eq!(index[0].end.as_deref(), Some("T9"));
    }

    #[test]
    fn history_name_fits_a_dns_subdomain() {
        assert_eq!(history_name("demo"), "demo-retry-history");
        assert!(history_name(&"a".repeat(253)).len() <= 253);
    }
}

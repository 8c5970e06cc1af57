//! The attempt history: per attempt, the child runs it replaced (whole objects, unknown fields
//! included) and the tail of their step logs, plus an index of every attempt's summary. Kept in a
//! ConfigMap beside the run's record in the server's namespace ([`super::store`]); served to users
//! by the `history` subresource. Pure builders; the store writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::LastRetry;

/// Most a history ConfigMap may hold (a ConfigMap is capped at 1 MiB by the API server).
pub const HISTORY_CAP_BYTES: usize = 900 * 1024;
/// Per step container, the tail of the log that is archived.
pub const LOG_TAIL_BYTES: usize = 64 * 1024;
/// Key of the attempt index in the history ConfigMap.
pub const INDEX_KEY: &str = "attempts.json";

/// One archived child run with the log tails of its steps.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedRun {
    pub kind: String,
    pub name: String,
    pub pipeline_task: String,
    /// The full object as it was before deletion (unknown fields included).
    pub object: Value,
    /// container name → tail of its log (or why it could not be read), for the run's last pod;
    /// `<pod>/<container>` for the pods of earlier automatic retries (`status.retriesStatus`).
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
        // Drop the oldest archive; stop when there is none left to drop (only the index).
        let oldest = data.keys().filter_map(|k| key_attempt(k)).min();
        match oldest {
            Some(a) if data.remove(&archive_key(a)).is_some() => {}
            _ => break,
        }
    }
}

/// Writes `summary` as the index entry of its attempt (its end, outcome and phase), adding it
/// when the index has none. Returns whether anything changed.
pub fn set_index_entry(data: &mut Map<String, Value>, summary: &LastRetry) -> bool {
    let mut index: Vec<LastRetry> = data
        .get(INDEX_KEY)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    match index.iter_mut().find(|r| r.attempt == summary.attempt) {
        Some(entry) if entry == summary => return false,
        Some(entry) => *entry = summary.clone(),
        None => {
            index.push(summary.clone());
            index.sort_by_key(|r| r.attempt);
        }
    }
    data.insert(
        INDEX_KEY.into(),
        json!(serde_json::to_string(&index).unwrap_or_default()),
    );
    true
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

    /// An archive of one TaskRun whose object carries `spec_pad` bytes in its spec and a status
    /// with fields the truncation keeps and one it drops, and one log of `log` bytes.
    fn sized_archive(spec_pad: usize, log: usize) -> AttemptArchive {
        let mut logs = BTreeMap::new();
        logs.insert("step-a".to_string(), "y\n".repeat(log / 2));
        AttemptArchive {
            attempt: 1,
            archived_at: "t".into(),
            runs: vec![ArchivedRun {
                kind: "TaskRun".into(),
                name: "r".into(),
                object: json!({
                    "metadata": {"name": "r"},
                    "spec": {"pad": "p".repeat(spec_pad)},
                    "status": {"podName": "r-pod", "steps": [{"name": "a"}]},
                }),
                logs,
                ..Default::default()
            }],
            truncated: false,
        }
    }

    fn archived(archive: &AttemptArchive) -> (AttemptArchive, usize) {
        let mut data = Map::new();
        add_to_history(&mut data, archive, &record(2));
        let text = data["attempt-1.json"].as_str().expect("s").to_string();
        (serde_json::from_str(&text).expect("archive"), text.len())
    }

    #[test]
    fn an_archive_of_exactly_half_the_cap_is_kept_whole_and_one_byte_more_is_cut() {
        let (_, base) = archived(&sized_archive(0, 1024));
        let fits = sized_archive(HISTORY_CAP_BYTES / 2 - base, 1024);
        let (kept, len) = archived(&fits);
        assert_eq!(len, HISTORY_CAP_BYTES / 2);
        assert_eq!(kept, fits, "kept as it was");
        let (cut, _) = archived(&sized_archive(HISTORY_CAP_BYTES / 2 - base + 1, 1024));
        assert!(cut.truncated);
    }

    #[test]
    fn cutting_the_logs_keeps_the_last_four_kib_of_each_and_the_object_whole_when_that_fits() {
        let (kept, _) = archived(&sized_archive(1024, 600 * 1024));
        assert!(kept.truncated);
        let log = &kept.runs[0].logs["step-a"];
        // Cut at a line start: within one line ("y\n") of 4 KiB.
        assert!(
            (4 * 1024 - 2..=4 * 1024).contains(&log.len()),
            "{}",
            log.len()
        );
        let object = &kept.runs[0].object;
        assert_eq!(object["spec"]["pad"].as_str().map(str::len), Some(1024));
        assert_eq!(
            object["status"]["steps"][0]["name"], "a",
            "status kept whole"
        );
    }

    #[test]
    fn an_object_too_large_after_its_logs_were_cut_loses_its_spec_and_most_of_its_status() {
        let (kept, _) = archived(&sized_archive(HISTORY_CAP_BYTES / 2, 600 * 1024));
        assert!(kept.truncated);
        let object = &kept.runs[0].object;
        assert!(object.get("spec").is_none(), "{object}");
        assert_eq!(object["status"], json!({"podName": "r-pod"}));
        assert_eq!(object["metadata"]["name"], "r");
    }

    #[test]
    fn an_object_of_exactly_half_the_cap_after_its_logs_were_cut_keeps_its_spec() {
        // The size once the logs are cut, with an empty spec pad, tells the pad that makes it
        // exactly half the cap.
        let (_, base) = archived(&sized_archive(0, 600 * 1024));
        let (kept, len) = archived(&sized_archive(HISTORY_CAP_BYTES / 2 - base, 600 * 1024));
        assert_eq!(len, HISTORY_CAP_BYTES / 2);
        assert!(kept.truncated && kept.runs[0].object.get("spec").is_some());
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
        let mut ended = record(2);
        ended.end = Some("T9".into());
        ended.outcome = Some("Succeeded".into());
        assert!(set_index_entry(&mut data, &ended));
        assert!(!set_index_entry(&mut data, &ended), "idempotent");
        ended.attempt = 7;
        assert!(set_index_entry(&mut data, &ended), "a new attempt is added");
        let index: Vec<LastRetry> =
            serde_json::from_str(data[INDEX_KEY].as_str().expect("s")).expect("index");
        assert_eq!(index[0].outcome.as_deref(), Some("Succeeded"));
        assert_eq!(index[0].end.as_deref(), Some("T9"));
    }
}

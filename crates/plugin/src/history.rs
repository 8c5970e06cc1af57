//! `kubectl retry history`: the attempts of a PipelineRun, from its `history` subresource
//! (`data.attempts.json` = the summary of every retry, `data.attempt-N.json` = the archived child
//! runs of attempt N) and the run's own annotations (`retry.tekton.dev/attempt`, `last-retry`,
//! `original-start-time`, `original-completion-time`), which mirror the server's record.
//!
//! The summary of the current attempt on the run may be newer than the history's (the recorder
//! writes the outcome to both), so the newer of the two wins; the outcome of an earlier attempt
//! without a recorded one is derived from the child runs its archive holds (the runs the next
//! attempt replaced).

use serde::Serialize;
use serde_json::{json, Value};
use tekton_retry::tekton::{ConditionStatus, ObjectView};

use crate::cli::HistoryFormat;
use crate::errors::Failure;
use crate::output::table;
use tekton_retry::api::annotations;
use tekton_retry::retry::record::history::{self as records, AttemptArchive};
use tekton_retry::retry::record::LastRetry;

/// One attempt of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: u32,
    /// Who started it (the retry's user; unknown for attempt 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// `Succeeded`, `Failed`, `Cancelled`, `PipelineRunTimeout`, `Running`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The tasks this attempt re-ran (empty for attempt 1: it ran everything).
    pub tasks: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `attempt-N.json` holds this attempt's replaced child runs and their log tails.
    pub archived: bool,
}

fn annotation<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    ObjectView::new(run).annotation(key)
}

/// `(status, reason)` of the run's `Succeeded` condition.
fn condition(obj: &Value) -> (Option<&str>, Option<&str>) {
    let view = ObjectView::new(obj);
    let status = match view.succeeded_status() {
        ConditionStatus::True => Some("True"),
        ConditionStatus::False => Some("False"),
        ConditionStatus::Unknown => None,
    };
    (status, view.reason())
}

use tekton_retry::retry::record::outcome_of;

/// The attempt the run shows (`retry.tekton.dev/attempt`, 1 when absent). Display only.
pub fn shown_attempt(run: &Value) -> u32 {
    annotation(run, annotations::ATTEMPT)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1)
}

/// The summary of the latest attempt the run shows (`retry.tekton.dev/last-retry`). Display only.
fn shown_last_retry(run: &Value) -> Option<LastRetry> {
    annotation(run, annotations::LAST_RETRY).and_then(|s| serde_json::from_str(s).ok())
}

/// What the archived runs of an attempt say about how it ended: `Cancelled` when a run was
/// cancelled (`TaskRunCancelled`) and none failed otherwise, `Failed` when any failed.
fn outcome_from_archive(archive: &AttemptArchive) -> Option<String> {
    let reasons: Vec<&str> = archive
        .runs
        .iter()
        .filter_map(|r| match condition(&r.object) {
            (Some("False"), reason) => Some(reason.unwrap_or("Failed")),
            _ => None,
        })
        .collect();
    if reasons.is_empty() {
        None
    } else if reasons.iter().all(|r| r.contains("Cancelled")) {
        Some("Cancelled".into())
    } else {
        Some("Failed".into())
    }
}

/// The attempts of `run`, oldest first, from the run and its history ConfigMap (`None`: it has none).
pub fn attempts(run: &Value, history: Option<&Value>) -> Vec<Attempt> {
    let data = history.and_then(|cm| cm.get("data"));
    let data_str = |key: &str| data.and_then(|d| d.get(key)).and_then(Value::as_str);
    let mut index: Vec<LastRetry> = data_str(records::INDEX_KEY)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let current = shown_attempt(run).max(index.iter().map(|r| r.attempt).max().unwrap_or(1));
    if let Some(latest) = shown_last_retry(run) {
        // The run's copy wins when it knows more (an outcome the index does not have yet).
        let indexed = index.iter().find(|r| r.attempt == latest.attempt);
        if indexed.is_none_or(|r| r.outcome.is_none() && latest.outcome.is_some()) {
            index.retain(|r| r.attempt != latest.attempt);
            index.push(latest);
        }
    }
    index.retain(|r| r.attempt > 1);
    index.sort_by_key(|r| r.attempt);

    let archive = |attempt: u32| -> Option<AttemptArchive> {
        data_str(&records::archive_key(attempt)).and_then(|s| serde_json::from_str(s).ok())
    };
    let run_outcome = outcome_of(run);
    let completion = ObjectView::new(run)
        .status_time_str("completionTime")
        .map(str::to_string);

    let mut rows = Vec::new();
    let never_retried = index.is_empty() && current <= 1;
    let first_outcome = if never_retried {
        run_outcome.clone().or_else(|| Some("Running".into()))
    } else {
        archive(1).as_ref().and_then(outcome_from_archive)
    };
    rows.push(Attempt {
        attempt: 1,
        by: None,
        started: annotation(run, annotations::ORIGINAL_START_TIME)
            .or_else(|| ObjectView::new(run).status_time_str("startTime"))
            .map(str::to_string),
        ended: if never_retried {
            completion.clone()
        } else {
            annotation(run, annotations::ORIGINAL_COMPLETION_TIME).map(str::to_string)
        },
        outcome: first_outcome,
        tasks: Vec::new(),
        reason: None,
        archived: archive(1).is_some(),
    });
    for r in index {
        let is_current = r.attempt == current;
        let outcome = r.outcome.clone().or_else(|| {
            if is_current {
                // Done again after this attempt's claim: the run's own condition is the outcome.
                let done_after_start = completion.as_deref().is_some_and(|c| c >= r.start.as_str());
                if done_after_start {
                    run_outcome.clone()
                } else {
                    Some("Running".into())
                }
            } else {
                archive(r.attempt).as_ref().and_then(outcome_from_archive)
            }
        });
        let ended = r.end.clone().or_else(|| {
            let done = is_current && completion.as_deref().is_some_and(|c| c >= r.start.as_str());
            if done {
                completion.clone()
            } else {
                None
            }
        });
        rows.push(Attempt {
            attempt: r.attempt,
            by: Some(r.by.clone()).filter(|b| !b.is_empty()),
            started: Some(r.start.clone()),
            ended,
            outcome,
            tasks: r.tasks.clone(),
            reason: r.reason.clone(),
            archived: archive(r.attempt).is_some(),
        });
    }
    rows
}

/// The history as a table, followed by how to read the archived runs and logs.
pub fn render_table(rows: &[Attempt], namespace: &str, name: &str) -> String {
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let mut cells = vec![vec![
        "ATTEMPT".to_string(),
        "BY".to_string(),
        "STARTED".to_string(),
        "ENDED".to_string(),
        "OUTCOME".to_string(),
        "TASKS".to_string(),
        "REASON".to_string(),
    ]];
    for r in rows {
        cells.push(vec![
            r.attempt.to_string(),
            dash(&r.by),
            dash(&r.started),
            dash(&r.ended),
            dash(&r.outcome),
            if r.attempt == 1 && r.tasks.is_empty() {
                "(all)".to_string()
            } else if r.tasks.is_empty() {
                "-".to_string()
            } else {
                r.tasks.join(",")
            },
            dash(&r.reason),
        ]);
    }
    let mut out = table(&cells, "");
    let archived: Vec<u32> = rows
        .iter()
        .filter(|r| r.archived)
        .map(|r| r.attempt)
        .collect();
    if let Some(first) = archived.first() {
        let list: Vec<String> = archived.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "\nThe runs each retry replaced, with their log tails, are archived (attempts {}):\n  kubectl get --raw {} | jq -r '.data[\"attempt-{first}.json\"]'\n",
            list.join(", "),
            crate::request::history_path(namespace, name),
        ));
    } else if rows.len() == 1 {
        out.push_str(&format!(
            "\npipelinerun {namespace}/{name} was never retried.\n"
        ));
    }
    out
}

/// The history as JSON or YAML: `{namespace, pipelineRun, attempts: [...]}`.
pub fn render(
    rows: &[Attempt],
    format: Option<HistoryFormat>,
    namespace: &str,
    name: &str,
) -> Result<String, Failure> {
    let doc = json!({"namespace": namespace, "pipelineRun": name, "attempts": rows});
    match format {
        None => Ok(render_table(rows, namespace, name)),
        Some(HistoryFormat::Json) => serde_json::to_string_pretty(&doc)
            .map(|s| s + "\n")
            .map_err(|e| Failure::new(format!("cannot print the history as JSON: {e}"))),
        Some(HistoryFormat::Yaml) => serde_yaml::to_string(&doc)
            .map_err(|e| Failure::new(format!("cannot print the history as YAML: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;
    use tekton_retry::retry::record::history::{add_to_history, ArchivedRun};

    use tekton_retry_test_support::dag_failed::{
        annotate_attempt_2, archived_replaced_runs, fixture as load,
    };

    fn record(attempt: u32, start: &str, tasks: &[&str]) -> LastRetry {
        LastRetry {
            attempt,
            start: start.into(),
            by: "alice".into(),
            reason: Some("registry back".into()),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    /// The dag-failed run after one retry as tekton-retry records it: 06-final with the mirror
    /// annotations, and the history the executor builds with `add_to_history` from the
    /// 01-failed TaskRuns it replaced (b and report).
    fn retried_once(outcome_recorded: bool) -> (Value, Value) {
        let mut run = load("06-final-pipelinerun-demo-run.json");
        let mut rec = record(2, "2026-11-26T19:27:50Z", &["b", "c", "report"]);
        let claimed = rec.clone();
        if outcome_recorded {
            rec.end = Some("2026-11-26T19:28:10Z".into());
            rec.outcome = Some("Succeeded".into());
        }
        annotate_attempt_2(&mut run, &rec);
        let archive = AttemptArchive {
            attempt: 1,
            archived_at: "2026-11-26T19:27:50Z".into(),
            runs: archived_replaced_runs(&Default::default()),
            truncated: false,
        };
        let mut data = Map::new();
        add_to_history(&mut data, &archive, &claimed);
        let cm = json!({"kind": "PipelineRunRetryHistory", "data": Value::Object(data)});
        (run, cm)
    }

    #[test]
    fn one_retry_two_rows() {
        let (run, cm) = retried_once(true);
        let rows = attempts(&run, Some(&cm));
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            Attempt {
                attempt: 1,
                by: None,
                started: Some("2026-11-26T19:27:10Z".into()),
                ended: Some("2026-11-26T19:27:19Z".into()),
                outcome: Some("Failed".into()), // b's archived TaskRun: False/StepFailed
                tasks: vec![],
                reason: None,
                archived: true,
            }
        );
        assert_eq!(rows[1].by.as_deref(), Some("alice"));
        assert_eq!(rows[1].outcome.as_deref(), Some("Succeeded"));
        assert_eq!(rows[1].ended.as_deref(), Some("2026-11-26T19:28:10Z"));
        assert_eq!(rows[1].tasks, vec!["b", "c", "report"]);
        assert!(!rows[1].archived);
        assert_eq!(
            render_table(&rows, "dag-failed", "demo-run"),
            "ATTEMPT   BY      STARTED                ENDED                  OUTCOME     TASKS        REASON\n\
             1         -       2026-11-26T19:27:10Z   2026-11-26T19:27:19Z   Failed      (all)        -\n\
             2         alice   2026-11-26T19:27:50Z   2026-11-26T19:28:10Z   Succeeded   b,c,report   registry back\n\
             \n\
             The runs each retry replaced, with their log tails, are archived (attempts 1):\n\
             \x20 kubectl get --raw /apis/retry.tekton.dev/v1alpha1/namespaces/dag-failed/pipelineruns/demo-run/history | jq -r '.data[\"attempt-1.json\"]'\n"
        );
    }

    #[test]
    fn unrecorded_outcome_of_the_current_attempt_comes_from_the_run() {
        let (run, cm) = retried_once(false);
        let rows = attempts(&run, Some(&cm));
        assert_eq!(rows[1].outcome.as_deref(), Some("Succeeded"));
        assert_eq!(rows[1].ended.as_deref(), Some("2026-11-26T19:28:10Z"));
        // Still running: no completionTime after the claim.
        let mut running = run.clone();
        running["status"]["completionTime"] = json!("2026-11-26T19:27:19Z");
        let rows = attempts(&running, Some(&cm));
        assert_eq!(rows[1].outcome.as_deref(), Some("Running"));
        assert_eq!(rows[1].ended, None);
    }

    #[test]
    fn never_retried_run_has_one_row_from_its_status() {
        let run = load("01-failed-pipelinerun-demo-run.json");
        let rows = attempts(&run, None);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].outcome.as_deref(), Some("Failed"));
        assert_eq!(rows[0].ended.as_deref(), Some("2026-11-26T19:27:19Z"));
        let text = render_table(&rows, "dag-failed", "demo-run");
        assert!(text.ends_with("\npipelinerun dag-failed/demo-run was never retried.\n"));
    }

    #[test]
    fn history_as_json() {
        let (run, cm) = retried_once(true);
        let rows = attempts(&run, Some(&cm));
        let text =
            render(&rows, Some(HistoryFormat::Json), "dag-failed", "demo-run").expect("json");
        let v: Value = serde_json::from_str(&text).expect("valid");
        assert_eq!(v["pipelineRun"], "demo-run");
        assert_eq!(v["attempts"][1]["attempt"], 2);
        assert_eq!(v["attempts"][1]["outcome"], "Succeeded");
        assert_eq!(v["attempts"][0]["archived"], true);
        let yaml =
            render(&rows, Some(HistoryFormat::Yaml), "dag-failed", "demo-run").expect("yaml");
        let y: Value = serde_yaml::from_str(&yaml).expect("valid");
        assert_eq!(y, v);
    }

    #[test]
    fn cancelled_archive_reads_as_cancelled() {
        let mut tr = load("01-failed-taskrun-demo-run-b.json");
        tr["status"]["conditions"][0]["reason"] = json!("TaskRunCancelled");
        let archive = AttemptArchive {
            attempt: 1,
            archived_at: "t".into(),
            runs: vec![ArchivedRun {
                object: tr,
                ..Default::default()
            }],
            truncated: false,
        };
        assert_eq!(outcome_from_archive(&archive).as_deref(), Some("Cancelled"));
    }
}

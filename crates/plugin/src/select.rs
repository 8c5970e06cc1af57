//! `--last-failed`: which of a pipeline's runs to retry (pure).

use serde_json::Value;
use tekton_retry::tekton::{ConditionStatus, ObjectView};

/// When a run ended, else when it was created (RFC 3339 in UTC, so the text orders by time).
fn ended_at(run: &Value) -> &str {
    let view = ObjectView::new(run);
    view.status_time_str("completionTime")
        .or_else(|| run["metadata"]["creationTimestamp"].as_str())
        .unwrap_or("")
}

/// The name of the run that ended last among those that failed or were cancelled (`Succeeded`
/// is `False`: Tekton's `Failed`, `PipelineRunTimeout`, `Cancelled`, `StoppedRunFinally` …).
/// Runs still going or succeeded are never picked.
pub fn last_failed(runs: &[Value]) -> Option<String> {
    runs.iter()
        .filter(|r| ObjectView::new(r).succeeded_status() == ConditionStatus::False)
        .max_by(|a, b| {
            ended_at(a)
                .cmp(ended_at(b))
                .then_with(|| name(a).cmp(name(b)))
        })
        .map(|r| name(r).to_owned())
}

fn name(run: &Value) -> &str {
    ObjectView::new(run).name()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(name: &str, status: &str, reason: &str, done: Option<&str>) -> Value {
        json!({
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {
                "conditions": [{"type": "Succeeded", "status": status, "reason": reason}],
                "completionTime": done,
            }
        })
    }

    #[test]
    fn picks_the_run_that_failed_or_was_cancelled_last() {
        let runs = vec![
            run("old-fail", "False", "Failed", Some("2026-01-01T10:00:00Z")),
            run(
                "cancelled",
                "False",
                "Cancelled",
                Some("2026-01-01T12:00:00Z"),
            ),
            run(
                "newest-ok",
                "True",
                "Succeeded",
                Some("2026-01-01T13:00:00Z"),
            ),
            run("running", "Unknown", "Running", None),
        ];
        assert_eq!(last_failed(&runs).as_deref(), Some("cancelled"));
        let more = [
            runs.clone(),
            vec![run(
                "timeout",
                "False",
                "PipelineRunTimeout",
                Some("2026-01-01T12:30:00Z"),
            )],
        ]
        .concat();
        assert_eq!(last_failed(&more).as_deref(), Some("timeout"));
    }

    #[test]
    fn nothing_failed_means_no_pick() {
        let runs = vec![
            run("ok", "True", "Succeeded", Some("2026-01-01T10:00:00Z")),
            run("running", "Unknown", "Running", None),
        ];
        assert_eq!(last_failed(&runs), None);
        assert_eq!(last_failed(&[]), None);
    }
}

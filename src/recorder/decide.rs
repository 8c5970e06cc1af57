//! What the recorder does about one PipelineRun. Pure: the run and the clock in, an action out.

use crate::tekton::parse_time as parse;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::LastRetry;
use crate::retry::executor::{phase, succeeded};
use crate::retry::records;

/// The recorder's decision for a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The attempt ended: write `end` and `outcome` (once).
    RecordOutcome {
        record: LastRetry,
        end: String,
        outcome: String,
    },
    /// The claim was interrupted before the reset and is older than the grace period.
    RollForward {
        record: LastRetry,
    },
    Nothing,
}

/// The outcome word recorded for a done run: `Succeeded` or the `Succeeded` condition's reason.
pub fn outcome_of(run: &Value) -> Option<String> {
    match succeeded(run) {
        (Some("True"), _) => Some("Succeeded".to_string()),
        (Some("False"), reason) => Some(reason.unwrap_or("Failed").to_string()),
        _ => None,
    }
}

/// Decides for `run` at `now`.
pub fn decide(run: &Value, now: DateTime<Utc>, grace: Duration) -> Action {
    let Some(record) = records::last_retry(run) else {
        return Action::Nothing;
    };
    if record.attempt != records::current_attempt(run) || record.end.is_some() {
        return Action::Nothing;
    }
    let Some(start) = parse(&record.start) else {
        return Action::Nothing;
    };
    let completion = run
        .pointer("/status/completionTime")
        .and_then(Value::as_str)
        .and_then(parse);
    let outcome = outcome_of(run);
    // The claim is written while the run is done and the reset clears completionTime, so a
    // completion after the claim's start is this attempt's end.
    if let (Some(end), Some(outcome)) = (completion, outcome.clone()) {
        if end >= start && !(end == start && record.phase.as_deref() == Some(phase::CLAIMED)) {
            let end = run
                .pointer("/status/completionTime")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            return Action::RecordOutcome {
                record,
                end,
                outcome,
            };
        }
    }
    if record.phase.as_deref() == Some(phase::CLAIMED) && outcome.is_some() {
        let age = now
            .signed_duration_since(start)
            .to_std()
            .unwrap_or_default();
        if age >= grace {
            return Action::RollForward { record };
        }
    }
    Action::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::annotations;
    use serde_json::json;

    fn run(record: &LastRetry, cond: Option<(&str, &str)>, completion: Option<&str>) -> Value {
        let mut status = json!({});
        if let Some((s, r)) = cond {
            status["conditions"] = json!([{"type": "Succeeded", "status": s, "reason": r}]);
        }
        if let Some(c) = completion {
            status["completionTime"] = json!(c);
        }
        json!({
            "metadata": {"annotations": {
                annotations::ATTEMPT: record.attempt.to_string(),
                annotations::LAST_RETRY: serde_json::to_string(record).expect("json"),
            }},
            "status": status,
        })
    }

    fn record(phase: &str) -> LastRetry {
        LastRetry {
            attempt: 2,
            start: "2026-11-26T20:00:00Z".into(),
            by: "alice".into(),
            phase: Some(phase.into()),
            ..Default::default()
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse(s).expect("time")
    }

    #[test]
    fn success_after_the_retry_is_recorded() {
        let r = run(
            &record(phase::STARTED),
            Some(("True", "Succeeded")),
            Some("2026-11-26T20:01:00Z"),
        );
        match decide(&r, at("2026-11-26T20:02:00Z"), Duration::from_secs(30)) {
            Action::RecordOutcome { end, outcome, .. } => {
                assert_eq!(end, "2026-11-26T20:01:00Z");
                assert_eq!(outcome, "Succeeded");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_second_failure_is_recorded_with_its_reason() {
        let r = run(
            &record(phase::STARTED),
            Some(("False", "Failed")),
            Some("2026-11-26T20:01:00Z"),
        );
        assert!(
            matches!(decide(&r, at("2026-11-26T20:02:00Z"), Duration::from_secs(30)),
            Action::RecordOutcome { ref outcome, .. } if outcome == "Failed")
        );
    }

    #[test]
    fn running_or_already_recorded_runs_are_left_alone() {
        let r = run(&record(phase::STARTED), Some(("Unknown", "Running")), None);
        assert_eq!(
            decide(&r, at("2026-11-26T20:02:00Z"), Duration::from_secs(30)),
            Action::Nothing
        );
        let mut done = record(phase::STARTED);
        done.end = Some("2026-11-26T20:01:00Z".into());
        let r = run(
            &done,
            Some(("True", "Succeeded")),
            Some("2026-11-26T20:01:00Z"),
        );
        assert_eq!(
            decide(&r, at("2026-11-26T20:02:00Z"), Duration::from_secs(30)),
            Action::Nothing
        );
        assert_eq!(
            decide(
                &json!({"metadata": {}}),
                at("2026-11-26T20:02:00Z"),
                Duration::from_secs(1)
            ),
            Action::Nothing
        );
    }

    #[test]
    fn an_interrupted_claim_is_rolled_forward_only_after_the_grace_period() {
        // Still done with the old failure, completed before the claim.
        let r = run(
            &record(phase::CLAIMED),
            Some(("False", "Failed")),
            Some("2026-11-26T19:59:00Z"),
        );
        assert_eq!(
            decide(&r, at("2026-11-26T20:00:10Z"), Duration::from_secs(30)),
            Action::Nothing
        );
        assert!(matches!(
            decide(&r, at("2026-11-26T20:00:31Z"), Duration::from_secs(30)),
            Action::RollForward { .. }
        ));
    }
}

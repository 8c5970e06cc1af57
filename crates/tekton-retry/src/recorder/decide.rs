//! What the recorder does about one retried PipelineRun. Pure: the run (as the watch cache keeps
//! it), its attempt record and the clock in, an action out. The record decides; the run's
//! annotations are only compared with the mirror the record should show, never believed.

use crate::tekton::parse_time as parse;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::retry::record::{mirror, outcome_of, shows_old_outcome, AttemptRecord, Phase};
use crate::tekton::ObjectView;

/// The recorder's decision for a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// The attempt ended: write `end` and `outcome` into the record (once), then the mirror.
    RecordOutcome {
        end: String,
        outcome: String,
    },
    /// The claim was interrupted before the reset and is older than the grace period.
    RollForward,
    /// The attempt started, but the run shows its old outcome again (a stale controller write
    /// after the request answered): reset it again.
    Repair,
    /// The run runs the attempt but still carries annotations of other controllers the attempt
    /// removes (Tekton's `syncMetadata` wrote them back).
    RemoveAnnotations,
    /// The run's annotations do not show the record (Tekton's `syncMetadata` wrote an older copy
    /// back, or someone edited them): write the mirror again.
    ReassertMirror,
    Nothing,
}

/// Whether `run` is a child of another PipelineRun (pipelines in pipelines). Tekton copies the
/// parent's annotations and labels onto it (`createChildPipelineRun`), so it looks retried; it is
/// not the run that was.
pub fn is_child_pipelinerun(run: &Value) -> bool {
    ObjectView::new(run)
        .owner_references()
        .iter()
        .any(|o| o.get("kind").and_then(Value::as_str) == Some("PipelineRun"))
}

/// Decides for `run`, whose record is `record`, at `now`.
pub fn decide(run: &Value, record: &AttemptRecord, now: DateTime<Utc>, grace: Duration) -> Action {
    let view = ObjectView::new(run);
    if is_child_pipelinerun(run)
        || !view.has_uid(&record.uid)
        || view.namespace() != record.namespace
        || view.name() != record.name
    {
        return Action::Nothing;
    }
    let phase = record.phase();
    let outcome = outcome_of(run);
    if phase != Phase::Ended && record.retry.end.is_none() {
        if let Some(start) = parse(&record.retry.start) {
            let completion = view.status_time_str("completionTime");
            // The claim is written while the run is done and the reset clears completionTime, so
            // a completion after the claim's start is this attempt's end.
            if let (Some(end_text), Some(outcome)) = (completion, outcome.clone()) {
                if let Some(end) = parse(end_text) {
                    if end > start || (end == start && phase == Phase::Started) {
                        return Action::RecordOutcome {
                            end: end_text.to_string(),
                            outcome,
                        };
                    }
                }
            }
            if phase == Phase::Started && outcome.is_some() {
                // Only a completion before the claim is surely old: `new_child: true`.
                if shows_old_outcome(run, record, true) {
                    return Action::Repair;
                }
            }
            if phase == Phase::Claimed && outcome.is_some() {
                let age = now
                    .signed_duration_since(start)
                    .to_std()
                    .unwrap_or_default();
                if age >= grace {
                    return Action::RollForward;
                }
            }
        }
    }
    if phase == Phase::Started && outcome.is_none() && mirror::removal_patch(run, record).is_some()
    {
        return Action::RemoveAnnotations;
    }
    if !mirror::matches(run, record) {
        return Action::ReassertMirror;
    }
    Action::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::record::LastRetry;
    use serde_json::json;

    fn record(phase: Phase) -> AttemptRecord {
        AttemptRecord {
            namespace: "ns".into(),
            name: "r".into(),
            uid: "u".into(),
            retry: LastRetry {
                attempt: 2,
                phase: Some(phase),
                start: "2026-11-26T20:00:00Z".into(),
                by: "alice".into(),
                ..Default::default()
            },
            remove_annotations: vec!["chains.tekton.dev/signed".into()],
            ..Default::default()
        }
    }

    /// The run as the record's mirror shows it, with this `Succeeded` condition (status,
    /// reason) and completion time.
    fn run(record: &AttemptRecord, cond: (&str, &str), completion: Option<&str>) -> Value {
        let mut v = json!({"metadata": {"name": "r", "namespace": "ns", "uid": "u", "resourceVersion": "3"}});
        json_patch::merge(&mut v, &mirror::patch(record, None));
        let (status, reason) = cond;
        v["status"]["conditions"] =
            json!([{"type": "Succeeded", "status": status, "reason": reason}]);
        if let Some(c) = completion {
            v["status"]["completionTime"] = json!(c);
        }
        v
    }

    fn running(record: &AttemptRecord) -> Value {
        run(record, ("Unknown", "Running"), None)
    }

    /// The run done with this `Succeeded` condition (status, reason) at `completion`.
    fn done(record: &AttemptRecord, cond: (&str, &str), completion: &str) -> Value {
        run(record, cond, Some(completion))
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse(s).expect("time")
    }

    const LATER: &str = "2026-11-26T20:02:00Z";

    /// What the recorder decides at `now` with a grace period of 30s.
    fn decided(run: &Value, record: &AttemptRecord, now: &str) -> Action {
        decide(run, record, at(now), Duration::from_secs(30))
    }

    #[test]
    fn success_after_the_retry_is_recorded() {
        let r = record(Phase::Started);
        let v = done(&r, ("True", "Succeeded"), "2026-11-26T20:01:00Z");
        assert_eq!(
            decided(&v, &r, LATER),
            Action::RecordOutcome {
                end: "2026-11-26T20:01:00Z".into(),
                outcome: "Succeeded".into()
            }
        );
        let v = done(&r, ("False", "Failed"), "2026-11-26T20:01:00Z");
        assert!(matches!(
            decided(&v, &r, LATER),
            Action::RecordOutcome { ref outcome, .. } if outcome == "Failed"
        ));
    }

    #[test]
    fn running_or_ended_runs_whose_mirror_is_right_are_left_alone() {
        let r = record(Phase::Started);
        let v = running(&r);
        assert_eq!(decided(&v, &r, LATER), Action::Nothing);
        let mut ended = record(Phase::Ended);
        ended.retry.end = Some("2026-11-26T20:01:00Z".into());
        ended.retry.outcome = Some("Succeeded".into());
        let v = done(&ended, ("True", "Succeeded"), "2026-11-26T20:01:00Z");
        assert_eq!(decided(&v, &ended, LATER), Action::Nothing);
    }

    #[test]
    fn an_interrupted_claim_is_rolled_forward_only_after_the_grace_period() {
        let r = record(Phase::Claimed);
        // Still done with the old failure, completed before the claim.
        let v = done(&r, ("False", "Failed"), "2026-11-26T19:59:00Z");
        assert_eq!(decided(&v, &r, "2026-11-26T20:00:10Z"), Action::Nothing);
        assert_eq!(decided(&v, &r, "2026-11-26T20:00:31Z"), Action::RollForward);
    }

    #[test]
    fn a_started_attempt_flipped_back_to_the_old_outcome_is_repaired() {
        let r = record(Phase::Started);
        let v = done(&r, ("False", "Cancelled"), "2026-11-26T19:59:00Z");
        assert_eq!(decided(&v, &r, LATER), Action::Repair);
    }

    #[test]
    fn a_reverted_mirror_is_written_again() {
        let r = record(Phase::Started);
        let mut v = running(&r);
        // syncMetadata put the claim-time copy back.
        let mut claimed = r.clone();
        claimed.retry.phase = Some(Phase::Claimed);
        json_patch::merge(&mut v, &mirror::patch(&claimed, None));
        assert_eq!(decided(&v, &r, LATER), Action::ReassertMirror);
    }

    #[test]
    fn chains_annotations_written_back_while_running_are_removed_again() {
        let r = record(Phase::Started);
        let mut v = running(&r);
        v["metadata"]["annotations"]["chains.tekton.dev/signed"] = json!("true");
        assert_eq!(decided(&v, &r, LATER), Action::RemoveAnnotations);
        // Once done, Chains signs the new outcome: its annotation is left alone.
        let mut done = done(&r, ("True", "Succeeded"), "2026-11-26T20:01:00Z");
        done["metadata"]["annotations"]["chains.tekton.dev/signed"] = json!("true");
        assert!(matches!(
            decided(&done, &r, LATER),
            Action::RecordOutcome { .. }
        ));
    }

    #[test]
    fn another_run_or_a_child_pipelinerun_is_not_acted_on() {
        let r = record(Phase::Claimed);
        let mut other = done(&r, ("False", "Failed"), "2026-11-26T19:59:00Z");
        other["metadata"]["uid"] = json!("someone-else");
        assert_eq!(
            decide(&other, &r, at(LATER), Duration::from_secs(1)),
            Action::Nothing
        );
        let mut child = done(&r, ("False", "Failed"), "2026-11-26T19:59:00Z");
        child["metadata"]["ownerReferences"] =
            json!([{"kind": "PipelineRun", "name": "parent", "uid": "p", "controller": true}]);
        assert_eq!(
            decide(&child, &r, at(LATER), Duration::from_secs(1)),
            Action::Nothing
        );
    }
}

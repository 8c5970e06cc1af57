//! The attempt record: the one authoritative account of a run's retries.
//!
//! A run's annotations can be written by anyone who may patch PipelineRuns, and Tekton's
//! `syncMetadata` (pkg/reconciler/pipelinerun/pipelinerun.go, deferred in every reconcile) writes
//! the reconcile-start copy of them back. So nothing that decides what is deleted lives there. The
//! record lives in a ConfigMap in the server's own namespace, named after the run's uid, that only
//! the server's ServiceAccount may write; every change to it is fenced by its resourceVersion.
//! The run's `retry.tekton.dev/*` annotations are a [`mirror`] of it for people and dashboards,
//! written by the server and never read back as input.
//!
//! This module owns the record's types and rules; [`store`] reads and writes it, [`history`] is
//! the archive of replaced runs kept beside it.

pub mod history;
pub mod mirror;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::FinallyPolicy;
use crate::tekton::ObjectView;

pub use store::RecordStore;

/// Where an attempt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The attempt is claimed; replaced runs may be partly archived or deleted, the status is not
    /// reset yet. The next request or the recorder completes it ("roll forward").
    Claimed,
    /// The status was reset and Tekton took the run up again.
    Started,
    /// The attempt ended; `end` and `outcome` are set.
    Ended,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Claimed => "claimed",
            Phase::Started => "started",
            Phase::Ended => "ended",
        }
    }
}

/// One child run an attempt replaces, by kind, name and uid. The uid is what makes it this run:
/// a run re-created under the same name has another uid and is never touched.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunRef {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl RunRef {
    pub fn new(kind: &str, name: &str, uid: &str) -> Self {
        RunRef {
            kind: kind.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
        }
    }
}

impl std::fmt::Display for RunRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} (uid {})", self.kind, self.name, self.uid)
    }
}

/// The summary of an attempt shown in the `retry.tekton.dev/last-retry` annotation and the history
/// index (a mirror of the server's record; never read back as input).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastRetry {
    pub attempt: u32,
    /// RFC 3339 time the claim was written.
    pub start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// `Succeeded`, `Failed`, `Cancelled`, … filled by the recorder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub tasks: Vec<String>,
    /// Where the attempt is: `claimed` (the server is replacing runs), `started` (Tekton runs
    /// the attempt), `ended` (`end` and `outcome` are set). Absent in summaries written before
    /// phases were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Finally policy of this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finally: Option<FinallyPolicy>,
}

/// The state of a run's latest attempt, as only the server writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    /// The run this record is about. The record's name carries the uid; the namespace and name
    /// say where the run is (checked against the run on every read).
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The attempt claimed last (2 after the first retry): its number, start, end, outcome, who
    /// asked, why, the tasks it runs again, its phase and finally policy. A record written before
    /// this field was shared with the summary carries `"phase": null` and keeps its fields in
    /// another order; it reads the same.
    #[serde(flatten)]
    pub retry: LastRetry,
    /// Child runs deleted before the status reset.
    #[serde(default)]
    pub replace_now: Vec<RunRef>,
    /// Child runs deleted only after `spec.status` is cleared (finally runs of a gracefully
    /// cancelled or stopped run).
    #[serde(default)]
    pub replace_after_spec_clear: Vec<RunRef>,
    /// `status.childReferences` names the reset drops besides the replaced runs' (dangling ones of
    /// tasks that run again).
    #[serde(default)]
    pub drop_references: Vec<String>,
    /// Annotations of other controllers removed once the run is running again
    /// (`chains.tekton.dev/*`, so Tekton Chains signs the new outcome).
    #[serde(default)]
    pub remove_annotations: Vec<String>,
    /// `status.startTime` and `status.completionTime` of attempt 1.
    #[serde(flatten)]
    pub original: OriginalTimes,
}

/// `status.startTime` and `status.completionTime` of a run's attempt 1: what the run showed before
/// its first retry, kept for every later attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginalTimes {
    #[serde(
        rename = "originalStartTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<String>,
    #[serde(
        rename = "originalCompletionTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub completion: Option<String>,
}

impl AttemptRecord {
    pub fn phase(&self) -> Phase {
        self.retry.phase.unwrap_or(Phase::Claimed)
    }

    /// Every replaced run, in the order they are deleted.
    pub fn replaced(&self) -> impl Iterator<Item = &RunRef> {
        self.replace_now
            .iter()
            .chain(self.replace_after_spec_clear.iter())
    }

    /// Whether `uid` is one of the runs this attempt replaces.
    pub fn replaces_uid(&self, uid: &str) -> bool {
        !uid.is_empty() && self.replaced().any(|r| r.uid == uid)
    }

    /// Whether `child` was created for this attempt: it has the name of a replaced run and another
    /// uid (Tekton re-created it). Kept runs and replaced runs not yet re-created are not new.
    pub fn is_new(&self, child: &Value) -> bool {
        let child = ObjectView::new(child);
        let (name, uid) = (child.name(), child.uid());
        let mut same_name = self.replaced().filter(|r| r.name == name).peekable();
        same_name.peek().is_some() && same_name.all(|r| r.uid != uid)
    }

    /// The user-facing summary written to the run's `retry.tekton.dev/last-retry` annotation and
    /// the history index.
    pub fn summary(&self) -> LastRetry {
        LastRetry {
            phase: Some(self.phase()),
            ..self.retry.clone()
        }
    }
}

/// The attempt a run is in: the record's, 1 when it has never been retried.
pub fn current_attempt(record: Option<&AttemptRecord>) -> u32 {
    record.map_or(1, |r| r.retry.attempt)
}

/// The outcome word recorded for a done run: `Succeeded`, or the `Succeeded` condition's reason.
pub fn outcome_of(run: &Value) -> Option<String> {
    let view = ObjectView::new(run);
    match view.succeeded_status() {
        crate::tekton::ConditionStatus::True => Some("Succeeded".to_string()),
        crate::tekton::ConditionStatus::False => {
            Some(view.reason().unwrap_or("Failed").to_string())
        }
        crate::tekton::ConditionStatus::Unknown => None,
    }
}

/// Whether a done run still shows the outcome of an earlier attempt (never reset, or a stale
/// controller write after the reset — informer lag, race 2 of fixtures/cancelled) rather than this
/// attempt's. The reset removes `completionTime` and Tekton sets a new one when the run ends
/// (`MarkSucceeded`/`MarkFailed`), so an earlier completion is an earlier outcome; in the claim's
/// own second (times have one-second precision) a run Tekton re-created for this attempt decides.
///
/// A cancel that `spec.status` no longer asks for is always an earlier outcome, whatever its time:
/// Tekton writes `False/Cancelled "PipelineRun \"x\" was cancelled"` only while `spec.status` is
/// `Cancelled`, `CancelledRunFinally` or `StoppedRunFinally` (cancel.go `cancelPipelineRun`, state.go
/// `GetPipelineConditionStatus`), so after the attempt cleared it that status can only come from a
/// reconcile that read the run before (race 2 of fixtures/cancelled), and its completion time may
/// be a second or more after the claim's.
pub fn shows_old_outcome(run: &Value, record: &AttemptRecord, new_child: bool) -> bool {
    if shows_cancel_not_asked_for(run) {
        return true;
    }
    let completion = ObjectView::new(run).status_time("completionTime");
    let start = crate::tekton::parse_time(&record.retry.start);
    match (completion, start) {
        (Some(c), Some(s)) if c < s => true,
        (Some(c), Some(s)) if c > s => false,
        _ => !new_child,
    }
}

/// `False/Cancelled "PipelineRun \"<name>\" was cancelled"` while `spec.status` asks for no cancel
/// or stop.
fn shows_cancel_not_asked_for(run: &Value) -> bool {
    let view = ObjectView::new(run);
    let whole_run_cancel = format!("PipelineRun \"{}\" was cancelled", view.name());
    let asked = matches!(
        view.spec_status(),
        Some("Cancelled" | "CancelledRunFinally" | "StoppedRunFinally")
    );
    view.succeeded_status() == crate::tekton::ConditionStatus::False
        && view.reason() == Some("Cancelled")
        && view.message() == Some(whole_run_cancel.as_str())
        && !asked
}

/// Whether `child` is controlled by the run with uid `run_uid`: its controller ownerReference
/// names that uid. Tekton creates every child run with exactly that reference (`createTaskRun`,
/// pkg/reconciler/pipelinerun/pipelinerun.go, `*kmeta.NewControllerRef(pr)`), and counts only
/// children whose first ownerReference is the run (`filterTaskRunsForPipelineRunStatus`).
/// Labels are not ownership: anyone who may create TaskRuns can set them.
pub fn controlled_by(child: &Value, run_uid: &str) -> bool {
    if run_uid.is_empty() {
        return false;
    }
    let owners = ObjectView::new(child).owner_references();
    let first = owners.first();
    let controller = owners
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true));
    match (first, controller) {
        (Some(f), Some(c)) => {
            f.get("uid").and_then(Value::as_str) == Some(run_uid)
                && c.get("uid").and_then(Value::as_str) == Some(run_uid)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn child(name: &str, uid: &str) -> Value {
        json!({"metadata": {"name": name, "uid": uid}})
    }

    /// The record of an attempt claimed at `start`.
    fn claimed_at(start: &str) -> AttemptRecord {
        AttemptRecord {
            retry: LastRetry {
                start: start.into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn cancelled_run(spec_status: Option<&str>, completion: &str) -> Value {
        let mut run = json!({
            "metadata": {"name": "demo-run"},
            "spec": {},
            "status": {"completionTime": completion, "conditions": [{"type": "Succeeded",
                "status": "False", "reason": "Cancelled",
                "message": "PipelineRun \"demo-run\" was cancelled"}]}
        });
        if let Some(s) = spec_status {
            run["spec"]["status"] = json!(s);
        }
        run
    }

    #[test]
    fn a_cancel_the_spec_no_longer_asks_for_is_an_earlier_outcome_whatever_its_time() {
        let record = claimed_at("2026-11-26T19:29:45Z");
        // Race 2 of fixtures/cancelled, with the stale write landing seconds after the claim.
        let stale = cancelled_run(None, "2026-11-26T19:29:47Z");
        assert!(shows_old_outcome(&stale, &record, true));
        assert!(shows_old_outcome(
            &cancelled_run(Some(""), "2026-11-26T19:29:47Z"),
            &record,
            true
        ));
        // A cancel asked for during the attempt is this attempt's outcome.
        for asked in ["Cancelled", "CancelledRunFinally", "StoppedRunFinally"] {
            let run = cancelled_run(Some(asked), "2026-11-26T19:29:47Z");
            assert!(!shows_old_outcome(&run, &record, true), "{asked}");
        }
        // A run ending Cancelled because a task was cancelled says so in its own message.
        let mut by_task = stale.clone();
        by_task["status"]["conditions"][0]["message"] =
            json!("Tasks Completed: 3 (Failed: 0, Cancelled 1), Skipped: 0");
        assert!(!shows_old_outcome(&by_task, &record, true));
    }

    #[test]
    fn an_earlier_completion_is_an_earlier_outcome_and_the_claims_second_asks_the_children() {
        let record = claimed_at("2026-11-26T19:29:45Z");
        let failed = |completion: Option<&str>| {
            let mut run = json!({"metadata": {"name": "r"}, "status": {"conditions": [
                {"type": "Succeeded", "status": "False", "reason": "Failed", "message": "m"}]}});
            if let Some(c) = completion {
                run["status"]["completionTime"] = json!(c);
            }
            run
        };
        for new_child in [true, false] {
            // Before the claim: the earlier attempt's outcome, whatever the children say.
            assert!(shows_old_outcome(
                &failed(Some("2026-11-26T19:29:44Z")),
                &record,
                new_child
            ));
            // After the claim's second: this attempt's.
            assert!(!shows_old_outcome(
                &failed(Some("2026-11-26T19:29:46Z")),
                &record,
                new_child
            ));
            // In the claim's own second, or without a time: a re-created child decides.
            for run in [failed(Some("2026-11-26T19:29:45Z")), failed(None)] {
                assert_eq!(
                    shows_old_outcome(&run, &record, new_child),
                    !new_child,
                    "{run}"
                );
            }
        }
    }

    #[test]
    fn only_the_uids_of_replaced_runs_are_replaced() {
        let record = AttemptRecord {
            replace_now: vec![RunRef::new("TaskRun", "r-b", "uid-b")],
            replace_after_spec_clear: vec![RunRef::new("TaskRun", "r-report", "uid-report")],
            ..Default::default()
        };
        assert!(record.replaces_uid("uid-b"));
        assert!(record.replaces_uid("uid-report"));
        assert!(!record.replaces_uid("uid-a"));
        assert!(
            !record.replaces_uid(""),
            "a run without a uid is never one of them"
        );
        let no_uid = AttemptRecord {
            replace_now: vec![RunRef::new("TaskRun", "r-b", "")],
            ..Default::default()
        };
        assert!(!no_uid.replaces_uid(""));
        assert_eq!(
            RunRef::new("TaskRun", "r-b", "uid-b").to_string(),
            "TaskRun/r-b (uid uid-b)"
        );
    }

    #[test]
    fn a_run_recreated_under_the_same_name_is_new() {
        let record = AttemptRecord {
            replace_now: vec![RunRef::new("TaskRun", "r-b", "uid-old")],
            ..Default::default()
        };
        assert!(!record.is_new(&child("r-b", "uid-old")));
        assert!(record.is_new(&child("r-b", "uid-new")));
        assert!(!record.is_new(&child("r-a", "uid-a")), "a kept run");
    }

    #[test]
    fn ownership_is_the_controller_reference_not_a_label() {
        let owned = json!({"metadata": {"ownerReferences": [
            {"kind": "PipelineRun", "uid": "run", "controller": true}]}});
        assert!(controlled_by(&owned, "run"));
        assert!(!controlled_by(&owned, "other"));
        assert!(!controlled_by(&owned, ""));
        let labelled = json!({"metadata": {"labels": {"tekton.dev/pipelineRun": "r"}}});
        assert!(!controlled_by(&labelled, "run"));
        let not_controller = json!({"metadata": {"ownerReferences": [
            {"kind": "PipelineRun", "uid": "run"}]}});
        assert!(!controlled_by(&not_controller, "run"));
        let other_first = json!({"metadata": {"ownerReferences": [
            {"kind": "PipelineRun", "uid": "x"},
            {"kind": "PipelineRun", "uid": "run", "controller": true}]}});
        assert!(
            !controlled_by(&other_first, "run"),
            "Tekton reads the first reference"
        );
    }

    #[test]
    fn the_record_round_trips_with_its_phase() {
        let r = AttemptRecord {
            retry: LastRetry {
                attempt: 3,
                phase: Some(Phase::Started),
                ..Default::default()
            },
            replace_now: vec![RunRef::new("TaskRun", "a", "u")],
            ..Default::default()
        };
        let text = serde_json::to_string(&r).expect("json");
        assert!(text.contains("\"phase\":\"started\""), "{text}");
        let back: AttemptRecord = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, r);
        assert_eq!(current_attempt(Some(&back)), 3);
        assert_eq!(current_attempt(None), 1);
    }

    /// Records already stored in clusters were written with every field at the top level in
    /// another order, and with `"phase": null` before a phase was set: they read the same.
    #[test]
    fn records_written_before_the_summary_was_shared_still_read() {
        let stored = r#"{"namespace":"ns","name":"r","uid":"u","attempt":2,"phase":"ended","start":"2026-11-26T19:30:30Z","end":"2026-11-26T19:31:00Z","outcome":"Succeeded","by":"alice","reason":"flaky","tasks":["b"],"replaceNow":[{"kind":"TaskRun","name":"r-b","uid":"u-b"}],"replaceAfterSpecClear":[],"dropReferences":["r-m-0"],"removeAnnotations":[],"finally":"Keep","originalStartTime":"T0","originalCompletionTime":"T1"}"#;
        let record: AttemptRecord = serde_json::from_str(stored).expect("parse");
        let want = AttemptRecord {
            namespace: "ns".into(),
            name: "r".into(),
            uid: "u".into(),
            retry: LastRetry {
                attempt: 2,
                start: "2026-11-26T19:30:30Z".into(),
                end: Some("2026-11-26T19:31:00Z".into()),
                outcome: Some("Succeeded".into()),
                by: "alice".into(),
                reason: Some("flaky".into()),
                tasks: vec!["b".into()],
                phase: Some(Phase::Ended),
                finally: Some(FinallyPolicy::Keep),
            },
            replace_now: vec![RunRef::new("TaskRun", "r-b", "u-b")],
            drop_references: vec!["r-m-0".into()],
            original: OriginalTimes {
                start: Some("T0".into()),
                completion: Some("T1".into()),
            },
            ..Default::default()
        };
        assert_eq!(record, want);
        let written: Value = serde_json::to_value(&record).expect("json");
        let stored: Value = serde_json::from_str(stored).expect("parse");
        assert_eq!(
            written, stored,
            "the same fields and values, whatever their order"
        );

        let unphased = r#"{"namespace":"ns","name":"r","uid":"u","attempt":2,"phase":null,"start":"2026-11-26T19:30:30Z","by":"alice","tasks":[]}"#;
        let record: AttemptRecord = serde_json::from_str(unphased).expect("parse");
        assert_eq!(record.retry.phase, None);
        assert_eq!(record.phase(), Phase::Claimed);
        assert_eq!(record.summary().phase, Some(Phase::Claimed));
    }

    /// The summary on the run and in the history index spells the phase as before it was typed.
    #[test]
    fn the_summary_writes_the_phase_as_a_lowercase_word() {
        for (phase, word) in [
            (Phase::Claimed, "claimed"),
            (Phase::Started, "started"),
            (Phase::Ended, "ended"),
        ] {
            let r = AttemptRecord {
                retry: LastRetry {
                    attempt: 2,
                    phase: Some(phase),
                    ..Default::default()
                },
                ..Default::default()
            };
            let summary = serde_json::to_value(r.summary()).expect("json");
            assert_eq!(summary["phase"], word);
            assert_eq!(phase.as_str(), word);
            let back: LastRetry = serde_json::from_value(summary).expect("parse");
            assert_eq!(back.phase, Some(phase));
        }
        // Written before phases were recorded: no phase.
        let old: LastRetry =
            serde_json::from_str(r#"{"attempt":2,"start":"2026-11-26T19:30:30Z","by":"a"}"#)
                .expect("parse");
        assert_eq!(old.phase, None);
    }
}

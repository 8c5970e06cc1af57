//! The executor's pure rules, and whole attempts against the in-memory API.
use super::*;

#[test]
fn attempt_pod_names_plain_and_hashed() {
    assert!(is_attempt_pod_name("demo-run-b-pod"));
    assert!(is_attempt_pod_name("demo-run-b-pod-retry2"));
    // kmeta.ChildName form for a 63-character TaskRun name: 27 characters, md5, suffix.
    assert!(is_attempt_pod_name(
        "a-very-long-pipelinerun-na4b3a6a8d1e0f2c9b7d5e3f1a2b4c6d8-pod"
    ));
    assert!(!is_attempt_pod_name("demo-run-b-pod-leftover"));
    assert!(!is_attempt_pod_name("demo-run-b-pod-retry"));
    assert!(!is_attempt_pod_name("affinity-assistant-9e9e0199da-0"));
}

#[test]
fn every_attempt_pod_is_listed_last_one_unprefixed() {
    let tr = json!({"status": {
        "podName": "r-b-pod-retry1",
        "steps": [{"container": "step-main"}],
        "retriesStatus": [{"podName": "r-b-pod", "steps": [{"container": "step-main"}]}]}});
    let pods = attempt_pods(&tr);
    assert_eq!(
        pods,
        vec![
            ("r-b-pod/".to_string(), "r-b-pod", vec!["step-main"]),
            (String::new(), "r-b-pod-retry1", vec!["step-main"]),
        ]
    );
}

#[test]
fn a_run_level_failure_counts_only_after_a_reset() {
    let run = |reason: &str| {
        json!({"status": {"conditions": [{"type": "Succeeded", "status": "False",
            "reason": reason}]}})
    };
    assert!(refailed_by_tekton(&run("CouldntGetTask"), true));
    assert!(refailed_by_tekton(&run("CreateRunFailed"), true));
    // The old failure, seen before any reset of this call.
    assert!(!refailed_by_tekton(&run("PipelineValidationFailed"), false));
    // A task failure is decided by the runs, never here.
    assert!(!refailed_by_tekton(&run("Failed"), true));
}

// ---- Whole attempts against the in-memory API (recorded runs; see `test_scenario`). ----

use crate::api::StatusReason;
use crate::retry::cluster::{PODS, TASKRUNS as TASKRUN_KIND};
use crate::retry::fake_api::{collection, Store};
use crate::retry::record::Phase;
use crate::retry::test_scenario::{bounded, options, Scenario, RUN};
use crate::retry::Engine;

fn taskruns(s: &Scenario) -> String {
    collection(TASKRUN_KIND, s.ns)
}

fn condition(run: &Value) -> (String, String) {
    let c = &run["status"]["conditions"][0];
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"))
}

/// The writes to the run and its children that were made (not those refused, nor those to the
/// records or Events), in order; a patch with the fields it changes.
fn run_writes(s: &Scenario) -> Vec<String> {
    let store = s.api.store();
    let made = store.written.iter().filter(|(_, code)| *code < 300);
    made.map(|(w, _)| w)
        .filter(|w| w.collection.ends_with("/pipelineruns") || w.collection.ends_with("/taskruns"))
        .map(|w| match w.verb {
            "patch" => format!("{} {}", w.line(), w.patched()),
            _ => w.line(),
        })
        .collect()
}

/// Claims attempt 2 of the scenario's run and leaves it interrupted before the reset; the
/// record, for calling the executor directly.
async fn claimed(s: &Scenario, engine: &Engine) -> AttemptRecord {
    s.api.store().fail_next("patch pipelineruns/status", 500);
    bounded(engine.retry(s.retry_request()))
        .await
        .expect_err("interrupted");
    s.record()
}

#[tokio::test]
async fn a_cancelled_run_is_reset_then_its_spec_status_cleared() {
    let s = Scenario::load("cancelled", &["02-cancelled"]);
    assert_eq!(s.run()["spec"]["status"], "Cancelled");
    bounded(s.engine().retry(s.retry_request())).await.expect("201");
    let run = s.run();
    assert!(run["spec"].get("status").is_none(), "{}", run["spec"]);
    assert_eq!(condition(&run).0, "Unknown");
    assert_eq!(
        run_writes(&s),
        [
            "patch pipelineruns demo-run metadata", // the claim's mirror
            "delete taskruns demo-run-b",
            "patch pipelineruns/status demo-run status",
            "patch pipelineruns demo-run spec", // spec.status cleared
            "patch pipelineruns demo-run metadata", // the mirror: started
        ]
    );
}

#[tokio::test]
async fn the_finally_runs_of_a_gracefully_cancelled_run_are_deleted_only_after_the_spec_clear() {
    // CancelledRunFinally: while spec.status is set, a re-created finally run would be cancelled
    // again, so the finally TaskRun goes only once the spec is cleared.
    let s = Scenario::load("cancelled-finally-trap", &["01-cancelled"]);
    assert_eq!(s.run()["spec"]["status"], "CancelledRunFinally");
    bounded(s.engine().retry(s.retry_request())).await.expect("201");
    assert_eq!(
        run_writes(&s),
        [
            "patch pipelineruns demo-run metadata",
            "delete taskruns demo-run-b",
            "patch pipelineruns/status demo-run status",
            "patch pipelineruns demo-run spec",
            "delete taskruns demo-run-report",
            "patch pipelineruns demo-run metadata",
        ]
    );
    assert!(!s.names(TASKRUN_KIND).contains(&"demo-run-report".to_string()));
    assert!(s.run()["spec"].get("status").is_none());
    assert_eq!(s.record().phase(), Phase::Started);
}

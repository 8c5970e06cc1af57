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

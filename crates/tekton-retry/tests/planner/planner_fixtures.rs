//! Planner table tests on the objects recorded from a real Tekton controller
//! (`tests/fixtures/tekton/README.md`): the plan must match the reset that worked there.

use crate::planner_common;

use std::time::Duration;

use planner_common::{
    assert_references_as_recorded, deleted_now, fixture, input, moment, names, original_times,
    pvcs, reset_patch, time,
};
use serde_json::{json, Value};
use tekton_retry::api::{FinallyPolicy, RetriedTask, RetrySpec};
use tekton_retry::retry::planner::plan;
use tekton_retry::retry::Refusal;

/// The planner's refusal of a retry of `run` with `children` asked at `now`.
fn refusal(run: &Value, children: &[Value], spec: &RetrySpec, now: &str) -> Refusal {
    plan(&input(run, children, spec, time(now))).expect_err("refused")
}

fn retried(name: &str, run: Option<&str>, reason: Option<&str>) -> RetriedTask {
    RetriedTask {
        name: name.into(),
        previous_run: run.map(Into::into),
        previous_reason: reason.map(Into::into),
    }
}

/// The object a JSON merge patch of `{"status": patch}` produces.
fn merged(run: &Value, patch: &Value) -> Value {
    let mut out = run.clone();
    json_patch::merge(&mut out, &json!({ "status": patch }));
    out
}

/// Status of an object with the `Succeeded` condition's free text removed.
fn comparable_status(run: &Value) -> Value {
    let mut s = run["status"].clone();
    if let Some(conds) = s["conditions"].as_array_mut() {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("message");
                o.remove("lastTransitionTime");
            }
        }
    }
    s
}

#[test]
fn dag_failed_reruns_b_and_report_keeps_a() {
    let (run, children) = moment("dag-failed", "01-failed");
    let spec = RetrySpec::default();
    let now = time("2026-11-26T19:28:01Z");
    let p = plan(&input(&run, &children, &spec, now)).expect("a plan");
    assert_eq!(p.attempt, 2);
    assert_eq!(p.pipeline_run_uid, "679e284d-e47e-4d0c-880e-4f1c5abad32c");
    assert_eq!(names(&p.delete_now), ["demo-run-b", "demo-run-report"]);
    assert!(p.delete_after_spec_clear.is_empty());
    assert_eq!(p.preserved, ["a"]);
    assert_eq!(
        p.retried,
        [
            retried("b", Some("demo-run-b"), Some("StepFailed")),
            retried("c", None, Some("PipelineRun was stopping")),
            retried("report", Some("demo-run-report"), Some("Succeeded")),
        ]
    );
    assert!(!p.clear_spec_status);
    assert_eq!(
        original_times(&p),
        (Some("2026-11-26T19:27:10Z"), Some("2026-11-26T19:27:19Z"))
    );
    // 1h budget from 19:27:10, now 19:28:01.
    assert_eq!(p.remaining_timeout, Some(Duration::from_secs(3600 - 51)));
    assert!(p.remove_annotations.is_empty());
    assert_eq!(
        deleted_now(&p)[0],
        ("demo-run-b", "TaskRun", "tekton.dev/v1")
    );
    let b = &p.delete_now[0];
    assert_eq!(b.uid, "3e8e2de8-bec8-4b00-b3c7-823c15d4ac77");
    assert_eq!(b.pipeline_task, "b");
}

#[test]
fn dag_failed_status_patch_equals_the_reset_that_worked() {
    let (run, children) = moment("dag-failed", "01-failed");
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &children, &spec, time("2026-11-26T19:28:01Z"))).expect("a plan");
    let ours = merged(&run, &reset_patch(&p, &run, time("2026-11-26T19:28:01Z")));
    let mut real = fixture("dag-failed/03-reset-request-pipelinerun-demo-run.json");
    // The recorded request also carried two experimental fields (pruned or inert).
    let st = real["status"].as_object_mut().expect("status");
    st.remove("lastRetry");
    st.remove("annotations");
    assert_eq!(comparable_status(&ours), comparable_status(&real));
    assert_eq!(
        ours["status"]["conditions"][0]["lastTransitionTime"],
        "2026-11-26T19:28:01Z"
    );
    assert_eq!(ours["spec"], run["spec"]);
    assert_eq!(ours["metadata"], run["metadata"]);
}

#[test]
fn matrix_task_is_rerun_whole() {
    let (run, children) = moment("matrix-full", "01-failed");
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &children, &spec, time("2026-11-26T19:33:30Z"))).expect("a plan");
    assert_eq!(
        names(&p.delete_now),
        [
            "matrix-run-m-0",
            "matrix-run-m-1",
            "matrix-run-m-2",
            "matrix-run-report"
        ]
    );
    // `w`'s `when` (input "false" in ["true"]) is false as stored: Tekton skipped it again
    // ("When Expressions evaluated to false" after the reset, fixture matrix-full/03).
    assert_eq!(p.preserved, ["a", "w"]);
    assert_eq!(
        p.retried,
        [
            retried("m", Some("matrix-run-m-0"), Some("StepFailed")),
            retried("after-m", None, Some("PipelineRun was stopping")),
            retried("report", Some("matrix-run-report"), Some("Succeeded")),
        ]
    );
    let real = fixture("matrix-full/02-reset-request-pipelinerun-matrix-run.json");
    assert_eq!(
        reset_patch(&p, &run, time("2026-11-26T19:33:30Z"))["childReferences"],
        real["status"]["childReferences"]
    );
    assert_eq!(
        comparable_status(&merged(
            &run,
            &reset_patch(&p, &run, time("2026-11-26T19:33:30Z"))
        )),
        comparable_status(&real)
    );
}

#[test]
fn matrix_scenario_same_answer_as_matrix_full() {
    // The `matrix` scenario deleted only m-1 and m was never re-created: the plan deletes all.
    let (run, children) = moment("matrix", "01-failed");
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &children, &spec, time("2026-11-26T19:33:00Z"))).expect("a plan");
    let deleted = names(&p.delete_now);
    for m in ["matrix-run-m-0", "matrix-run-m-1", "matrix-run-m-2"] {
        assert!(deleted.contains(&m), "{m} must be deleted: {deleted:?}");
    }
}

#[test]
fn hard_cancelled_run_reruns_cancelled_task_and_clears_spec_status() {
    let (run, children) = moment("cancelled", "02-cancelled");
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &children, &spec, time("2026-11-26T19:29:30Z"))).expect("a plan");
    assert!(p.clear_spec_status);
    assert_eq!(names(&p.delete_now), ["demo-run-b"]);
    assert!(p.delete_after_spec_clear.is_empty());
    assert_eq!(p.preserved, ["a"]);
    assert_eq!(
        p.retried,
        [
            retried("b", Some("demo-run-b"), Some("TaskRunCancelled")),
            retried("c", None, None),
            retried("report", None, None),
        ]
    );
    // The reset that finally worked (resume 3) kept only a's reference.
    assert_references_as_recorded(
        &p,
        &run,
        "2026-11-26T19:29:30Z",
        "cancelled/10-resume3-status-request-pipelinerun-demo-run.json",
    );
}

#[test]
fn cancelled_run_done_before_its_child_counts_the_cancelling_child() {
    // Timeline 19:29:15.998: the run is False/Cancelled while demo-run-b is still Unknown/Running
    // with spec.status TaskRunCancelled (19:29:15.965).
    let run = fixture("cancelled/02-cancelled-pipelinerun-demo-run.json");
    let a = fixture("cancelled/02-cancelled-taskrun-demo-run-a.json");
    let mut b = fixture("cancelled/01-running-taskrun-demo-run-b.json");
    b["spec"]["status"] = json!("TaskRunCancelled");
    let children = vec![a, b];
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &children, &spec, time("2026-11-26T19:29:16Z"))).expect("a plan");
    assert_eq!(names(&p.delete_now), ["demo-run-b"]);
    assert_eq!(
        p.retried[0],
        retried("b", Some("demo-run-b"), Some("TaskRunCancelled"))
    );
}

#[test]
fn graceful_cancel_deletes_finally_after_spec_clear() {
    let (run, children) = moment("cancelled-finally-trap", "01-cancelled");
    assert_eq!(run["spec"]["status"], "CancelledRunFinally");
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &children, &spec, time("2026-11-26T19:36:10Z"))).expect("a plan");
    assert!(p.clear_spec_status);
    assert_eq!(names(&p.delete_now), ["demo-run-b"]);
    assert_eq!(names(&p.delete_after_spec_clear), ["demo-run-report"]);
    assert_eq!(p.preserved, ["a"]);
    // The reset drops b's reference; report's run still exists when the status is written (it
    // goes after the spec clear), and Tekton would re-add the reference of an existing run anyway.
    let refs = reset_patch(&p, &run, time("2026-11-26T19:36:10Z"))["childReferences"].clone();
    let ref_names: Vec<&str> = refs
        .as_array()
        .expect("refs")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(ref_names, ["demo-run-a", "demo-run-report"]);

    let keep = RetrySpec {
        finally: Some(FinallyPolicy::Keep),
        ..Default::default()
    };
    let p = plan(&input(&run, &children, &keep, time("2026-11-26T19:36:10Z"))).expect("a plan");
    assert_eq!(names(&p.delete_now), ["demo-run-b"]);
    assert!(p.delete_after_spec_clear.is_empty());
    assert_eq!(p.preserved, ["a", "report"]);
}

#[test]
fn keep_finally_keeps_the_report_run() {
    let (run, children) = moment("keep-finally", "01-failed");
    let spec = RetrySpec {
        finally: Some(FinallyPolicy::Keep),
        ..Default::default()
    };
    let now = time("2026-11-26T19:34:00Z");
    let p = plan(&input(&run, &children, &spec, now)).expect("a plan");
    assert_eq!(names(&p.delete_now), ["demo-run-b"]);
    assert_eq!(p.preserved, ["a", "report"]);
    assert_references_as_recorded(
        &p,
        &run,
        "2026-11-26T19:34:00Z",
        "keep-finally/02-reset-request-pipelinerun-demo-run.json",
    );
}

#[test]
fn task_with_automatic_retries_is_deleted_and_recreated() {
    let (run, children) = moment("retries", "01-failed");
    let b = children
        .iter()
        .find(|c| c["metadata"]["name"] == "retry-run-b")
        .expect("b");
    assert_eq!(
        b["status"]["retriesStatus"].as_array().map(Vec::len),
        Some(1)
    );
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &children, &spec, time("2026-11-26T19:31:10Z"))).expect("a plan");
    assert_eq!(names(&p.delete_now), ["retry-run-b"]);
    assert_eq!(p.preserved, ["a"]);
    assert_eq!(
        p.retried,
        [
            retried("b", Some("retry-run-b"), Some("StepFailed")),
            retried("c", None, Some("PipelineRun was stopping")),
        ]
    );
}

#[test]
fn affinity_assistant_run_is_refused_unless_started_over() {
    let (run, children) = moment("affinity", "01-failed");
    let now = time("2026-11-26T19:34:00Z");
    let spec = RetrySpec::default();
    let e = plan(&input(&run, &children, &spec, now)).expect_err("refused");
    assert!(matches!(e, Refusal::AffinityAssistantGone { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert!(e.causes()[0]
        .message
        .contains("affinity-assistant-9e9e0199da"));

    // Starting over (nothing kept) lets Tekton create a new assistant; the claim must exist.
    let over = RetrySpec {
        restart_tasks: vec!["a".into()],
        ..Default::default()
    };
    let p = plan(&input(&run, &children, &over, now)).expect("a plan");
    assert_eq!(names(&p.delete_now), ["ws-run-a", "ws-run-b"]);
    assert!(p.preserved.is_empty());

    // Starting over, Tekton also creates the template's claim again (IsBeforeFirstTaskRun).
    let none = pvcs(&[]);
    let mut i = input(&run, &children, &over, now);
    i.existing_pvcs = Some(&none);
    assert!(plan(&i).is_ok());
}

#[test]
fn affinity_refusal_follows_the_coschedule_mode_the_runs_show() {
    // The affinity scenario with b binding no workspace.
    let (mut run, mut children) = moment("affinity", "01-failed");
    run["status"]["pipelineSpec"]["tasks"][1]
        .as_object_mut()
        .expect("b")
        .remove("workspaces");
    let now = time("2026-11-26T19:34:00Z");
    let spec = RetrySpec::default();
    // b's run still carries the annotation: every task is pinned (coschedule per pipelinerun),
    // so re-running b next to the gone assistant is refused.
    let e = plan(&input(&run, &children, &spec, now)).expect_err("per pipelinerun");
    assert!(matches!(e, Refusal::AffinityAssistantGone { .. }), "{e:?}");
    // b's run without it: coschedule workspaces, b is not pinned and runs anywhere.
    let b = children
        .iter_mut()
        .find(|c| c["metadata"]["name"] == "ws-run-b")
        .expect("b");
    b["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations")
        .remove("pipeline.tekton.dev/affinity-assistant");
    let p = plan(&input(&run, &children, &spec, now)).expect("a plan");
    assert_eq!(names(&p.delete_now), ["ws-run-b"]);
    // … but a task that binds the claim and runs again would be pinned: refused.
    let again_a = RetrySpec {
        restart_tasks: vec!["a".into()],
        ..Default::default()
    };
    let mut kept_c = children.clone();
    let mut c = kept_c[1].clone();
    c["metadata"]["name"] = json!("ws-run-c");
    c["metadata"]["uid"] = json!("uid-c");
    c["metadata"]["labels"]["tekton.dev/pipelineTask"] = json!("c");
    c["status"]["conditions"][0]["status"] = json!("True");
    c["status"]["conditions"][0]["reason"] = json!("Succeeded");
    kept_c.push(c);
    let mut run_c = run.clone();
    let tasks = run_c["status"]["pipelineSpec"]["tasks"]
        .as_array_mut()
        .expect("tasks");
    tasks.push(json!({"name": "c", "taskSpec": {"steps": [{"name": "s", "image": "x"}]}}));
    run_c["status"]["childReferences"]
        .as_array_mut()
        .expect("refs")
        .push(json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "ws-run-c", "pipelineTaskName": "c"}));
    let e = plan(&input(&run_c, &kept_c, &again_a, now)).expect_err("a is pinned");
    assert!(matches!(e, Refusal::AffinityAssistantGone { .. }), "{e:?}");
}

#[test]
fn template_claim_gone_with_kept_runs_is_refused() {
    // The affinity scenario without an affinity assistant (coschedule disabled): a is kept, so
    // Tekton will not create the claim again and a's data is gone.
    let (run, mut children) = moment("affinity", "01-failed");
    for c in &mut children {
        let ann = c["metadata"]["annotations"]
            .as_object_mut()
            .expect("annotations");
        ann.remove("pipeline.tekton.dev/affinity-assistant");
    }
    let spec = RetrySpec::default();
    let now = time("2026-11-26T19:34:00Z");
    let none = pvcs(&[]);
    let mut i = input(&run, &children, &spec, now);
    i.existing_pvcs = Some(&none);
    let e = plan(&i).expect_err("claim gone");
    assert!(matches!(e, Refusal::WorkspaceGone { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert_eq!(e.causes()[0].field, "pipelineRun.spec.workspaces[src]");
    assert!(e.causes()[0].message.contains("pvc-1dbde596f6"));

    let present = pvcs(&["pvc-1dbde596f6"]);
    i.existing_pvcs = Some(&present);
    let p = plan(&i).expect("a plan");
    assert_eq!(names(&p.delete_now), ["ws-run-b"]);
    assert_eq!(p.preserved, ["a"]);
    // Unchecked, the claim is assumed to be there.
    assert!(plan(&input(&run, &children, &spec, now)).is_ok());
}

#[test]
fn timeout_budget_is_measured_from_the_original_start() {
    // timeouts.pipeline 1m0s, started 19:30:30, failed 19:30:39.
    let (run, children) = moment("timeout", "01-failed");
    let spec = RetrySpec::default();
    let e = refusal(&run, &children, &spec, "2026-11-26T19:30:45Z");
    assert!(matches!(e, Refusal::BudgetSpent { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert_eq!(e.causes()[0].field, "spec.timeouts.pipeline");
    assert!(
        e.causes()[0].message.contains("45s"),
        "{}",
        e.causes()[0].message
    );

    let mut i = input(&run, &children, &spec, time("2026-11-26T19:30:45Z"));
    i.limits.min_timeout_budget = Duration::from_secs(10);
    let p = plan(&i).expect("a plan");
    assert_eq!(p.remaining_timeout, Some(Duration::from_secs(45)));

    // At 66 s (the recorded retry) nothing is left.
    let mut i = input(&run, &children, &spec, time("2026-11-26T19:31:36Z"));
    i.limits.min_timeout_budget = Duration::ZERO;
    let p = plan(&i).expect("zero minimum accepts");
    assert_eq!(p.remaining_timeout, Some(Duration::ZERO));
    i.limits.min_timeout_budget = Duration::from_secs(1);
    assert!(matches!(
        plan(&i).expect_err("refused"),
        Refusal::BudgetSpent { .. }
    ));
}

#[test]
fn run_that_timed_out_is_refused_with_its_budget() {
    let (run, children) = moment("timeout", "03-after-reset");
    assert_eq!(
        run["status"]["conditions"][0]["reason"],
        "PipelineRunTimeout"
    );
    let spec = RetrySpec::default();
    let e = refusal(&run, &children, &spec, "2026-11-26T19:31:40Z");
    assert!(
        matches!(
            e,
            Refusal::TimedOut {
                budget: Some(_),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.code(), 422);
    assert_eq!(e.run(), Some("demo-run"));
    assert!(
        e.causes()[0].message.contains("1m0s"),
        "{}",
        e.causes()[0].message
    );
}

#[test]
fn succeeded_and_running_fixtures_are_conflicts() {
    // The labels name one refusal each: `Succeeded` and `NotDone`.
    for (scenario, at, now, label) in [
        (
            "dag-failed",
            "06-final",
            "2026-11-26T19:29:00Z",
            "Succeeded",
        ),
        ("cancelled", "01-running", "2026-11-26T19:29:15Z", "NotDone"),
    ] {
        let (run, children) = moment(scenario, at);
        let e = refusal(&run, &children, &RetrySpec::default(), now);
        assert_eq!(
            (e.code(), e.label()),
            (409, label),
            "{scenario}/{at}: {e:?}"
        );
    }
}

#[test]
fn half_resumed_cancel_with_cleared_spec_still_reruns() {
    // Race 2 (cancelled/09): spec.status already "" but the run is False/Cancelled again.
    let run = fixture("cancelled/09-after-resume2-pipelinerun-demo-run.json");
    let children = vec![fixture(
        "cancelled/09-after-resume2-taskrun-demo-run-a.json",
    )];
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &children, &spec, time("2026-11-26T19:30:00Z"))).expect("a plan");
    assert!(!p.clear_spec_status);
    assert!(p.delete_now.is_empty());
    assert_eq!(p.preserved, ["a"]);
    let names: Vec<&str> = p.retried.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["b", "c", "report"]);
}

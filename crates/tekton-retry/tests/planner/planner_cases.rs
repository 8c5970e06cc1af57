//! Hand-made planner cases: one per refusal and re-run rule of the planner, on synthetic runs shaped like the
//! recorded fixtures.

use crate::planner_common;

use std::time::Duration;

use planner_common::{
    deleted_now, input, names, original_times, pvcs, reset_patch, time, Out, Sim, NOW, START,
};
use serde_json::{json, Value};
use tekton_retry::api::{FinallyPolicy, Preconditions, RetrySpec};
use tekton_retry::retry::planner::plan;
use tekton_retry::retry::{Plan, Refusal};

fn run_plan(sim: &Sim, spec: &RetrySpec) -> Result<Plan, Refusal> {
    let run = sim.run();
    plan(&input(&run, &sim.children, spec, time(NOW)))
}

/// Task `a` succeeded and task `b` (with `b_extra`, e.g. a `runAfter`) failed.
fn succeeded_a_and_failed_b(b_extra: Value) -> Sim {
    Sim::new()
        .task("a", json!({}))
        .task("b", b_extra)
        .ran("a", Out::Succeeded)
        .ran("b", Out::Failed)
}

fn ok(sim: &Sim, spec: &RetrySpec) -> Plan {
    run_plan(sim, spec).unwrap_or_else(|e| panic!("expected a plan, got {e}"))
}

fn refused(sim: &Sim, spec: &RetrySpec) -> Refusal {
    match run_plan(sim, spec) {
        Ok(p) => panic!("expected a refusal, got {p:?}"),
        Err(e) => {
            assert_eq!(e.run(), Some("run"), "refusals name the run");
            if e.code() == 422 {
                assert!(!e.causes().is_empty(), "a 422 always carries causes: {e}");
                assert!(e
                    .causes()
                    .iter()
                    .all(|c| !c.field.is_empty() && !c.message.is_empty()));
            }
            e
        }
    }
}

fn retried_names(p: &Plan) -> Vec<&str> {
    p.retried.iter().map(|r| r.name.as_str()).collect()
}

fn restart(tasks: &[&str]) -> RetrySpec {
    RetrySpec {
        restart_tasks: tasks.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn dflt() -> RetrySpec {
    RetrySpec::default()
}

#[test]
fn several_independent_failures_rerun_each() {
    let sim = Sim::new()
        .task("a", json!({}))
        .task("b", json!({}))
        .task("c", json!({"runAfter": ["a"]}))
        .task("d", json!({}))
        .ran("a", Out::Failed)
        .ran("b", Out::Failed)
        .ran("d", Out::Succeeded)
        .skipped("c", "PipelineRun was stopping");
    let p = ok(&sim, &dflt());
    assert_eq!(names(&p.delete_now), ["run-a", "run-b"]);
    assert_eq!(p.preserved, ["d"]);
    assert_eq!(retried_names(&p), ["a", "b", "c"]);
}

#[test]
fn ignored_failure_under_on_error_continue_is_kept_with_its_dependents() {
    // pipelinerunstate.go: a failure with onError: continue is "IgnoredFailed" and the DAG goes on.
    let sim = Sim::new()
        .task("a", json!({"onError": "continue"}))
        .task("b", json!({"runAfter": ["a"]}))
        .task("c", json!({}))
        .ran("a", Out::Failed)
        .ran("b", Out::Succeeded)
        .ran("c", Out::Failed);
    let p = ok(&sim, &dflt());
    assert_eq!(names(&p.delete_now), ["run-c"]);
    assert_eq!(p.preserved, ["a", "b"]);
    // Asked for explicitly, it runs again with its dependents.
    let p = ok(&sim, &restart(&["a"]));
    assert_eq!(names(&p.delete_now), ["run-a", "run-b", "run-c"]);
}

#[test]
fn when_skipped_task_is_evaluated_again_but_is_not_work_alone() {
    let when =
        json!({"when": [{"input": "$(params.deploy)", "operator": "in", "values": ["true"]}]});
    let sim = Sim::new()
        .task("a", json!({}))
        .task("w", when.clone())
        .task("x", json!({}))
        .ran("a", Out::Succeeded)
        .ran("x", Out::Failed)
        .skipped("w", "When Expressions evaluated to false");
    let p = ok(&sim, &dflt());
    assert_eq!(names(&p.delete_now), ["run-x"]);
    // Its `when` reads only a param: Tekton skips it again, so it is not reported as retried.
    assert_eq!(retried_names(&p), ["x"]);
    assert_eq!(p.preserved, ["a", "w"]);

    // A `when` reading a result of a task that runs again may now be true: retried.
    let on_x =
        json!({"when": [{"input": "$(tasks.x.results.go)", "operator": "in", "values": ["true"]}]});
    let sim = Sim::new()
        .task("a", json!({}))
        .task("x", json!({}))
        .task("w", on_x)
        .ran("a", Out::Succeeded)
        .ran("x", Out::Failed)
        .skipped("w", "When Expressions evaluated to false");
    let p = ok(&sim, &dflt());
    assert_eq!(retried_names(&p), ["x", "w"]);
    assert_eq!(
        p.retried[1].previous_reason.as_deref(),
        Some("When Expressions evaluated to false")
    );

    // Everything ran fine, only a when-skip: nothing would change.
    let sim = Sim::new()
        .task("a", json!({}))
        .task("w", when)
        .ran("a", Out::Succeeded)
        .skipped("w", "When Expressions evaluated to false")
        .outcome("False", "CouldntGetPipelineResult");
    let e = refused(&sim, &dflt());
    assert!(matches!(e, Refusal::NothingToRetry { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert_eq!(e.causes()[0].field, "spec.restartTasks");
    let p = ok(&sim, &restart(&["a"]));
    assert_eq!(names(&p.delete_now), ["run-a"]);
}

#[test]
fn restart_tasks_take_their_dependents_by_run_after_results_and_when() {
    let sim = Sim::new()
        .task("a", json!({}))
        .task("b", json!({"params": [{"name": "p", "value": "$(tasks.a.results.commit)"}]}))
        .task("c", json!({"runAfter": ["b"]}))
        .task("d", json!({"when": [{"input": "$(tasks.a.results.flag)", "operator": "in", "values": ["y"]}]}))
        .task("e", json!({}))
        .task("f", json!({}))
        .ran_all(&["a", "b", "c", "d", "e"], Out::Succeeded)
        .ran("f", Out::Failed);
    let p = ok(&sim, &restart(&["a"]));
    assert_eq!(
        names(&p.delete_now),
        ["run-a", "run-b", "run-c", "run-d", "run-f"]
    );
    assert_eq!(p.preserved, ["e"]);
    let p = ok(&sim, &dflt());
    assert_eq!(names(&p.delete_now), ["run-f"]);
}

#[test]
fn unknown_task_names_are_422_with_their_index() {
    let sim = Sim::new().task("a", json!({})).ran("a", Out::Failed);
    let spec = RetrySpec {
        restart_tasks: vec!["a".into(), "zz".into()],
        acknowledge_non_idempotent: vec!["nope".into()],
        ..Default::default()
    };
    let e = refused(&sim, &spec);
    assert!(matches!(e, Refusal::UnknownTasks { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    let causes = e.causes();
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        ["spec.restartTasks[1]", "spec.acknowledgeNonIdempotent[0]"]
    );
    assert!(e.causes()[0].message.contains("\"zz\"") && e.causes()[0].message.contains("a"));
}

#[test]
fn timed_out_task_is_rerun() {
    let sim = Sim::new()
        .task("a", json!({}))
        .task("b", json!({"runAfter": ["a"]}))
        .ran("a", Out::Timeout)
        .skipped("b", "PipelineRun was stopping");
    let p = ok(&sim, &dflt());
    assert_eq!(names(&p.delete_now), ["run-a"]);
    assert_eq!(
        p.retried[0].previous_reason.as_deref(),
        Some("TaskRunTimeout")
    );
}

#[test]
fn custom_runs_and_child_pipelineruns_are_rerun_like_taskruns() {
    let sim = Sim::new()
        .task(
            "wait",
            json!({"taskRef": {"apiVersion": "example.dev/v1", "kind": "Wait"}}),
        )
        .task(
            "sub",
            json!({"taskRef": null, "pipelineRef": {"name": "child"}}),
        )
        .task("ok", json!({}))
        .child(
            "wait",
            "run-wait",
            "CustomRun",
            Out::Cancelled,
            json!({"spec": {"status": "RunCancelled"}}),
        )
        .child("sub", "run-sub", "PipelineRun", Out::Failed, json!({}))
        .ran("ok", Out::Succeeded);
    let p = ok(&sim, &dflt());
    assert_eq!(
        deleted_now(&p),
        [
            ("run-wait", "CustomRun", "tekton.dev/v1beta1"),
            ("run-sub", "PipelineRun", "tekton.dev/v1")
        ]
    );
    assert_eq!(
        p.retried[0].previous_reason.as_deref(),
        Some("CustomRunCancelled")
    );
    assert_eq!(p.preserved, ["ok"]);
}

#[test]
fn missing_succeeded_child_is_refused_unless_restarted() {
    let mut sim = succeeded_a_and_failed_b(json!({"runAfter": ["a"]}));
    sim.children.retain(|c| c["metadata"]["name"] != "run-a");
    let e = refused(&sim, &dflt());
    assert!(matches!(e, Refusal::MissingChildren { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert!(e.causes()[0].message.contains("run-a") && e.causes()[0].message.contains("\"a\""));
    let p = ok(&sim, &restart(&["a"]));
    assert_eq!(names(&p.delete_now), ["run-b"]);
    assert_eq!(retried_names(&p), ["a", "b"]);
    assert_eq!(p.retried[0].previous_run, None);
    // The dangling reference goes with the reset.
    assert_eq!(
        reset_patch(&p, &sim.run(), time(NOW))["childReferences"],
        json!([])
    );
}

#[test]
fn unfinished_children_are_409_unless_the_run_was_cancelled() {
    let sim = Sim::new()
        .task("a", json!({}))
        .task("b", json!({}))
        .ran("a", Out::Failed)
        .child(
            "b",
            "run-b",
            "TaskRun",
            Out::Running,
            json!({"spec": {"status": "TaskRunCancelled"}}),
        );
    let e = refused(&sim, &dflt());
    assert!(matches!(e, Refusal::ChildrenRunning { .. }), "{e:?}");
    assert_eq!(e.code(), 409);
    assert!(e.to_string().contains("run-b"));
    assert_eq!(e.retry_after_seconds(), Some(5));

    // Cancelled run (fixture cancelled timeline): the cancelling child counts as cancelled.
    let cancelled = sim.clone().outcome("False", "Cancelled");
    let p = ok(&cancelled, &dflt());
    assert_eq!(names(&p.delete_now), ["run-a", "run-b"]);
    assert_eq!(
        p.retried[1].previous_reason.as_deref(),
        Some("TaskRunCancelled")
    );

    // …but a child still running without a cancel request is not settled.
    let mut running = cancelled;
    running.children[1]["spec"] = json!({});
    assert!(matches!(
        refused(&running, &dflt()),
        Refusal::ChildrenRunning { .. }
    ));
}

#[test]
fn deterministic_failures_are_422() {
    for reason in [
        "PipelineInvalidGraph",
        "ParameterMissing",
        "CouldntGetTask",
        "InvalidTaskResultReference",
    ] {
        let sim = Sim::new().task("a", json!({})).outcome("False", reason);
        let e = refused(&sim, &dflt());
        assert_eq!((e.code(), e.label()), (422, "Deterministic"), "{reason}");
        assert!(e.causes()[0].message.contains(reason));
    }
    // Not deterministic: a child create failure may be a webhook outage.
    let sim = Sim::new()
        .task("a", json!({}))
        .outcome("False", "CreateRunFailed");
    let p = ok(&sim, &dflt());
    assert_eq!(retried_names(&p), ["a"]);
}

#[test]
fn succeeded_running_and_pending_are_409() {
    let base = Sim::new().task("a", json!({})).ran("a", Out::Succeeded);
    let e = refused(&base.clone().outcome("True", "Succeeded"), &dflt());
    assert!(matches!(e, Refusal::Succeeded { .. }), "{e:?}");
    assert_eq!(e.code(), 409);
    let e = refused(&base.clone().outcome("True", "Completed"), &dflt());
    assert!(matches!(e, Refusal::Succeeded { .. }), "{e:?}");
    let e = refused(&base.clone().outcome("Unknown", "Running"), &dflt());
    assert!(matches!(e, Refusal::NotDone { .. }), "{e:?}");
    assert_eq!(e.code(), 409);
    let pending = Sim::new()
        .task("a", json!({}))
        .outcome("Unknown", "PipelineRunPending");
    let e = refused(&pending, &dflt());
    assert!(matches!(e, Refusal::Pending { .. }), "{e:?}");
    assert_eq!(e.code(), 409);
}

#[test]
fn preconditions_and_attempts() {
    let sim = Sim::new().task("a", json!({})).ran("a", Out::Failed);
    let with = |uid: Option<&str>, attempt: Option<u32>| RetrySpec {
        preconditions: Some(Preconditions {
            uid: uid.map(Into::into),
            attempt,
        }),
        ..Default::default()
    };
    let e = refused(&sim, &with(Some("other"), None));
    assert!(matches!(e, Refusal::UidMismatch { .. }), "{e:?}");
    assert_eq!(e.code(), 409);
    let e = refused(&sim, &with(None, Some(2)));
    assert!(
        matches!(
            e,
            Refusal::AttemptMismatch {
                wanted: 2,
                actual: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.code(), 409);
    assert!(e.to_string().contains("attempt 1"));
    let p = ok(&sim, &with(Some("run-uid"), Some(1)));
    assert_eq!(p.attempt, 2);
    assert_eq!(p.original.start.as_deref(), Some(START));

    // Already retried once: attempt 2 and the original times come from the record.
    let run = sim.run();
    let record = tekton_retry::retry::record::AttemptRecord {
        uid: "run-uid".into(),
        retry: tekton_retry::retry::record::LastRetry {
            attempt: 2,
            ..Default::default()
        },
        original: tekton_retry::retry::record::OriginalTimes {
            start: Some("2026-11-26T09:59:00Z".into()),
            completion: Some("2026-11-26T10:01:00Z".into()),
        },
        ..Default::default()
    };
    let spec = with(None, Some(2));
    let mut retried = input(&run, &sim.children, &spec, time(NOW));
    retried.record = Some(&record);
    let p = plan(&retried).expect("a plan");
    assert_eq!(p.attempt, 3);
    assert_eq!(
        original_times(&p),
        (Some("2026-11-26T09:59:00Z"), Some("2026-11-26T10:01:00Z"))
    );
    let stale = with(None, Some(1));
    let mut replay = input(&run, &sim.children, &stale, time(NOW));
    replay.record = Some(&record);
    let e = plan(&replay).expect_err("replay");
    assert!(
        matches!(
            e,
            Refusal::AttemptMismatch {
                wanted: 1,
                actual: 2,
                ..
            }
        ),
        "{e:?}"
    );

    // The run's annotations are a mirror anyone may write: a forged attempt or original time
    // changes nothing in the plan.
    let mut forged = sim.run();
    let ann = &mut forged["metadata"]["annotations"];
    ann["retry.tekton.dev/attempt"] = json!("7");
    ann["retry.tekton.dev/original-start-time"] = json!("2000-01-01T00:00:00Z");
    let spec = with(None, Some(1));
    let p = plan(&input(&forged, &sim.children, &spec, time(NOW))).expect("a plan");
    assert_eq!(p.attempt, 2);
    assert_eq!(p.original.start.as_deref(), Some(START));
    forged["metadata"]["annotations"]["retry.tekton.dev/attempt"] = json!("two");
    assert!(plan(&input(&forged, &sim.children, &dflt(), time(NOW))).is_ok());
}

#[test]
fn retryable_opt_out_on_run_or_pipeline() {
    let sim = Sim::new().task("a", json!({})).ran("a", Out::Failed);
    let mut run = sim.run();
    run["metadata"]["annotations"]["retry.tekton.dev/retryable"] = json!("false");
    let spec = dflt();
    let e = plan(&input(&run, &sim.children, &spec, time(NOW))).expect_err("opted out");
    assert!(matches!(e, Refusal::NotRetryable { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert_eq!(
        e.causes()[0].field,
        "metadata.annotations[retry.tekton.dev/retryable]"
    );

    let run = sim.run();
    let pipeline = json!({"metadata": {"name": "p", "annotations": {"retry.tekton.dev/retryable": "false"}}, "spec": {}});
    let mut i = input(&run, &sim.children, &spec, time(NOW));
    i.pipeline = Some(&pipeline);
    let e = plan(&i).expect_err("opted out");
    assert!(matches!(e, Refusal::NotRetryable { .. }), "{e:?}");
    assert!(e.causes()[0].message.contains("Pipeline \"p\""));
}

#[test]
fn non_idempotent_tasks_need_acknowledgement() {
    let sim = Sim::new()
        .task("build", json!({}))
        .task("deploy", json!({"runAfter": ["build"]}))
        .task("notify", json!({"runAfter": ["build"], "taskSpec": {"metadata": {"annotations": {"retry.tekton.dev/idempotent": "false"}}, "steps": []}, "taskRef": null}))
        .task("never", json!({"runAfter": ["deploy"], "taskSpec": {"metadata": {"annotations": {"retry.tekton.dev/idempotent": "false"}}, "steps": []}, "taskRef": null}))
        .ran("build", Out::Failed)
        .child("deploy", "run-deploy", "TaskRun", Out::Succeeded,
               json!({"metadata": {"annotations": {"retry.tekton.dev/idempotent": "false"}}}))
        .ran("notify", Out::Succeeded);
    let e = refused(&sim, &dflt());
    assert!(matches!(e, Refusal::NonIdempotent { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert_eq!(e.causes().len(), 2, "{:?}", e.causes());
    assert!(
        e.causes()[0].message.contains("\"deploy\"")
            && e.causes()[0].message.contains("TaskRun run-deploy")
    );
    assert!(
        e.causes()[1].message.contains("\"notify\"") && e.causes()[1].message.contains("taskSpec")
    );
    assert!(e
        .causes()
        .iter()
        .all(|c| c.field == "spec.acknowledgeNonIdempotent"));
    let spec = RetrySpec {
        acknowledge_non_idempotent: vec!["deploy".into(), "notify".into()],
        ..Default::default()
    };
    let p = ok(&sim, &spec);
    assert_eq!(
        names(&p.delete_now),
        ["run-build", "run-deploy", "run-notify"]
    );
    assert!(
        retried_names(&p).contains(&"never"),
        "a task that never ran needs no acknowledgement"
    );
}

#[test]
fn chains_annotations_are_removed() {
    let sim = Sim::new().task("a", json!({})).ran("a", Out::Failed);
    let mut run = sim.run();
    run["metadata"]["annotations"]["chains.tekton.dev/signed"] = json!("true");
    run["metadata"]["annotations"]["chains.tekton.dev/transparency"] = json!("x");
    let spec = dflt();
    let p = plan(&input(&run, &sim.children, &spec, time(NOW))).expect("a plan");
    assert_eq!(
        p.remove_annotations,
        ["chains.tekton.dev/signed", "chains.tekton.dev/transparency"]
    );
}

#[test]
fn timeouts_zero_tasks_and_adjusted_start() {
    let sim = succeeded_a_and_failed_b(json!({}));
    let spec = dflt();
    let mut run = sim.run();
    run["spec"]["timeouts"] = json!({"pipeline": "0s"});
    let late = time("2026-11-27T10:00:00Z");
    let p = plan(&input(&run, &sim.children, &spec, late)).expect("no timeout");
    assert_eq!(p.remaining_timeout, None);

    // timeouts.tasks is tighter than the pipeline's and binds the DAG tasks.
    run["spec"]["timeouts"] = json!({"pipeline": "1h0m0s", "tasks": "20m"});
    let p = plan(&input(&run, &sim.children, &spec, time(NOW))).expect("a plan");
    assert_eq!(p.remaining_timeout, Some(Duration::from_secs(10 * 60)));

    // Absent: the 1h default.
    run["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("timeouts");
    let p = plan(&input(&run, &sim.children, &spec, time(NOW))).expect("a plan");
    assert_eq!(p.remaining_timeout, Some(Duration::from_secs(50 * 60)));

    // A kept child created before startTime pulls the start back (AdjustStartTime).
    let mut children = sim.children.clone();
    children[0]["metadata"]["creationTimestamp"] = json!("2026-11-26T09:50:00Z");
    let p = plan(&input(&run, &children, &spec, time(NOW))).expect("a plan");
    assert_eq!(p.remaining_timeout, Some(Duration::from_secs(40 * 60)));
}

#[test]
fn stopped_run_finally_clears_spec_and_defers_finally_deletion() {
    let sim = Sim::new()
        .task("a", json!({}))
        .task("b", json!({"runAfter": ["a"]}))
        .finally_task("report", json!({}))
        .ran("a", Out::Succeeded)
        .skipped("b", "PipelineRun was gracefully stopped")
        .ran("report", Out::Succeeded)
        .outcome("False", "Cancelled");
    let mut run = sim.run();
    run["spec"]["status"] = json!("StoppedRunFinally");
    let spec = dflt();
    let p = plan(&input(&run, &sim.children, &spec, time(NOW))).expect("a plan");
    assert!(p.clear_spec_status);
    assert!(p.delete_now.is_empty());
    assert_eq!(names(&p.delete_after_spec_clear), ["run-report"]);
    assert_eq!(retried_names(&p), ["b", "report"]);
    let deletions: Vec<&str> = p.all_deletions().map(|c| c.name.as_str()).collect();
    assert_eq!(deletions, ["run-report"]);
}

#[test]
fn a_failed_finally_run_is_rerun_even_with_keep() {
    let sim = Sim::new()
        .task("a", json!({}))
        .finally_task("report", json!({}))
        .finally_task("notify", json!({}))
        .ran("a", Out::Succeeded)
        .ran("report", Out::Failed)
        .ran("notify", Out::Succeeded);
    let p = ok(&sim, &dflt());
    assert_eq!(names(&p.delete_now), ["run-report", "run-notify"]);
    // Keep keeps only the finally runs that succeeded: Tekton counts a kept failed finally run
    // into the new outcome (getPipelineTasksCount), so keeping it would fail the retry.
    let keep = RetrySpec {
        finally: Some(FinallyPolicy::Keep),
        ..Default::default()
    };
    let p = ok(&sim, &keep);
    assert_eq!(names(&p.delete_now), ["run-report"]);
    assert_eq!(p.preserved, ["a", "notify"]);
}

#[test]
fn pipeline_spec_from_the_pipeline_or_refused() {
    let sim = Sim::new().task("a", json!({})).ran("a", Out::Failed);
    let mut run = sim.run();
    let spec_json = run["status"]["pipelineSpec"].clone();
    run["status"]
        .as_object_mut()
        .expect("status")
        .remove("pipelineSpec");
    let spec = dflt();
    let e = plan(&input(&run, &sim.children, &spec, time(NOW))).expect_err("no spec");
    assert!(matches!(e, Refusal::NoPipelineSpec { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    let pipeline = json!({"metadata": {"name": "p"}, "spec": spec_json});
    let mut i = input(&run, &sim.children, &spec, time(NOW));
    i.pipeline = Some(&pipeline);
    assert_eq!(names(&plan(&i).expect("a plan").delete_now), ["run-a"]);
}

#[test]
fn unreferenced_children_are_adopted_and_foreign_ones_ignored() {
    let mut sim = succeeded_a_and_failed_b(json!({}));
    // b's reference was dropped but its run exists (fixture childrefs v1: Tekton re-adopts it).
    sim.refs.retain(|r| r["name"] != "run-b");
    // A run of another PipelineRun and a run of a task the pipeline does not have.
    let mut foreign = sim.children[1].clone();
    foreign["metadata"]["name"] = json!("other-b");
    foreign["metadata"]["labels"]["tekton.dev/pipelineRun"] = json!("other");
    let mut stray = sim.children[1].clone();
    stray["metadata"]["name"] = json!("run-gone");
    stray["metadata"]["labels"]["tekton.dev/pipelineTask"] = json!("gone");
    sim.children.push(foreign);
    sim.children.push(stray);
    let p = ok(&sim, &dflt());
    assert_eq!(names(&p.delete_now), ["run-b"]);
    assert_eq!(p.preserved, ["a"]);
}

#[test]
fn workspace_claims_checked_only_when_known() {
    let ws = json!({"workspaces": [{"name": "w", "workspace": "src"}]});
    let sim = Sim::new()
        .task("a", ws.clone())
        .task("b", ws.clone())
        .task("c", json!({"workspaces": [{"name": "scratch", "workspace": "tmp"}]}))
        .ran("a", Out::Succeeded)
        .child("b", "run-b", "TaskRun", Out::Failed, json!({"spec": {"workspaces": [{"name": "w", "persistentVolumeClaim": {"claimName": "data"}}]}}))
        .ran("c", Out::Failed);
    let mut run = sim.run();
    run["spec"]["workspaces"] = json!([
        {"name": "src", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "tmp", "emptyDir": {}}
    ]);
    let spec = dflt();
    assert!(plan(&input(&run, &sim.children, &spec, time(NOW))).is_ok());
    let none = pvcs(&["unrelated"]);
    let mut i = input(&run, &sim.children, &spec, time(NOW));
    i.existing_pvcs = Some(&none);
    let e = plan(&i).expect_err("gone");
    assert!(matches!(e, Refusal::WorkspaceGone { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert_eq!(
        e.causes().len(),
        1,
        "emptyDir is never a hazard: {:?}",
        e.causes()
    );
    assert_eq!(e.causes()[0].field, "pipelineRun.spec.workspaces[src]");
    // A user's claim is never created again, even when the retry starts over.
    let all = restart(&["a", "b", "c"]);
    let mut i = input(&run, &sim.children, &all, time(NOW));
    i.existing_pvcs = Some(&none);
    assert!(matches!(
        plan(&i).expect_err("gone"),
        Refusal::WorkspaceGone { .. }
    ));

    // Tekton's auto-cleanup deletes template claims at completion, checked or not.
    run["spec"]["workspaces"] = json!([{"name": "src", "volumeClaimTemplate": {"spec": {}}}]);
    run["metadata"]["annotations"]["tekton.dev/auto-cleanup-pvc"] = json!("true");
    let e = plan(&input(&run, &sim.children, &spec, time(NOW))).expect_err("auto-cleaned");
    assert!(matches!(e, Refusal::WorkspaceGone { .. }), "{e:?}");
    assert!(e.causes()[0].message.contains("\"data\""));
}

#[test]
fn status_patch_leaves_everything_else_alone() {
    let sim = succeeded_a_and_failed_b(json!({"runAfter": ["a"]}));
    let run = sim.run();
    let p = ok(&sim, &dflt());
    let mut after = run.clone();
    json_patch::merge(
        &mut after,
        &json!({"status": reset_patch(&p, &run, time(NOW))}),
    );
    for keep in ["startTime", "pipelineSpec", "provenance", "futureField"] {
        assert_eq!(after["status"][keep], run["status"][keep], "{keep}");
    }
    for gone in [
        "completionTime",
        "skippedTasks",
        "finallyStartTime",
        "results",
    ] {
        assert!(after["status"].get(gone).is_none(), "{gone}");
    }
    assert_eq!(after["status"]["conditions"][0]["status"], "Unknown");
    assert_eq!(after["status"]["conditions"][0]["lastTransitionTime"], NOW);
    let refs: Vec<&Value> = after["status"]["childReferences"]
        .as_array()
        .expect("refs")
        .iter()
        .collect();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["name"], "run-a");
}

#[test]
fn webhook_inline_spec_rejection_becomes_a_422() {
    use tekton_retry::retry::planner::inline_spec_refusal;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/tekton/retries/06-status-write-with-disable-inline-spec.error.txt"
    ))
    .expect("fixture");
    let line = text
        .lines()
        .find(|l| l.starts_with("Error from server"))
        .expect("an error line");
    let e = inline_spec_refusal("retry-run", line).expect("recognised");
    assert!(matches!(e, Refusal::InlineSpecDisabled { .. }), "{e:?}");
    assert_eq!(e.code(), 422);
    assert_eq!(e.causes()[0].field, "pipelineRun.spec.pipelineSpec");
    assert_eq!(e.run(), Some("retry-run"));
    assert!(inline_spec_refusal("r", "the object has been modified").is_none());
    assert!(inline_spec_refusal("r", "must not set the field(s): spec.foo").is_none());
}

#[test]
fn children_without_kind_take_it_from_their_reference() {
    let mut sim = Sim::new()
        .task("a", json!({}))
        .task(
            "wait",
            json!({"taskRef": {"apiVersion": "example.dev/v1", "kind": "Wait"}}),
        )
        .ran("a", Out::Failed)
        .child("wait", "run-wait", "CustomRun", Out::Failed, json!({}));
    for c in &mut sim.children {
        let o = c.as_object_mut().expect("object");
        o.remove("kind");
        o.remove("apiVersion");
    }
    let p = ok(&sim, &dflt());
    assert_eq!(
        deleted_now(&p),
        [
            ("run-a", "TaskRun", "tekton.dev/v1"),
            ("run-wait", "CustomRun", "tekton.dev/v1beta1")
        ]
    );
}

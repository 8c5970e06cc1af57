//! The planner's guards that only the sandbox reached before: which `spec.managedBy` is Tekton's,
//! when `PipelineValidationFailed` is a runtime outcome, which Tasks Tekton fetches again, and
//! `when` expressions that read results inside their `values`.

use crate::planner_common;

use planner_common::{input, time, Out, Sim, NOW};
use serde_json::{json, Value};
use tekton_retry::api::RetrySpec;
use tekton_retry::retry::planner::{local_task_refs, plan, TEKTON_MANAGED_BY};
use tekton_retry::retry::{Plan, Refusal};

fn plan_of(sim: &Sim, run: &Value) -> Result<Plan, Refusal> {
    plan(&input(run, &sim.children, &RetrySpec::default(), time(NOW)))
}

#[test]
fn only_a_run_managed_by_another_controller_is_refused_as_managed_elsewhere() {
    let sim = Sim::new().task("a", json!({})).ran("a", Out::Failed);
    for (managed_by, elsewhere) in [
        (None, false),
        (Some(TEKTON_MANAGED_BY), false),
        (Some("example.dev/other-controller"), true),
    ] {
        let mut run = sim.run();
        if let Some(m) = managed_by {
            run["spec"]["managedBy"] = json!(m);
        }
        match plan_of(&sim, &run) {
            Err(Refusal::ManagedElsewhere { managed_by: m, .. }) => {
                assert!(elsewhere, "{managed_by:?} refused");
                assert_eq!(Some(m.as_str()), managed_by);
            }
            Err(other) => panic!("{managed_by:?}: unexpected refusal {other}"),
            Ok(p) => {
                assert!(!elsewhere, "{managed_by:?} planned");
                assert_eq!(p.retried.len(), 1);
            }
        }
    }
}

#[test]
fn pipeline_validation_failed_is_retried_only_as_the_runtime_outcome_of_a_missing_result() {
    // pipelinerunstate.go `GetPipelineConditionStatus` adds ", Failed Validation: N (…)" to the
    // message when a task failed for a missing result: re-running its producer can recover it.
    let runtime =
        "Tasks Completed: 2 (Failed: 1, Cancelled 0), Skipped: 0, Failed Validation: 1 (b)";
    let sim = Sim::new()
        .task("a", json!({}))
        .task("b", json!({}))
        .ran("a", Out::Succeeded)
        .ran("b", Out::Failed);
    for (reason, message, retried) in [
        ("PipelineValidationFailed", runtime, true),
        ("PipelineValidationFailed", "invalid pipeline spec", false),
        ("CouldntGetPipeline", runtime, false),
        ("Failed", runtime, true),
    ] {
        let mut run = sim.run();
        run["status"]["conditions"][0]["reason"] = json!(reason);
        run["status"]["conditions"][0]["message"] = json!(message);
        match plan_of(&sim, &run) {
            Ok(p) => {
                assert!(retried, "{reason} / {message}: planned");
                assert_eq!(p.retried.len(), 1);
            }
            Err(Refusal::Deterministic { reason: r, .. }) => {
                assert!(!retried, "{reason} / {message}: refused");
                assert_eq!(r, reason);
            }
            Err(other) => panic!("{reason}: unexpected refusal {other}"),
        }
    }
}

#[test]
fn the_tasks_fetched_again_are_the_plain_local_refs_of_tasks_without_a_run_after_the_reset() {
    let task_ref = |r: Value| json!({ "taskRef": r });
    let sim = Sim::new()
        .task(
            "deleted",
            task_ref(json!({"kind": "Task", "name": "build"})),
        )
        .task("kept", task_ref(json!({"kind": null, "name": "lint"})))
        .task("skipped", task_ref(json!({"kind": null, "name": "deploy"})))
        .task(
            "resolved",
            task_ref(json!({"name": "x", "resolver": "git"})),
        )
        .task(
            "cluster",
            task_ref(json!({"kind": "ClusterTask", "name": "ct"})),
        )
        .task(
            "custom",
            task_ref(json!({"kind": null, "apiVersion": "example.dev/v1", "name": "ex"})),
        )
        .task(
            "tekton-api",
            task_ref(json!({"kind": null, "apiVersion": "tekton.dev/v1", "name": "tv"})),
        )
        .task(
            "empty-api",
            task_ref(json!({"kind": null, "apiVersion": "", "name": "ea"})),
        )
        .task("unnamed", task_ref(json!({"kind": null, "name": ""})))
        .task(
            "inline",
            json!({"taskRef": null, "taskSpec": {"steps": []}}),
        )
        .ran("deleted", Out::Failed)
        .ran("kept", Out::Succeeded)
        .skipped("skipped", "Parent Tasks were skipped")
        .ran_all(
            &[
                "resolved",
                "cluster",
                "custom",
                "tekton-api",
                "empty-api",
                "unnamed",
                "inline",
            ],
            Out::Failed,
        );
    let run = sim.run();
    let spec = RetrySpec::default();
    let input = input(&run, &sim.children, &spec, time(NOW));
    let plan = plan(&input).expect("plan");
    let mut refs = local_task_refs(&input, &plan);
    refs.sort();
    let want = [
        ("deleted", "build"),
        ("empty-api", "ea"),
        ("skipped", "deploy"),
        ("tekton-api", "tv"),
    ];
    assert_eq!(
        refs,
        want.map(|(t, n)| (t.to_string(), n.to_string())),
        "a kept task with its TaskRun, resolver and cluster-scoped or foreign references and \
         inline specs are not fetched from the namespace"
    );
}

#[test]
fn a_when_skipped_task_whose_values_read_a_result_that_runs_again_is_retried() {
    let when = json!({"when": [{"input": "true", "operator": "in",
                                "values": ["$(tasks.x.results.go)"]}]});
    let sim = Sim::new()
        .task("x", json!({}))
        .task("w", when)
        .ran("x", Out::Failed)
        .skipped("w", "When Expressions evaluated to false");
    let p = plan_of(&sim, &sim.run()).expect("plan");
    let retried: Vec<&str> = p.retried.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(retried, ["x", "w"], "w may now be true");
}

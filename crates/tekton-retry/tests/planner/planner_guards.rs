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

/// A task skipped by `when`s, after `x` (which fails and runs again) and with `first` as its
/// first `when`; its second `when` reads a result of `x`.
fn when_skipped_after_x(first: Value) -> Sim {
    let reads_x = json!({"input": "$(tasks.x.results.go)", "operator": "in", "values": ["true"]});
    Sim::new()
        .task("x", json!({}))
        .task("w", json!({ "when": [first, reads_x] }))
        .ran("x", Out::Failed)
        .skipped("w", "When Expressions evaluated to false")
}

#[test]
fn a_when_that_is_false_whatever_runs_keeps_its_task_skipped() {
    for (first, skipped_again) in [
        // CEL without variables: Tekton evaluates it to the same value again.
        (json!({"cel": "'a' == 'b'"}), true),
        (json!({"cel": "'a' == 'a'"}), false),
        // A variable is substituted first: its value is not known here.
        (json!({"cel": "'$(params.env)' == 'b'"}), false),
        (
            json!({"input": "a", "operator": "notin", "values": ["a"]}),
            true,
        ),
        (
            json!({"input": "a", "operator": "notin", "values": ["b"]}),
            false,
        ),
        (
            json!({"input": "a", "operator": "in", "values": ["b"]}),
            true,
        ),
    ] {
        let sim = when_skipped_after_x(first.clone());
        let p = plan_of(&sim, &sim.run()).expect("plan");
        let retried: Vec<&str> = p.retried.iter().map(|r| r.name.as_str()).collect();
        let want: &[&str] = if skipped_again { &["x"] } else { &["x", "w"] };
        assert_eq!(retried, want, "{first}");
    }
}

/// A run whose pipeline workspace `shared` is bound as `binding`, task `a` succeeded and is kept
/// (`a_mounts`: the claim its TaskRun mounted for its workspace `src`), task `b` failed and runs
/// again; both bind `shared` as `src`.
fn workspace_run(binding: Value, a_mounts: Option<&str>) -> (Sim, Value) {
    let uses = json!({"workspaces": [{"name": "src", "workspace": "shared"}]});
    let mounted = a_mounts.map_or(json!({}), |claim| {
        json!({"spec": {"workspaces": [{"name": "src", "persistentVolumeClaim": {"claimName": claim}}]}})
    });
    let sim = Sim::new()
        .task("a", uses.clone())
        .task("b", uses)
        .child("a", "run-a", "TaskRun", Out::Succeeded, mounted)
        .ran("b", Out::Failed);
    let mut run = sim.run();
    let mut ws = binding;
    ws["name"] = json!("shared");
    run["spec"]["workspaces"] = json!([ws]);
    (sim, run)
}

fn gone_claims(sim: &Sim, run: &Value, existing: Option<&[&str]>) -> Vec<(Option<String>, String)> {
    let pvcs: std::collections::BTreeSet<String> = existing
        .unwrap_or_default()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let spec = RetrySpec::default();
    let mut i = input(run, &sim.children, &spec, time(NOW));
    if existing.is_some() {
        i.existing_pvcs = Some(&pvcs);
    }
    match plan(&i) {
        Ok(_) => Vec::new(),
        Err(Refusal::WorkspaceGone { gone, .. }) => {
            gone.into_iter().map(|c| (c.workspace, c.claim)).collect()
        }
        Err(other) => panic!("unexpected refusal {other}"),
    }
}

#[test]
fn a_claim_named_by_the_run_or_mounted_by_a_kept_run_is_checked_for_the_task_that_runs_again() {
    let named = json!({"persistentVolumeClaim": {"claimName": "data"}});
    let (sim, run) = workspace_run(named, None);
    assert_eq!(
        gone_claims(&sim, &run, Some(&[])),
        [(Some("shared".to_string()), "data".to_string())]
    );
    assert!(gone_claims(&sim, &run, Some(&["data"])).is_empty());
    // An empty claim name names no claim.
    let (sim, run) = workspace_run(json!({"persistentVolumeClaim": {"claimName": ""}}), None);
    assert!(gone_claims(&sim, &run, Some(&[])).is_empty());

    // A template's claim is known from the kept run that mounted it.
    let template = json!({"volumeClaimTemplate": {"spec": {}}});
    let (sim, run) = workspace_run(template, Some("pvc-1dbde596f6"));
    assert_eq!(
        gone_claims(&sim, &run, Some(&[])),
        [(Some("shared".to_string()), "pvc-1dbde596f6".to_string())]
    );
}

#[test]
fn auto_cleanup_makes_a_template_claim_gone_once_whether_or_not_its_name_is_known() {
    let template = json!({"volumeClaimTemplate": {"spec": {}}});
    let cleaned = |sim: &Sim, mut run: Value| {
        run["metadata"]["annotations"]["tekton.dev/auto-cleanup-pvc"] = json!("true");
        (sim.clone(), run)
    };
    // Name known from the kept run: that claim, once.
    let (sim, run) = workspace_run(template.clone(), Some("pvc-1dbde596f6"));
    let (sim, run) = cleaned(&sim, run);
    assert_eq!(
        gone_claims(&sim, &run, None),
        [(Some("shared".to_string()), "pvc-1dbde596f6".to_string())]
    );
    // Name unknown (no run mounted it) and claims not listed: gone all the same.
    let (sim, run) = workspace_run(template, None);
    let (sim, run) = cleaned(&sim, run);
    assert_eq!(
        gone_claims(&sim, &run, None),
        [(
            Some("shared".to_string()),
            "(from volumeClaimTemplate)".to_string()
        )]
    );
    // Claims listed and none known for the workspace: nothing to name.
    assert!(gone_claims(&sim, &run, Some(&[])).is_empty());
}

#[test]
fn finally_tasks_that_succeeded_are_no_work_alone() {
    // Every task succeeded, finally included: running the finally tasks again would end the same.
    let done = |finally: Out| {
        Sim::new()
            .task("a", json!({}))
            .finally_task("f", json!({}))
            .ran("a", Out::Succeeded)
            .ran("f", finally)
            .outcome("False", "Cancelled")
    };
    let sim = done(Out::Succeeded);
    let refusal = plan_of(&sim, &sim.run()).expect_err("nothing to do");
    assert!(
        matches!(refusal, Refusal::NothingToRetry { .. }),
        "{refusal:?}"
    );
    // A finally task that failed is work.
    let sim = done(Out::Failed);
    let p = plan_of(&sim, &sim.run()).expect("planned");
    let retried: Vec<&str> = p.retried.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(retried, ["f"]);
}

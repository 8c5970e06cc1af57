//! What a retry would run into after the reset, read from the kept runs: results a kept producer
//! never wrote, and an affinity assistant Tekton deleted when the run ended.

use crate::planner_common;

use planner_common::{input, time, Out, Sim, NOW};
use serde_json::{json, Value};
use tekton_retry::api::RetrySpec;
use tekton_retry::retry::planner::plan;
use tekton_retry::retry::{Plan, Refusal};

fn plan_with(sim: &Sim, spec: &RetrySpec) -> Result<Plan, Refusal> {
    let run = sim.run();
    plan(&input(&run, &sim.children, spec, time(NOW)))
}

/// Producer `p` succeeded without writing its result `out`; consumer `c` (with `consumer` merged
/// into it) reads it and failed.
fn producer_without_result(consumer: Value) -> Sim {
    let mut c = json!({"params": [{"name": "x", "value": "$(tasks.p.results.out)"}]});
    json_patch::merge(&mut c, &consumer);
    Sim::new()
        .task("p", json!({}))
        .task("c", c)
        .ran("p", Out::Succeeded)
        .ran("c", Out::Failed)
}

#[test]
fn a_consumer_of_a_result_its_kept_producer_never_wrote_is_refused_unless_the_producer_runs_again()
{
    let sim = producer_without_result(json!({}));
    match plan_with(&sim, &RetrySpec::default()) {
        Err(Refusal::MissingResults { missing, .. }) => {
            let m = &missing[0];
            assert_eq!(
                (m.consumer.as_str(), m.producer.as_str(), m.result.as_str()),
                ("c", "p", "out")
            );
            assert_eq!(m.producer_run, "run-p");
        }
        other => panic!("expected MissingResults, got {other:?}"),
    }
    let restart = RetrySpec {
        restart_tasks: vec!["p".into()],
        ..Default::default()
    };
    assert!(plan_with(&sim, &restart).is_ok(), "p writes it again");

    // Under onError: continue, Tekton skips the consumer ("Results were missing") instead of
    // failing the run: asked to run it again, nothing is refused.
    let sim = producer_without_result(json!({"onError": "continue"}));
    let again = RetrySpec {
        restart_tasks: vec!["c".into()],
        ..Default::default()
    };
    let p = plan_with(&sim, &again).expect("planned");
    assert_eq!(p.retried.len(), 1);
}

const ASSISTANT: &str = "affinity-assistant-0b1c";

/// A task binding the pipeline workspace `data` (a claim) when `claim`, else nothing.
fn task(claim: bool) -> Value {
    if claim {
        json!({"workspaces": [{"name": "src", "workspace": "data"}]})
    } else {
        json!({})
    }
}

/// A TaskRun pinned to the assistant when `pinned`.
fn pinned(pinned: bool) -> Value {
    if pinned {
        json!({"metadata": {"annotations": {"pipeline.tekton.dev/affinity-assistant": ASSISTANT}}})
    } else {
        json!({})
    }
}

/// Task `a` succeeded (kept), task `b` failed; each binds the claim workspace or not, and each
/// run is pinned to the assistant or not.
fn coscheduled(a: (bool, bool), b: (bool, bool)) -> Sim {
    Sim::new()
        .task("a", task(a.0))
        .task("b", task(b.0))
        .child("a", "run-a", "TaskRun", Out::Succeeded, pinned(a.1))
        .child("b", "run-b", "TaskRun", Out::Failed, pinned(b.1))
}

fn with_claim_workspace(sim: &Sim) -> Value {
    let mut run = sim.run();
    run["spec"]["workspaces"] =
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "src"}}]);
    run
}

fn assistant_lost(sim: &Sim, spec: &RetrySpec) -> bool {
    let run = with_claim_workspace(sim);
    match plan(&input(&run, &sim.children, spec, time(NOW))) {
        Ok(_) => false,
        Err(Refusal::AffinityAssistantGone { assistant, .. }) => {
            assert_eq!(assistant, ASSISTANT);
            true
        }
        Err(other) => panic!("unexpected refusal {other}"),
    }
}

#[test]
fn a_task_pinned_again_to_the_deleted_assistant_beside_a_kept_run_is_refused() {
    // ((a binds the claim, a pinned), (b binds the claim, b pinned)) → refused
    for (a, b, lost) in [
        // Per workspace (coschedule: workspaces): only claim tasks are pinned.
        ((true, true), (true, true), true),
        ((true, true), (false, false), false),
        // Per pipelinerun: every task is pinned, claim or not.
        ((false, true), (false, true), true),
        // The runs disagree (a pinned without a claim, b not pinned): read as per pipelinerun.
        ((false, true), (false, false), true),
    ] {
        let sim = coscheduled(a, b);
        assert_eq!(
            assistant_lost(&sim, &RetrySpec::default()),
            lost,
            "a {a:?}, b {b:?}"
        );
    }
}

#[test]
fn with_no_run_kept_tekton_starts_over_with_a_new_assistant() {
    let sim = coscheduled((true, true), (true, true));
    let everything = RetrySpec {
        restart_tasks: vec!["a".into()],
        ..Default::default()
    };
    assert!(!assistant_lost(&sim, &everything));
}

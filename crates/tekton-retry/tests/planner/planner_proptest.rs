//! Properties of the planner on generated DAGs, outcomes, restartTasks and finally policies.

use crate::planner_common;

use std::collections::{BTreeMap, BTreeSet};

use planner_common::{input, reset_patch, time, Out, Sim, NOW};
use proptest::prelude::*;
use serde_json::{json, Value};
use tekton_retry::api::{FinallyPolicy, RetrySpec};
use tekton_retry::retry::planner::plan;

/// What happened to a generated task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gen {
    Ran(Out),
    /// No run, listed in skippedTasks.
    Skipped,
    /// No run at all.
    None,
}

#[derive(Clone, Debug)]
struct Case {
    /// Per DAG task: earlier tasks it depends on (runAfter or result reference), outcome,
    /// onError continue, matrix width.
    deps: Vec<(Vec<usize>, bool)>,
    outcomes: Vec<Gen>,
    on_error_continue: Vec<bool>,
    width: Vec<usize>,
    finally: Vec<Gen>,
    restart: Vec<usize>,
    keep_finally: bool,
    cancel: Option<&'static str>,
}

fn gen_outcome() -> impl Strategy<Value = Gen> {
    prop_oneof![
        4 => Just(Gen::Ran(Out::Succeeded)),
        2 => Just(Gen::Ran(Out::Failed)),
        1 => Just(Gen::Ran(Out::Cancelled)),
        1 => Just(Gen::Ran(Out::Timeout)),
        1 => Just(Gen::Skipped),
        1 => Just(Gen::None),
    ]
}

fn gen_case() -> impl Strategy<Value = Case> {
    (1usize..10).prop_flat_map(|n| {
        (
            proptest::collection::vec(
                (proptest::collection::vec(any::<bool>(), n), any::<bool>()),
                n,
            ),
            proptest::collection::vec(gen_outcome(), n),
            proptest::collection::vec(proptest::bool::weighted(0.2), n),
            proptest::collection::vec(1usize..=3, n),
            proptest::collection::vec(
                prop_oneof![
                    Just(Gen::Ran(Out::Succeeded)),
                    Just(Gen::Ran(Out::Failed)),
                    Just(Gen::None)
                ],
                0..3,
            ),
            proptest::collection::vec(0usize..n, 0..3),
            any::<bool>(),
            prop_oneof![
                3 => Just(None),
                1 => Just(Some("Cancelled")),
                1 => Just(Some("CancelledRunFinally")),
            ],
        )
            .prop_map(
                move |(edges, outcomes, oec, width, finally, restart, keep, cancel)| Case {
                    deps: edges
                        .into_iter()
                        .enumerate()
                        .map(|(i, (bits, by_result))| {
                            let deps = bits
                                .into_iter()
                                .take(i)
                                .enumerate()
                                .filter(|(_, b)| *b)
                                .map(|(j, _)| j)
                                .collect();
                            (deps, by_result)
                        })
                        .collect(),
                    outcomes,
                    on_error_continue: oec,
                    width,
                    finally,
                    restart,
                    keep_finally: keep,
                    cancel,
                },
            )
    })
}

fn tname(i: usize) -> String {
    format!("t{i}")
}

fn fname(i: usize) -> String {
    format!("f{i}")
}

/// Builds the run, its children and the request.
fn build(case: &Case) -> (Value, Vec<Value>, RetrySpec) {
    let mut sim = Sim::new();
    for (i, (deps, by_result)) in case.deps.iter().enumerate() {
        let names: Vec<String> = deps.iter().map(|&j| tname(j)).collect();
        let mut extra = if *by_result {
            let params: Vec<Value> = names
                .iter()
                .map(|d| json!({"name": format!("from-{d}"), "value": format!("$(tasks.{d}.results.out)")}))
                .collect();
            json!({ "params": params })
        } else {
            json!({ "runAfter": names })
        };
        if case.on_error_continue[i] {
            extra["onError"] = json!("continue");
        }
        if case.width[i] > 1 {
            extra["matrix"] = json!({"params": [{"name": "p", "value": ["x", "y", "z"]}]});
        }
        sim = sim.task(&tname(i), extra);
    }
    for i in 0..case.finally.len() {
        sim = sim.finally_task(&fname(i), json!({}));
    }
    let runs = |sim: Sim, task: &str, width: usize, gen: Gen| match gen {
        Gen::Ran(out) if width > 1 => (0..width).fold(sim, |s, k| {
            // One combination carries the outcome, the others succeeded.
            let o = if k == width - 1 { out } else { Out::Succeeded };
            let name = format!("run-{task}-{k}");
            s.child(task, &name, "TaskRun", o, json!({}))
        }),
        Gen::Ran(out) => sim.ran(task, out),
        Gen::Skipped => sim.skipped(task, "PipelineRun was stopping"),
        Gen::None => sim,
    };
    for (i, g) in case.outcomes.iter().enumerate() {
        sim = runs(sim, &tname(i), case.width[i], *g);
    }
    for (i, g) in case.finally.iter().enumerate() {
        sim = runs(sim, &fname(i), 1, *g);
    }
    if case.cancel.is_some() {
        sim = sim.outcome("False", "Cancelled");
    }
    let mut run = sim.run();
    if let Some(c) = case.cancel {
        run["spec"]["status"] = json!(c);
    }
    let spec = RetrySpec {
        restart_tasks: case.restart.iter().map(|&i| tname(i)).collect(),
        finally: Some(if case.keep_finally {
            FinallyPolicy::Keep
        } else {
            FinallyPolicy::Rerun
        }),
        ..Default::default()
    };
    (run, sim.children, spec)
}

fn must_rerun(case: &Case, i: usize) -> bool {
    match case.outcomes[i] {
        Gen::Ran(Out::Cancelled) => true,
        Gen::Ran(Out::Failed | Out::Timeout) => !case.on_error_continue[i],
        _ => false,
    }
}

/// DAG tasks that may be re-run: those that must, restartTasks, and everything downstream of
/// them — computed by fixpoint, independently of the planner's traversal.
fn allowed_dag(case: &Case) -> BTreeSet<usize> {
    let mut set: BTreeSet<usize> = (0..case.deps.len())
        .filter(|&i| must_rerun(case, i) || case.restart.contains(&i))
        .collect();
    loop {
        let before = set.len();
        for (i, (deps, _)) in case.deps.iter().enumerate() {
            if deps.iter().any(|d| set.contains(d)) {
                set.insert(i);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// Pipeline task of each child run name.
fn task_of(children: &[Value]) -> BTreeMap<String, String> {
    children
        .iter()
        .map(|c| {
            (
                c["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                c["metadata"]["labels"]["tekton.dev/pipelineTask"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn succeeded_runs_outside_the_rerun_closure_are_never_deleted(case in gen_case()) {
        let (run, children, spec) = build(&case);
        let Ok(p) = plan(&input(&run, &children, &spec, time(NOW))) else { return Ok(()); };
        let allowed = allowed_dag(&case);
        let tasks = task_of(&children);
        for c in p.all_deletions() {
            let task = &tasks[&c.name];
            if let Some(i) = task.strip_prefix('t').and_then(|n| n.parse::<usize>().ok()) {
                prop_assert!(allowed.contains(&i), "deleted {} of {} outside the closure", c.name, task);
            } else {
                // Keep keeps every finally run that succeeded.
                let i: usize = task[1..].parse().expect("finally index");
                prop_assert!(
                    !case.keep_finally || case.finally[i] != Gen::Ran(Out::Succeeded),
                    "succeeded finally run {} deleted under Keep", c.name
                );
            }
        }
    }

    #[test]
    fn every_failed_or_cancelled_task_is_rerun_or_refused(case in gen_case()) {
        let (run, children, spec) = build(&case);
        let Ok(p) = plan(&input(&run, &children, &spec, time(NOW))) else { return Ok(()); };
        let deleted: BTreeSet<&str> = p.all_deletions().map(|c| c.name.as_str()).collect();
        let retried: BTreeSet<&str> = p.retried.iter().map(|r| r.name.as_str()).collect();
        for (name, task) in task_of(&children) {
            let must = match task.strip_prefix('t').and_then(|n| n.parse::<usize>().ok()) {
                Some(i) => must_rerun(&case, i),
                None => {
                    let i: usize = task[1..].parse().expect("finally index");
                    // Failed finally runs go under Keep too (Tekton would count them again).
                    case.finally[i] == Gen::Ran(Out::Failed)
                }
            };
            if must {
                prop_assert!(deleted.contains(name.as_str()), "{name} of {task} kept");
                prop_assert!(retried.contains(task.as_str()));
            }
        }
        // Retried and preserved partition the pipeline tasks.
        let preserved: BTreeSet<&str> = p.preserved.iter().map(String::as_str).collect();
        prop_assert!(retried.is_disjoint(&preserved));
        prop_assert_eq!(retried.len() + preserved.len(), case.deps.len() + case.finally.len());
    }

    #[test]
    fn status_patch_touches_only_the_reset_fields(case in gen_case()) {
        let (run, children, spec) = build(&case);
        let Ok(p) = plan(&input(&run, &children, &spec, time(NOW))) else { return Ok(()); };
        let patch = reset_patch(&p, &run, time(NOW));
        let keys: BTreeSet<&str> = patch.as_object().expect("object").keys().map(String::as_str).collect();
        let allowed: BTreeSet<&str> = ["conditions", "completionTime", "finallyStartTime", "skippedTasks", "results", "childReferences"].into();
        prop_assert!(keys.is_subset(&allowed), "{keys:?}");
        let mut after = run.clone();
        json_patch::merge(&mut after, &json!({"status": reset_patch(&p, &run, time(NOW))}));
        for keep in ["startTime", "pipelineSpec", "provenance", "futureField"] {
            prop_assert_eq!(&after["status"][keep], &run["status"][keep]);
        }
        prop_assert_eq!(&after["metadata"], &run["metadata"]);
        prop_assert_eq!(&after["spec"], &run["spec"]);
        let deleted: BTreeSet<&str> = p.delete_now.iter().map(|c| c.name.as_str()).collect();
        for r in after["status"]["childReferences"].as_array().expect("refs") {
            prop_assert!(!deleted.contains(r["name"].as_str().unwrap_or_default()));
        }
    }

    #[test]
    fn same_input_same_plan_whatever_the_child_order(case in gen_case()) {
        let (run, children, spec) = build(&case);
        let a = plan(&input(&run, &children, &spec, time(NOW)));
        let b = plan(&input(&run, &children, &spec, time(NOW)));
        prop_assert_eq!(&a, &b);
        let mut reversed = children.clone();
        reversed.reverse();
        let c = plan(&input(&run, &reversed, &spec, time(NOW)));
        prop_assert_eq!(&a, &c);
    }
}

#[test]
fn plans_a_thousand_tasks() {
    // A wide, deep DAG: task i runs after i-1 and i/2; the first task failed, everything else
    // succeeded or never ran.
    let n = 1000;
    let mut sim = Sim::new();
    for i in 0..n {
        let deps: Vec<String> = if i == 0 {
            vec![]
        } else {
            vec![tname(i - 1), tname(i / 2)]
        };
        sim = sim.task(&tname(i), json!({"runAfter": deps}));
    }
    sim = sim.ran(&tname(0), Out::Failed);
    for i in 1..n / 2 {
        sim = sim.ran(&tname(i), Out::Succeeded);
    }
    let run = sim.run();
    let spec = RetrySpec::default();
    let p = plan(&input(&run, &sim.children, &spec, time(NOW))).expect("a plan");
    assert_eq!(p.delete_now.len(), n / 2);
    assert_eq!(p.retried.len(), n);
    assert!(p.preserved.is_empty());
}

#[test]
fn generated_cases_mostly_produce_plans() {
    // The properties above skip refused cases; make sure they are not vacuous.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = gen_case();
    let mut planned = 0;
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..300 {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        let (run, children, spec) = build(&case);
        match plan(&input(&run, &children, &spec, time(NOW))) {
            Ok(_) => planned += 1,
            Err(e) => *refusals.entry(e.label().to_string()).or_default() += 1,
        }
    }
    eprintln!("{planned}/300 planned; refusals: {refusals:?}");
    assert!(
        planned >= 150,
        "only {planned}/300 planned; refusals: {refusals:?}"
    );
}

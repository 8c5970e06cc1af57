//! Properties of the simulator over generated pipelines: random DAGs (runAfter edges to earlier
//! tasks), an optional finally task and a random set of tasks that fail on their first attempt.
//! Every run finishes; the condition message accounts for every task; no TaskRun starts before its
//! parents succeeded; and the recommended reset (delete failed and finally TaskRuns, keep the
//! succeeded references) makes the run succeed.

use chrono::TimeDelta;
use proptest::prelude::*;
use serde_json::{json, Value};
use tekton_retry_sandbox::simulator::memory::{Kind, MemoryCluster, Propagation};
use tekton_retry_sandbox::simulator::util;

#[derive(Debug, Clone)]
struct Case {
    parents: Vec<Vec<usize>>,
    fails: Vec<bool>,
    finally: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..6)
        .prop_flat_map(|n| {
            let parents = (0..n)
                .map(|i| {
                    proptest::collection::vec(0..i.max(1), 0..=i.min(2)).prop_map(move |v| {
                        if i == 0 {
                            Vec::new()
                        } else {
                            v
                        }
                    })
                })
                .collect::<Vec<_>>();
            (
                parents,
                proptest::collection::vec(any::<bool>(), n),
                any::<bool>(),
            )
        })
        .prop_map(|(mut parents, fails, finally)| {
            for p in parents.iter_mut() {
                p.sort();
                p.dedup();
            }
            Case {
                parents,
                fails,
                finally,
            }
        })
}

fn task_name(i: usize) -> String {
    format!("t{i}")
}

fn run_object(c: &Case) -> Value {
    let step = json!({"name": "s", "image": "example.invalid/x:1", "script": "true"});
    let tasks: Vec<Value> = c
        .parents
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"name": task_name(i), "runAfter": p.iter().map(|j| task_name(*j)).collect::<Vec<_>>(),
                   "taskSpec": {"steps": [step]}})
        })
        .collect();
    let fails: Vec<String> = (0..c.fails.len())
        .filter(|i| c.fails[*i])
        .map(task_name)
        .collect();
    let mut spec = json!({"tasks": tasks});
    if c.finally {
        spec["finally"] = json!([{"name": "fin", "taskSpec": {"steps": [step]}}]);
    }
    json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
           "metadata": {"name": "run", "annotations": {"sandbox.retry.tekton.dev/fail": fails.join(",")}},
           "spec": {"pipelineSpec": spec}})
}

/// `(status, message)` of the run's `Succeeded` condition.
fn message(v: &Value) -> (String, String) {
    let (s, _, m) = util::succeeded_parts(v).expect("condition");
    (s.to_string(), m.to_string())
}

fn parse_counts(m: &str) -> (usize, usize, usize) {
    // "Tasks Completed: X (Failed: F, Cancelled C), Skipped: S"
    let num = |key: &str| -> usize {
        m.split(key)
            .nth(1)
            .and_then(|r| r.trim_start().split(|ch: char| !ch.is_ascii_digit()).next())
            .and_then(|d| d.parse().ok())
            .expect("count")
    };
    (num("Tasks Completed:"), num("Failed:"), num("Skipped:"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn runs_finish_account_for_every_task_and_recover_after_reset(c in case()) {
        let ns = "prop";
        let mut cl = MemoryCluster::new(util::parse_time("2026-11-26T19:00:00Z").expect("t"));
        cl.create(ns, run_object(&c)).expect("create");
        prop_assert!(cl.run_until_done(ns, "run", TimeDelta::seconds(60)));
        let pr = cl.get(Kind::PipelineRun, ns, "run").expect("run");
        let total = c.parents.len() + usize::from(c.finally);
        let (status, msg) = message(&pr);
        let (completed, failed, skipped) = parse_counts(&msg);
        prop_assert_eq!(completed + skipped, total, "{}", msg);
        let trs = cl.list(Kind::TaskRun, ns);
        let by_task = |t: &str| trs.iter().find(|tr| util::label(tr, "tekton.dev/pipelineTask") == Some(t));
        let ran_and_failed = (0..c.parents.len()).filter(|i| by_task(&task_name(*i)).is_some_and(util::is_failure)).count();
        prop_assert_eq!(failed, ran_and_failed, "{}", msg);
        prop_assert_eq!(status == "False", ran_and_failed > 0, "{}", msg);
        for (i, parents) in c.parents.iter().enumerate() {
            if by_task(&task_name(i)).is_some() {
                for p in parents {
                    prop_assert!(by_task(&task_name(*p)).is_some_and(util::is_successful), "t{} ran before t{} succeeded", i, p);
                }
            }
        }
        prop_assert_eq!(c.finally, by_task("fin").is_some(), "finally runs once the DAG is done");

        // Each task fails only on its first attempt, so resets converge: every round re-runs at
        // least one task for the second time; tasks never reached before may fail once more.
        let mut status = status;
        let mut rounds = 0;
        while status == "False" {
            rounds += 1;
            prop_assert!(rounds <= c.parents.len(), "converges within one reset per task");
            let trs = cl.list(Kind::TaskRun, ns);
            let keep: Vec<String> = trs.iter().filter(|t| util::is_successful(t) && util::label(t, "tekton.dev/memberOf") == Some("tasks"))
                .map(|t| util::name(t).to_string()).collect();
            for t in &trs {
                if !keep.iter().any(|k| k == util::name(t)) {
                    cl.delete(Kind::TaskRun, ns, util::name(t), Propagation::Cascade).expect("delete");
                }
            }
            let mut pr = cl.get(Kind::PipelineRun, ns, "run").expect("run");
            let st = pr["status"].as_object_mut().expect("status");
            for k in ["completionTime", "finallyStartTime", "skippedTasks", "results"] {
                st.remove(k);
            }
            if let Some(refs) = st.get_mut("childReferences").and_then(Value::as_array_mut) {
                refs.retain(|r| keep.iter().any(|k| r["name"] == k.as_str()));
            }
            st.insert("conditions".into(), json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "retry"}]));
            cl.replace_status(Kind::PipelineRun, &pr).expect("reset");
            prop_assert!(cl.run_until_done(ns, "run", TimeDelta::seconds(60)));
            let pr = cl.get(Kind::PipelineRun, ns, "run").expect("run");
            let (s, m) = message(&pr);
            status = s;
            if status == "True" {
                prop_assert_eq!(m, format!("Tasks Completed: {total} (Failed: 0, Cancelled 0), Skipped: 0"));
            }
        }
        prop_assert_eq!(status, "True");
    }
}

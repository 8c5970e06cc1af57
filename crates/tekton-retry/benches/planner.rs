//! The planner on generated runs of 10, 100 and 1000 pipeline tasks with one child run each
//! (the goal: linear in the number of tasks; 1000 tasks with 1000 children in ≤ 2 ms).
//!
//! The runs are built with the same synthetic-run builder as the planner property tests
//! (`tests/planner/planner_common.rs`): ten parallel chains joined by result references, every task ran
//! once, and the task in the middle failed — so about half of the tasks are downstream of the
//! failure and re-run (their runs deleted), the other half kept. The plan is checked once before
//! timing, so the bench measures a real plan, not an early refusal.

#[path = "../tests/planner/planner_common.rs"]
mod planner_common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use planner_common::{input, time, Out, Sim, NOW};
use serde_json::{json, Value};
use tekton_retry::api::RetrySpec;
use tekton_retry::retry::planner::plan;

/// Chains the tasks are spread over.
const WIDTH: usize = 10;

/// A failed run of `n` tasks and its `n` child TaskRuns.
pub fn generated_run(n: usize) -> (Value, Vec<Value>) {
    let failed = n / 2;
    let mut sim = Sim::new();
    for i in 0..n {
        let mut extra = json!({});
        if i >= WIDTH {
            extra["runAfter"] = json!([format!("t{}", i - WIDTH)]);
        }
        if i % WIDTH != 0 {
            // A result reference to the neighbouring chain is a dependency too.
            extra["params"] =
                json!([{"name": "in", "value": format!("$(tasks.t{}.results.out)", i - 1)}]);
        }
        sim = sim.task(&format!("t{i}"), extra);
    }
    sim = sim.finally_task("report", json!({}));
    for i in 0..n {
        let out = if i == failed {
            Out::Failed
        } else {
            Out::Succeeded
        };
        sim = sim.ran(&format!("t{i}"), out);
    }
    sim = sim.ran("report", Out::Succeeded);
    (sim.run(), sim.children)
}

fn bench_planner(c: &mut Criterion) {
    let mut group = c.benchmark_group("planner");
    let now = time(NOW);
    let spec = RetrySpec::default();
    for n in [10usize, 100, 1000] {
        let (run, children) = generated_run(n);
        let p = plan(&input(&run, &children, &spec, now)).expect("the generated run is retryable");
        assert!(
            p.retried.len() > 1 && !p.preserved.is_empty(),
            "a mixed plan: {} retried, {} preserved",
            p.retried.len(),
            p.preserved.len()
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("plan", n), &n, |b, _| {
            b.iter(|| plan(black_box(&input(&run, &children, &spec, now))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_planner);
criterion_main!(benches);

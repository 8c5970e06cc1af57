//! Shared helpers of the planner tests: loading the recorded real-Tekton fixtures and building a
//! [`PlanInput`] over them.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tekton_retry::api::RetrySpec;
use tekton_retry::retry::{PlanInput, PlanLimits};

/// `tests/fixtures/tekton/<rel>` parsed as JSON.
pub fn fixture(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tekton")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The PipelineRun and child runs recorded at one moment of a scenario: files
/// `<scenario>/<moment>-pipelinerun-*.json` and `<moment>-taskrun-*.json`.
pub fn moment(scenario: &str, moment: &str) -> (Value, Vec<Value>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tekton")
        .join(scenario);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let run_prefix = format!("{moment}-pipelinerun-");
    let tr_prefix = format!("{moment}-taskrun-");
    let run_file = names
        .iter()
        .find(|n| n.starts_with(&run_prefix))
        .unwrap_or_else(|| panic!("no {run_prefix}* in {scenario}"));
    let run = fixture(&format!("{scenario}/{run_file}"));
    let children = names
        .iter()
        .filter(|n| n.starts_with(&tr_prefix))
        .map(|n| fixture(&format!("{scenario}/{n}")))
        .collect();
    (run, children)
}

pub fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

/// A planner input with default limits and no Pipeline or PVC list.
pub fn input<'a>(
    run: &'a Value,
    children: &'a [Value],
    spec: &'a RetrySpec,
    now: DateTime<Utc>,
) -> PlanInput<'a> {
    PlanInput {
        pipeline_run: run,
        children,
        pipeline: None,
        existing_pvcs: None,
        spec,
        now,
        limits: PlanLimits::default(),
    }
}

pub fn pvcs(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Names of the runs a plan deletes at once, after the spec clear.
pub fn names(runs: &[tekton_retry::retry::ChildRun]) -> Vec<&str> {
    runs.iter().map(|c| c.name.as_str()).collect()
}

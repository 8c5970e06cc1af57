//! The recorded `affinity/01` run (a workspace bound to a `volumeClaimTemplate`, default
//! `coschedule`), shared by the claim and assistant models' tests.

use serde_json::Value;

pub const RUN: &str =
    include_str!("../../../../tests/fixtures/tekton/affinity/01-failed-pipelinerun-ws-run.json");
pub const TR_A: &str =
    include_str!("../../../../tests/fixtures/tekton/affinity/01-failed-taskrun-ws-run-a.json");
pub const POD_A: &str =
    include_str!("../../../../tests/fixtures/tekton/affinity/01-failed-pod-ws-run-a-pod.json");

pub fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("fixture")
}

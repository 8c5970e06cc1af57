//! Shared helpers for the emulator integration tests.
#![allow(dead_code)]

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject};
use kube::Client;
use serde_json::{json, Value};
use tekton_retry::sandbox::emulator::{Emulator, EmulatorOptions};

/// An emulator with fast garbage collection and probing.
pub async fn start() -> Emulator {
    start_with(EmulatorOptions {
        gc_delay: Duration::from_millis(5),
        probe_interval: Duration::from_millis(200),
        bookmark_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await
}

pub async fn start_with(opts: EmulatorOptions) -> Emulator {
    Emulator::start(opts).await.expect("emulator starts")
}

/// A kube-rs client for a user, without kube's automatic retries (tests see every answer).
pub fn client(emu: &Emulator, user: &str) -> Client {
    let mut cfg = emu.kube_config(user).expect("config");
    cfg.default_retry = false;
    Client::try_from(cfg).expect("client")
}

pub fn pipelinerun_resource() -> ApiResource {
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: "tekton.dev/v1".into(),
        kind: "PipelineRun".into(),
        plural: "pipelineruns".into(),
    }
}

pub fn taskrun_resource() -> ApiResource {
    ApiResource {
        group: "tekton.dev".into(),
        version: "v1".into(),
        api_version: "tekton.dev/v1".into(),
        kind: "TaskRun".into(),
        plural: "taskruns".into(),
    }
}

pub fn prs(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &pipelinerun_resource())
}

pub fn trs(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &taskrun_resource())
}

/// A PipelineRun body.
pub fn pipelinerun(name: &str) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": "demo", "labels": {"app": "demo"}},
        "spec": {"pipelineRef": {"name": "build-and-deploy"}}
    })
}

/// A DynamicObject from JSON.
pub fn dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("a DynamicObject")
}

/// The API error of a kube call that must fail.
pub fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(e)) => *e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Poll `f` until it returns true (generous timeout, only to avoid hangs).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

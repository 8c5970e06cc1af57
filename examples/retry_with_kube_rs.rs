//! The smallest kube-rs program that retries a Tekton PipelineRun through tekton-retry:
//! `cargo run --example retry_with_kube_rs -- NAMESPACE NAME`.
//!
//! The retry is a subresource of an aggregated API, so it is a plain POST on the path kube-apiserver
//! proxies to tekton-retry; errors come back as a `metav1.Status` (kube's `Error::Api`).

use anyhow::Context;
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: retry_with_kube_rs NAMESPACE NAME";
    let ns = args.next().context(usage)?;
    let name = args.next().context(usage)?;

    let mut config = kube::Config::infer().await?;
    config.default_retry = false; // a 503/504 is reported, not replayed
    let client = kube::Client::try_from(config)?;

    let body = json!({
        "apiVersion": "retry.tekton.dev/v1alpha1",
        "kind": "PipelineRunRetry",
        "spec": {"reason": "retried from kube-rs"},
    });
    let request = http::Request::post(format!(
        "/apis/retry.tekton.dev/v1alpha1/namespaces/{ns}/pipelineruns/{name}/retry"
    ))
    .header("Content-Type", "application/json")
    .body(serde_json::to_vec(&body)?)?;

    let answer: Value = client.request(request).await?;
    println!("{}", serde_json::to_string_pretty(&answer["status"])?);
    Ok(())
}

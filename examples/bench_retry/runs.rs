//! Fresh failed PipelineRuns to retry, and the two ways of retrying them: through the front
//! door (front proxy → `serve` → engine), and the floor (the engine's own API calls, issued
//! in-process straight at the emulator with the server's identity).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::stream::{self, StreamExt};
use http::{Method, Request};
use http_body_util::BodyExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use serde_json::{json, Value};
use tekton_retry::api::{RetrySpec, UserInfo};
use tekton_retry::retry::{Engine, RetryRequest};
use tekton_retry_sandbox::seed;

pub const NS: &str = "bench";

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("tekton.dev", "v1", kind), plural)
}

fn runs(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), NS, &resource("PipelineRun", "pipelineruns"))
}

/// Creates namespace [`NS`] with the seed's Tasks and Pipeline (not its runs).
pub async fn seed_pipeline(admin: &kube::Client) -> anyhow::Result<()> {
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
    )
    .await
    .context("creating the namespace")?;
    for mut doc in seed::documents()? {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let plural = match kind.as_str() {
            "Task" => "tasks",
            "Pipeline" => "pipelines",
            _ => continue,
        };
        doc["metadata"]["namespace"] = json!(NS);
        let api: Api<DynamicObject> =
            Api::namespaced_with(admin.clone(), NS, &resource(&kind, plural));
        api.create(&PostParams::default(), &serde_json::from_value(doc)?)
            .await
            .with_context(|| format!("creating the seed {kind}"))?;
    }
    Ok(())
}

/// Creates `names` as copies of the seed pipeline whose task `b` fails on its first attempt, and
/// waits until every one has failed.
pub async fn create_failed(admin: &kube::Client, names: &[String]) -> anyhow::Result<()> {
    let api = runs(admin);
    let bodies = names.iter().map(|name| {
        json!({
            "apiVersion": "tekton.dev/v1",
            "kind": "PipelineRun",
            "metadata": {"name": name, "namespace": NS,
                         "annotations": {"sandbox.retry.tekton.dev/fail": "b"}},
            "spec": {
                "pipelineRef": {"name": "build-and-deploy"},
                "params": [{"name": "repo-url", "value": "https://git.example.com/app.git"}],
                "timeouts": {"pipeline": "1h0m0s"},
            },
        })
    });
    create_all(&api, bodies.collect(), 16).await?;
    let deadline = Instant::now() + Duration::from_secs(60 + names.len() as u64 / 2);
    loop {
        let list = api.list(&ListParams::default()).await?;
        let failed = list
            .items
            .iter()
            .filter(|o| names.contains(&o.metadata.name.clone().unwrap_or_default()))
            .filter(|o| succeeded_status(&serde_json::to_value(o).unwrap_or_default()) == "False")
            .count();
        if failed == names.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {failed} of {} new runs failed in time: is the Tekton simulator keeping up?",
                names.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates `n` pending runs (`spec.status: PipelineRunPending`): runs that exist but are never
/// retried, and that the simulator does not start.
pub async fn create_pending(admin: &kube::Client, n: usize) -> anyhow::Result<()> {
    let bodies = (0..n).map(|i| {
        json!({
            "apiVersion": "tekton.dev/v1",
            "kind": "PipelineRun",
            "metadata": {"name": format!("idle-{i}"), "namespace": NS},
            "spec": {
                "status": "PipelineRunPending",
                "pipelineRef": {"name": "build-and-deploy"},
                "params": [{"name": "repo-url", "value": "https://git.example.com/app.git"}],
            },
        })
    });
    create_all(&runs(admin), bodies.collect(), 32).await
}

/// Creates the objects `bodies` through `api`, `concurrency` at a time; the first error, if any.
async fn create_all(
    api: &Api<DynamicObject>,
    bodies: Vec<Value>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = stream::iter(bodies)
        .map(|body| async move {
            let name = body["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let obj: DynamicObject = serde_json::from_value(body)?;
            api.create(&PostParams::default(), &obj)
                .await
                .with_context(|| format!("creating {name}"))?;
            Ok(())
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.into_iter().collect()
}

fn succeeded_status(v: &Value) -> String {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Succeeded"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// One retry's result: latency, or what went wrong.
pub type Outcome = Result<Duration, String>;

/// `POST …/retry` through the front door as `client`'s user; 201 is success.
pub async fn retry_via_server(client: &kube::Client, name: &str) -> Outcome {
    let path = format!("/apis/retry.tekton.dev/v1alpha1/namespaces/{NS}/pipelineruns/{name}/retry");
    let body = serde_json::to_vec(&json!({"spec": {"reason": "bench"}})).unwrap_or_default();
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body))
        .map_err(|e| e.to_string())?;
    let began = Instant::now();
    let resp = client.send(req).await.map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let took = began.elapsed();
    if code != 201 {
        return Err(format!("{code}: {}", String::from_utf8_lossy(&bytes)));
    }
    Ok(took)
}

/// The same retry performed by an engine in this process (the floor).
pub async fn retry_direct(engine: &Engine, user: &UserInfo, name: &str) -> Outcome {
    let req = RetryRequest {
        namespace: NS.into(),
        name: name.into(),
        spec: RetrySpec {
            reason: Some("bench".into()),
            ..Default::default()
        },
        dry_run: false,
        user: user.clone(),
        audit_id: None,
    };
    let began = Instant::now();
    engine.retry(req).await.map_err(|e| e.message.clone())?;
    Ok(began.elapsed())
}

/// Runs `f` on every name, `concurrency` at a time; returns the outcomes.
pub async fn drive<F, Fut>(names: &[String], concurrency: usize, f: Arc<F>) -> Vec<Outcome>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send + 'static,
{
    stream::iter(names.iter().cloned())
        .map(|n| {
            let f = f.clone();
            tokio::spawn(async move { f(n).await })
        })
        .buffer_unordered(concurrency.max(1))
        .map(|r| r.unwrap_or_else(|e| Err(e.to_string())))
        .collect()
        .await
}

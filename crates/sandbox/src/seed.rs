//! Seeds namespace `demo` with the fixtures' Tasks and Pipeline and four PipelineRuns, and drives
//! them (through the Tekton simulator) to their states: `demo-failed` (b failed, c skipped, report
//! ran), `demo-cancelled` (cancelled while b ran), `demo-succeeded`, `demo-running` (b hangs).

use std::time::Duration;

use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{json, Value};

use crate::simulator::util;

/// The seed manifests.
pub const SEED_YAML: &str = include_str!("seed.yaml");
/// The namespace seeded.
pub const NAMESPACE: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed manifest: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("seeding {what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error("{0} did not reach its state within {1:?}: is the Tekton simulator running?")]
    Timeout(String, Duration),
}

fn resource(kind: &str) -> ApiResource {
    let plural = match kind {
        "Task" => "tasks",
        "Pipeline" => "pipelines",
        "TaskRun" => "taskruns",
        _ => "pipelineruns",
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("tekton.dev", "v1", kind), plural)
}

/// The seed documents, parsed.
pub fn documents() -> Result<Vec<Value>, SeedError> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(SEED_YAML) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        if v.is_object() {
            out.push(v);
        }
    }
    Ok(out)
}

async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    timeout: Duration,
    ok: impl Fn(&Value) -> bool,
) -> Result<Value, SeedError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(obj) = api.get(name).await {
            let v = serde_json::to_value(&obj).unwrap_or_default();
            if ok(&v) {
                return Ok(v);
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(SeedError::Timeout(name.to_string(), timeout));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates the seed objects with `client` (an admin) and waits until each run is in its state.
pub async fn seed(client: kube::Client, timeout: Duration) -> Result<(), SeedError> {
    let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns_obj =
        serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap_or_default();
    match ns_api.create(&PostParams::default(), &ns_obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(source) => {
            return Err(SeedError::Kube {
                what: "namespace demo".into(),
                source,
            })
        }
    }
    for doc in documents()? {
        let kind = util::kind(&doc).to_string();
        let name = util::name(&doc).to_string();
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NAMESPACE, &resource(&kind));
        let obj: DynamicObject = serde_json::from_value(doc).map_err(|e| SeedError::Kube {
            what: format!("{kind} {name}"),
            source: kube::Error::SerdeError(e),
        })?;
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(source) => {
                return Err(SeedError::Kube {
                    what: format!("{kind} {name}"),
                    source,
                })
            }
        }
    }
    let runs: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &resource("PipelineRun"));
    let taskruns: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &resource("TaskRun"));

    // demo-cancelled: cancel it while b runs (fixture cancelled/02), then let a retry finish it.
    wait_for(&taskruns, "demo-cancelled-b", timeout, |v| {
        util::succeeded_parts(v).is_some_and(|(s, _, _)| s == "Unknown")
            && v.pointer("/status/podName").is_some()
    })
    .await?;
    let done = util::is_done;
    if !done(
        &serde_json::to_value(runs.get("demo-cancelled").await.map_err(|source| {
            SeedError::Kube {
                what: "demo-cancelled".into(),
                source,
            }
        })?)
        .unwrap_or_default(),
    ) {
        runs.patch(
            "demo-cancelled",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"status": "Cancelled"}})),
        )
        .await
        .map_err(|source| SeedError::Kube {
            what: "cancelling demo-cancelled".into(),
            source,
        })?;
    }
    wait_for(&runs, "demo-cancelled", timeout, done).await?;
    runs.patch(
        "demo-cancelled",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"sandbox.retry.tekton.dev/hang": null}}}),
        ),
    )
    .await
    .map_err(|source| SeedError::Kube {
        what: "demo-cancelled annotations".into(),
        source,
    })?;

    wait_for(&runs, "demo-failed", timeout, util::is_failure).await?;
    wait_for(&runs, "demo-succeeded", timeout, util::is_successful).await?;
    wait_for(&taskruns, "demo-running-b", timeout, |v| {
        v.pointer("/status/podName").is_some()
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_parses_into_the_fixture_objects_and_four_runs() {
        let docs = documents().expect("seed yaml");
        let names: Vec<_> = docs
            .iter()
            .filter(|d| d["kind"] == "PipelineRun")
            .filter_map(|d| d.pointer("/metadata/name").and_then(Value::as_str))
            .collect();
        assert_eq!(
            names,
            vec![
                "demo-failed",
                "demo-cancelled",
                "demo-succeeded",
                "demo-running"
            ]
        );
        assert_eq!(docs.iter().filter(|d| d["kind"] == "Task").count(), 4);
        let pipeline = docs
            .iter()
            .find(|d| d["kind"] == "Pipeline")
            .expect("pipeline");
        assert_eq!(pipeline["spec"]["tasks"][2]["runAfter"][0], "b");
    }
}

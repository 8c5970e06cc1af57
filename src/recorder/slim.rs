//! What the recorder keeps of each PipelineRun it watches.
//!
//! The watch covers every PipelineRun in the cluster, and its cache would otherwise hold each one
//! whole (resolved `pipelineSpec`, `childReferences`, results, `managedFields`): tens of KiB per
//! run, hundreds of MiB on a busy CI cluster (issue 8, goal 3). The recorder decides from the
//! metadata, this project's annotations and the `Succeeded` condition and times only
//! ([`super::decide`]), and re-reads a run before it writes anything, so the cache keeps just that.

use kube::api::DynamicObject;
use serde_json::{Map, Value};

use crate::api::annotations;

/// The annotation prefix of this project's records.
const OUR_ANNOTATIONS: &str = "retry.tekton.dev/";

/// The `status` fields [`super::decide`] reads.
const STATUS_FIELDS: [&str; 2] = ["completionTime", "startTime"];

/// Reduces `obj` to what the recorder reads: name, namespace, uid, resourceVersion, this
/// project's annotations; for a retried run (one with a `retry.tekton.dev/last-retry` record)
/// also the `Succeeded` condition and the status times. Any other run keeps no status at all.
pub fn slim(obj: &mut DynamicObject) {
    let meta = &mut obj.metadata;
    meta.managed_fields = None;
    meta.labels = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.generate_name = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| k.starts_with(OUR_ANNOTATIONS));
    }
    let retried = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(annotations::LAST_RETRY));
    if meta.annotations.as_ref().is_some_and(|a| a.is_empty()) {
        meta.annotations = None;
    }
    let mut status = Map::new();
    if retried {
        if let Some(s) = obj.data.get("status").and_then(Value::as_object) {
            for f in STATUS_FIELDS {
                if let Some(v) = s.get(f) {
                    status.insert(f.to_string(), v.clone());
                }
            }
            let succeeded: Vec<Value> = s
                .get("conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c.get("type").and_then(Value::as_str) == Some("Succeeded"))
                .cloned()
                .collect();
            if !succeeded.is_empty() {
                status.insert("conditions".to_string(), Value::Array(succeeded));
            }
        }
    }
    obj.data = if status.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::json!({ "status": status })
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(annotations: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1",
            "kind": "PipelineRun",
            "metadata": {
                "name": "r", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                "labels": {"tekton.dev/pipeline": "p"},
                "annotations": annotations,
                "managedFields": [{"manager": "controller", "fieldsV1": {"f:status": {}}}],
            },
            "spec": {"pipelineRef": {"name": "p"}},
            "status": {
                "startTime": "2026-11-26T10:00:00Z",
                "completionTime": "2026-11-26T10:05:00Z",
                "conditions": [
                    {"type": "Ready", "status": "True"},
                    {"type": "Succeeded", "status": "False", "reason": "Failed"}
                ],
                "pipelineSpec": {"tasks": [{"name": "a"}]},
                "childReferences": [{"name": "r-a"}],
            },
        }))
        .expect("a DynamicObject")
    }

    #[test]
    fn a_retried_run_keeps_what_the_recorder_decides_from() {
        let mut o = object(json!({
            annotations::ATTEMPT: "2",
            annotations::LAST_RETRY: "{}",
            "example.dev/owner": "alice",
        }));
        slim(&mut o);
        let v = serde_json::to_value(&o).expect("json");
        assert_eq!(
            v["metadata"],
            json!({"name": "r", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                   "annotations": {annotations::ATTEMPT: "2", annotations::LAST_RETRY: "{}"}})
        );
        assert_eq!(
            v["status"],
            json!({"completionTime": "2026-11-26T10:05:00Z", "startTime": "2026-11-26T10:00:00Z",
                   "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]})
        );
        assert!(v.get("spec").is_none());
        assert_eq!(
            (v["apiVersion"].as_str(), v["kind"].as_str()),
            (Some("tekton.dev/v1"), Some("PipelineRun"))
        );
    }

    #[test]
    fn a_run_never_retried_keeps_only_its_identity() {
        let mut o = object(json!({"example.dev/owner": "alice"}));
        slim(&mut o);
        let v = serde_json::to_value(&o).expect("json");
        assert_eq!(
            v["metadata"],
            json!({"name": "r", "namespace": "ns", "uid": "u", "resourceVersion": "7"})
        );
        assert!(v.get("status").is_none() && v.get("spec").is_none());
        // An opt-out alone is not a retry: the annotation stays, the status goes.
        let mut o = object(json!({annotations::RETRYABLE: "false"}));
        slim(&mut o);
        let v = serde_json::to_value(&o).expect("json");
        assert_eq!(
            v["metadata"]["annotations"],
            json!({annotations::RETRYABLE: "false"})
        );
        assert!(v.get("status").is_none());
    }
}

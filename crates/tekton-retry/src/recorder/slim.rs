//! What the recorder keeps of each PipelineRun it watches.
//!
//! The watch covers the PipelineRuns labelled as retried, and its cache would otherwise hold each
//! one whole (resolved `pipelineSpec`, `childReferences`, results, `managedFields`): tens of KiB per
//! run. The recorder decides from the identity, the owner references, this project's label and
//! annotations, the annotations an attempt removes (`chains.tekton.dev/*`) and the `Succeeded`
//! condition and times ([`super::decide`]), so the cache keeps just that.

use kube::api::DynamicObject;
use serde_json::{Map, Value};

#[cfg(test)]
use crate::api::annotations;
use crate::api::labels;
use crate::tekton::is_succeeded_condition;

/// The annotation prefixes the recorder compares: this project's mirror, and Tekton Chains'
/// (removed while an attempt runs).
const KEPT_ANNOTATIONS: [&str; 2] = ["retry.tekton.dev/", "chains.tekton.dev/"];

/// The `status` fields [`super::decide`] reads.
const STATUS_FIELDS: [&str; 2] = ["completionTime", "startTime"];

/// Reduces `obj` to what the recorder reads: name, namespace, uid, resourceVersion, owner
/// references, the `retry.tekton.dev/retried` label, the kept annotations; for a run labelled as
/// retried also the `Succeeded` condition and the status times. Any other run keeps no status.
pub fn slim(obj: &mut DynamicObject) {
    let meta = &mut obj.metadata;
    meta.managed_fields = None;
    meta.finalizers = None;
    meta.generate_name = None;
    if let Some(l) = meta.labels.as_mut() {
        l.retain(|k, _| k == labels::RETRIED);
    }
    if meta.labels.as_ref().is_some_and(|l| l.is_empty()) {
        meta.labels = None;
    }
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| KEPT_ANNOTATIONS.iter().any(|p| k.starts_with(p)));
    }
    let retried = meta
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(labels::RETRIED));
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
                .filter(|c| is_succeeded_condition(c))
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
                "labels": {"tekton.dev/pipeline": "p", labels::RETRIED: "true"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "ou"}],
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
            "chains.tekton.dev/signed": "true",
            "example.dev/owner": "alice",
        }));
        slim(&mut o);
        let v = serde_json::to_value(&o).expect("json");
        assert_eq!(
            v["metadata"],
            json!({"name": "r", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                   "labels": {labels::RETRIED: "true"},
                   "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "ou"}],
                   "annotations": {annotations::ATTEMPT: "2", annotations::LAST_RETRY: "{}",
                                   "chains.tekton.dev/signed": "true"}})
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
    fn a_run_not_labelled_as_retried_keeps_only_its_identity() {
        let unlabelled = |annotations: Value| {
            let mut o = object(annotations);
            o.metadata.labels = None;
            o.metadata.owner_references = None;
            o
        };
        let mut o = unlabelled(json!({"example.dev/owner": "alice"}));
        slim(&mut o);
        let v = serde_json::to_value(&o).expect("json");
        assert_eq!(
            v["metadata"],
            json!({"name": "r", "namespace": "ns", "uid": "u", "resourceVersion": "7"})
        );
        assert!(v.get("status").is_none() && v.get("spec").is_none());
        // A forged mirror alone is not a retry: the annotation stays, the status goes.
        let mut o = unlabelled(json!({annotations::LAST_RETRY: "{}"}));
        slim(&mut o);
        let v = serde_json::to_value(&o).expect("json");
        assert_eq!(
            v["metadata"]["annotations"],
            json!({annotations::LAST_RETRY: "{}"})
        );
        assert!(v.get("status").is_none());
    }
}

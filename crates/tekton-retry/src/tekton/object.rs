//! Read-only accessors shared by every Tekton object view: metadata, the `Succeeded` condition, and
//! `spec.status`. Views borrow the JSON; nothing is copied into typed structs, so nothing is lost.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::time::parse_time;

/// Objects with at most this many keys are read by one pass over their entries in [`fields`].
const SCAN_LIMIT: usize = 16;

/// The values of several keys of a JSON object, read together.
///
/// serde_json's map (`preserve_order`) hashes every lookup with SipHash; for the small objects
/// of Kubernetes metadata, child references and conditions, one pass comparing keys is several
/// times cheaper than one hashed lookup per key.
/// Larger objects are looked up key by key. Non-objects give all `None`.
pub fn fields<'a, const N: usize>(v: &'a Value, keys: [&str; N]) -> [Option<&'a Value>; N] {
    let mut out = [None; N];
    let Some(map) = v.as_object() else {
        return out;
    };
    if map.len() > SCAN_LIMIT {
        for (slot, key) in out.iter_mut().zip(keys) {
            *slot = map.get(key);
        }
        return out;
    }
    for (k, val) in map {
        if let Some(i) = keys.iter().position(|key| k == key) {
            out[i] = Some(val);
        }
    }
    out
}

/// Whether `condition` (one entry of `status.conditions`) is the knative `Succeeded` condition
/// that Tekton reports a run's outcome in (knative.dev/pkg/apis `ConditionSucceeded`). The one
/// place that says so: views read it through [`ObjectView::succeeded_condition`], the status reset
/// and the archive's slimming find it here.
pub fn is_succeeded_condition(condition: &Value) -> bool {
    let [t] = fields(condition, ["type"]);
    t.and_then(Value::as_str) == Some("Succeeded")
}

/// The value of a knative `Succeeded` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// A borrowed view of any Kubernetes object in JSON form.
#[derive(Clone, Copy, Debug)]
pub struct ObjectView<'a>(pub &'a Value);

impl<'a> ObjectView<'a> {
    pub fn new(obj: &'a Value) -> Self {
        ObjectView(obj)
    }

    /// The JSON this view reads.
    pub fn json(&self) -> &'a Value {
        self.0
    }

    pub fn api_version(&self) -> &'a str {
        self.0["apiVersion"].as_str().unwrap_or_default()
    }

    pub fn kind(&self) -> &'a str {
        self.0["kind"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &'a str {
        self.0["metadata"]["name"].as_str().unwrap_or_default()
    }

    pub fn uid(&self) -> &'a str {
        self.0["metadata"]["uid"].as_str().unwrap_or_default()
    }

    /// Whether this is the object with `uid` (never true for an empty uid).
    pub fn has_uid(&self, uid: &str) -> bool {
        !uid.is_empty() && self.uid() == uid
    }

    pub fn namespace(&self) -> &'a str {
        self.0["metadata"]["namespace"].as_str().unwrap_or_default()
    }

    pub fn resource_version(&self) -> Option<&'a str> {
        self.0["metadata"]["resourceVersion"].as_str()
    }

    /// `metadata.deletionTimestamp` is set: the object is being deleted (finalizers pending).
    pub fn is_deleting(&self) -> bool {
        self.0["metadata"]["deletionTimestamp"].is_string()
    }

    /// `metadata.ownerReferences` (empty when absent).
    pub fn owner_references(&self) -> &'a [Value] {
        self.0["metadata"]["ownerReferences"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn creation_timestamp(&self) -> Option<DateTime<Utc>> {
        self.0["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(parse_time)
    }

    pub fn annotations(&self) -> Option<&'a Map<String, Value>> {
        self.0["metadata"]["annotations"].as_object()
    }

    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.0["metadata"]["annotations"][key].as_str()
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.0["metadata"]["labels"][key].as_str()
    }

    /// `spec.status` (cancellation / pending requests), when set and non-empty.
    pub fn spec_status(&self) -> Option<&'a str> {
        self.0["spec"]["status"].as_str().filter(|s| !s.is_empty())
    }

    /// The `Succeeded` condition object, when present.
    pub fn succeeded_condition(&self) -> Option<&'a Value> {
        Self::succeeded_condition_of(&self.0["status"])
    }

    /// The `Succeeded` condition in a `status` object.
    pub fn succeeded_condition_of(status: &'a Value) -> Option<&'a Value> {
        let [conditions] = fields(status, ["conditions"]);
        conditions?
            .as_array()?
            .iter()
            .find(|c| is_succeeded_condition(c))
    }

    /// Status of the `Succeeded` condition; a missing condition means not started (`Unknown`).
    pub fn succeeded_status(&self) -> ConditionStatus {
        match self
            .succeeded_condition()
            .and_then(|c| c["status"].as_str())
        {
            Some("True") => ConditionStatus::True,
            Some("False") => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        }
    }

    /// Reason of the `Succeeded` condition.
    pub fn reason(&self) -> Option<&'a str> {
        self.succeeded_condition()
            .and_then(|c| c["reason"].as_str())
            .filter(|r| !r.is_empty())
    }

    /// Message of the `Succeeded` condition.
    pub fn message(&self) -> Option<&'a str> {
        self.succeeded_condition()
            .and_then(|c| c["message"].as_str())
    }

    /// knative `IsDone`: the `Succeeded` condition is `True` or `False`.
    pub fn is_done(&self) -> bool {
        self.succeeded_status() != ConditionStatus::Unknown
    }

    /// A `status` time field (`startTime`, `completionTime`, …) as the raw string.
    pub fn status_time_str(&self, field: &str) -> Option<&'a str> {
        self.0["status"][field].as_str()
    }

    /// A `status` time field parsed.
    pub fn status_time(&self, field: &str) -> Option<DateTime<Utc>> {
        self.status_time_str(field).and_then(parse_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_reads_small_and_large_objects_alike() {
        let small = json!({"a": 1, "b": "x", "c": null});
        assert_eq!(
            fields(&small, ["b", "zz", "a"]),
            [Some(&json!("x")), None, Some(&json!(1))]
        );
        let large: Value = (0..40)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        assert_eq!(
            fields(&large, ["k39", "k0", "nope"]),
            [Some(&json!(39)), Some(&json!(0)), None]
        );
        assert_eq!(fields(&json!([1]), ["a"]), [None]);
    }

    #[test]
    fn reads_condition_and_metadata() {
        let v = json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {"name": "x", "uid": "u", "annotations": {"a": "b"}, "labels": {"l": "m"}},
            "spec": {"status": ""},
            "status": {"conditions": [
                {"type": "Other", "status": "True"},
                {"type": "Succeeded", "status": "False", "reason": "StepFailed", "message": "m"}
            ]}
        });
        let o = ObjectView::new(&v);
        assert_eq!(o.name(), "x");
        assert_eq!(o.annotation("a"), Some("b"));
        assert_eq!(o.label("l"), Some("m"));
        assert_eq!(o.spec_status(), None);
        assert_eq!(o.succeeded_status(), ConditionStatus::False);
        assert_eq!(o.reason(), Some("StepFailed"));
        assert!(o.is_done());
        let empty = json!({});
        assert_eq!(
            ObjectView::new(&empty).succeeded_status(),
            ConditionStatus::Unknown
        );
        assert!(!ObjectView::new(&empty).is_done());
    }

    #[test]
    fn reads_identity_deletion_and_owners() {
        let v = json!({"metadata": {"name": "x", "namespace": "ns", "uid": "u",
            "resourceVersion": "7", "deletionTimestamp": "2026-11-26T19:30:30Z",
            "ownerReferences": [{"kind": "PipelineRun", "uid": "p", "controller": true}]}});
        let o = ObjectView::new(&v);
        assert_eq!((o.namespace(), o.resource_version()), ("ns", Some("7")));
        assert!(o.has_uid("u") && !o.has_uid("v"));
        assert!(o.is_deleting());
        assert_eq!(o.owner_references()[0]["uid"], "p");
        let bare = json!({"metadata": {}});
        let o = ObjectView::new(&bare);
        assert!(!o.has_uid(""), "an empty uid names no object");
        assert!(!o.is_deleting());
        assert!(o.owner_references().is_empty());
        assert_eq!(o.resource_version(), None);
    }

    #[test]
    fn the_succeeded_condition_is_found_by_its_type_only() {
        assert!(is_succeeded_condition(
            &json!({"type": "Succeeded", "status": "True"})
        ));
        assert!(!is_succeeded_condition(
            &json!({"type": "Ready", "status": "True"})
        ));
        assert!(!is_succeeded_condition(&json!("Succeeded")));
    }
}

//! `events.k8s.io/v1` Events as a view of core `v1` Events: kube-apiserver keeps one storage for
//! both and converts (`pkg/apis/events/v1/conversion.go`), so an Event written through either API is
//! read through the other (`kubectl describe` lists core Events; kube-rs' `Recorder` writes
//! `events.k8s.io/v1`).

use serde_json::{Map, Value};

use super::resources::{Gvr, ResourceDef};

/// `(events.k8s.io/v1 field, core/v1 field)` pairs that differ in name.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// Whether `def` is the `events.k8s.io/v1` view.
pub fn is_view(def: &ResourceDef) -> bool {
    def.group == "events.k8s.io" && def.resource == "events"
}

/// Where the view's objects are stored.
pub fn storage() -> Gvr {
    Gvr::events()
}

fn rename(v: &Value, from_new: bool, api_version: &str) -> Value {
    let Some(m) = v.as_object() else {
        return v.clone();
    };
    let mut out = Map::new();
    for (k, x) in m {
        let key = RENAMED
            .iter()
            .find_map(|(new, old)| match from_new {
                true if k == new => Some(*old),
                false if k == old => Some(*new),
                _ => None,
            })
            .unwrap_or(k.as_str());
        out.insert(key.to_string(), x.clone());
    }
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from("Event"));
    Value::Object(out)
}

/// An `events.k8s.io/v1` Event as a core `v1` Event.
pub fn to_core(v: &Value) -> Value {
    rename(v, true, "v1")
}

/// A core `v1` Event as an `events.k8s.io/v1` Event.
pub fn from_core(v: &Value) -> Value {
    rename(v, false, "events.k8s.io/v1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "PipelineRun", "name": "x"}, "note": "n", "reason": "R", "reportingController": "c"});
        let core = to_core(&new);
        assert_eq!(core["involvedObject"]["name"], "x");
        assert_eq!(core["message"], "n");
        assert_eq!(core["reportingComponent"], "c");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(from_core(&core), new);
    }
}

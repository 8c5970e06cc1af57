//! `meta.k8s.io/v1 Table` answers for `kubectl get` (`Accept: application/json;as=Table;…`).
//! Columns follow kube-apiserver's printers (`pkg/printers/internalversion/printers.go`) for the core
//! types and Tekton's CRD `additionalPrinterColumns` for runs (`config/300-crds/300-pipelinerun.yaml`:
//! Succeeded, Reason, StartTime, CompletionTime — no Age column).

use serde_json::{json, Value};

use super::resources::ResourceDef;

/// Whether an `Accept` header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .any(|p| p.contains("as=Table") && p.contains("g=meta.k8s.io"))
}

/// What each row carries as `object` (`?includeObject=`; default `Metadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(s: Option<&str>) -> Include {
        match s {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// `k8s.io/apimachinery/pkg/util/duration.HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    let (m, h, days) = (secs / 60, secs / 3600, secs / 86400);
    let years = days / 365;
    // The cases of `HumanDuration`'s switch, in order: the first that holds gives the number and
    // unit, then the smaller unit's number and unit when it is not zero.
    let cases = [
        (secs < 120, secs, "s", 0, ""),
        (m < 10, m, "m", secs % 60, "s"),
        (m < 180, m, "m", 0, ""),
        (h < 8, h, "h", m % 60, "m"),
        (h < 48, h, "h", 0, ""),
        (h < 192, days, "d", h % 24, "h"),
        (years < 2, days, "d", 0, ""),
        (years < 8, years, "y", days % 365, "d"),
    ];
    let (_, big, unit, small, small_unit) = cases
        .into_iter()
        .find(|c| c.0)
        .unwrap_or((true, years, "y", 0, ""));
    if small == 0 {
        format!("{big}{unit}")
    } else {
        format!("{big}{unit}{small}{small_unit}")
    }
}

fn age(ts: Option<&str>) -> Value {
    match ts.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => json!(human_duration(chrono::Utc::now().signed_duration_since(t))),
        None => json!("<unknown>"),
    }
}

fn col(name: &str, ty: &str, format: &str, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": 0})
}

fn succeeded(obj: &Value) -> Option<&Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Succeeded")
}

fn columns(def: &ResourceDef) -> Vec<Value> {
    let name = col(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
    );
    match (def.group, def.resource) {
        ("tekton.dev", "pipelineruns" | "taskruns" | "customruns") => vec![
            name,
            col("Succeeded", "string", "", ""),
            col("Reason", "string", "", ""),
            col("StartTime", "date", "", ""),
            col("CompletionTime", "date", "", ""),
        ],
        ("", "pods") => vec![
            name,
            col(
                "Ready",
                "string",
                "",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "",
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "",
                "The number of times the containers in this pod have been restarted.",
            ),
            col("Age", "string", "", "CreationTimestamp"),
        ],
        ("", "namespaces") => vec![
            name,
            col("Status", "string", "", "The status of the namespace"),
            col("Age", "string", "", "CreationTimestamp"),
        ],
        ("", "configmaps") => vec![
            name,
            col("Data", "integer", "", "Number of data entries"),
            col("Age", "string", "", "CreationTimestamp"),
        ],
        _ => vec![name, col("Age", "string", "", "CreationTimestamp")],
    }
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = json!(obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or(""));
    let created = age(obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str));
    match (def.group, def.resource) {
        ("tekton.dev", "pipelineruns" | "taskruns" | "customruns") => {
            let c = succeeded(obj);
            let date = |p: &str| match obj.pointer(p).and_then(Value::as_str) {
                Some(t) => age(Some(t)),
                None => Value::Null,
            };
            vec![
                name,
                c.map(|c| c["status"].clone()).unwrap_or(Value::Null),
                c.map(|c| c["reason"].clone()).unwrap_or(Value::Null),
                date("/status/startTime"),
                date("/status/completionTime"),
            ]
        }
        ("", "pods") => {
            let statuses = obj
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array);
            let total = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
            let restarts: i64 = statuses.map_or(0, |s| {
                s.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
            });
            let phase = obj
                .pointer("/status/reason")
                .or_else(|| obj.pointer("/status/phase"))
                .cloned()
                .unwrap_or(json!("Pending"));
            vec![
                name,
                json!(format!("{ready}/{total}")),
                phase,
                json!(restarts.to_string()),
                created,
            ]
        }
        ("", "namespaces") => vec![
            name,
            obj.pointer("/status/phase")
                .cloned()
                .unwrap_or(json!("Active")),
            created,
        ],
        ("", "configmaps") => {
            let n = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + obj
                    .get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(n), created]
        }
        _ => vec![name, created],
    }
}

fn row_object(obj: &Value, include: Include) -> Option<Value> {
    match include {
        Include::None => None,
        Include::Object => Some(obj.clone()),
        Include::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        })),
    }
}

/// A Table of `objs`; `resource_version` goes in the list metadata.
pub fn table(
    def: &ResourceDef,
    objs: &[Value],
    include: Include,
    resource_version: Option<String>,
    with_columns: bool,
) -> Value {
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut r = json!({"cells": cells(def, o)});
            if let Some(x) = row_object(o, include) {
                r["object"] = x;
            }
            r
        })
        .collect();
    let mut meta = json!({});
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = json!(rv);
    }
    let mut t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta});
    if with_columns {
        t["columnDefinitions"] = json!(columns(def));
    }
    t["rows"] = json!(rows);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let s = chrono::Duration::seconds;
        assert_eq!(human_duration(s(5)), "5s");
        assert_eq!(human_duration(s(150)), "2m30s");
        assert_eq!(human_duration(s(600)), "10m");
        assert_eq!(human_duration(s(3 * 3600 + 60)), "3h1m");
        assert_eq!(human_duration(s(30 * 3600)), "30h");
        assert_eq!(human_duration(s(3 * 86400 + 3600)), "3d1h");
    }

    #[test]
    fn pipelinerun_columns() {
        let def =
            super::super::resources::find("tekton.dev", "v1", "pipelineruns").expect("served");
        let pr = json!({"metadata": {"name": "x", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}], "startTime": "2026-01-01T00:00:00Z"}});
        let t = table(def, &[pr], Include::Metadata, Some("5".into()), true);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .expect("cols")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["Name", "Succeeded", "Reason", "StartTime", "CompletionTime"]
        );
        assert_eq!(t["rows"][0]["cells"][1], "False");
        assert_eq!(t["rows"][0]["cells"][2], "Failed");
        assert!(t["rows"][0]["cells"][4].is_null());
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}

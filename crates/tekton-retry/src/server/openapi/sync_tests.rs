//! The OpenAPI schema of `PipelineRunRetry` against the wire types in `crate::api::types`: a fully
//! populated object (every struct written out field by field, so a new field does not compile
//! until it is filled in here) must have every JSON path in the schema with the JSON type the
//! schema gives, and every property of the schema must be one the types write.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{schema, v2_document, v3_document, SCHEMA_NAME};
use crate::api::{
    FinallyPolicy, PipelineRunRetry, Preconditions, RetriedTask, RetryMeta, RetrySpec, RetryStatus,
};

fn full() -> PipelineRunRetry {
    let map = |k: &str| BTreeMap::from([(k.to_string(), "v".to_string())]);
    PipelineRunRetry {
        api_version: Some("retry.tekton.dev/v1alpha1".into()),
        kind: Some("PipelineRunRetry".into()),
        metadata: RetryMeta {
            name: Some("run".into()),
            namespace: Some("ns".into()),
            uid: Some("u".into()),
            creation_timestamp: Some("2026-11-26T19:30:30Z".into()),
            labels: map("l"),
            annotations: map("a"),
        },
        spec: RetrySpec {
            reason: Some("flaky".into()),
            preconditions: Some(Preconditions {
                uid: Some("u".into()),
                attempt: Some(1),
            }),
            finally: Some(FinallyPolicy::Keep),
            restart_tasks: vec!["a".into()],
            acknowledge_non_idempotent: vec!["b".into()],
        },
        status: Some(RetryStatus {
            attempt: 2,
            dry_run: true,
            pipeline_run_uid: "u".into(),
            retried_tasks: vec![RetriedTask {
                name: "a".into(),
                previous_run: Some("run-a".into()),
                previous_reason: Some("Failed".into()),
            }],
            preserved_tasks: vec!["c".into()],
            start_time: Some("2026-11-26T19:31:30Z".into()),
            original_start_time: Some("2026-11-26T19:30:30Z".into()),
            original_completion_time: Some("2026-11-26T19:31:00Z".into()),
            remaining_timeout: Some("41m10s".into()),
            message: Some("attempt 2 started".into()),
        }),
    }
}

/// The JSON Schema type name of a value.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every path of `value`, checked against `schema`; `problems` collects what does not match.
fn value_in_schema(path: &str, value: &Value, schema: &Value, problems: &mut Vec<String>) {
    let Some(want) = schema["type"].as_str() else {
        problems.push(format!("{path}: the schema gives no type"));
        return;
    };
    if json_type(value) != want {
        problems.push(format!(
            "{path}: {} in the types, {want} in the schema",
            json_type(value)
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            problems.push(format!(
                "{path}: {value} is not in the schema's enum {allowed:?}"
            ));
        }
    }
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                let child = format!("{path}.{k}");
                match (
                    schema["properties"].get(k),
                    schema.get("additionalProperties"),
                ) {
                    (Some(s), _) | (None, Some(s)) => value_in_schema(&child, v, s, problems),
                    (None, None) => problems.push(format!("{child}: not in the schema")),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                value_in_schema(&format!("{path}[{i}]"), v, &schema["items"], problems);
            }
        }
        _ => {}
    }
}

/// Every property the schema declares, looked up in `value`.
fn schema_in_value(path: &str, schema: &Value, value: &Value, problems: &mut Vec<String>) {
    if let Some(props) = schema["properties"].as_object() {
        for (k, s) in props {
            let child = format!("{path}.{k}");
            match value.get(k) {
                Some(v) => schema_in_value(&child, s, v, problems),
                None => problems.push(format!(
                    "{child}: in the schema, never written by the types"
                )),
            }
        }
    }
    if let (Some(items), Some(first)) = (schema.get("items"), value.get(0)) {
        schema_in_value(&format!("{path}[0]"), items, first, problems);
    }
}

fn problems(schema: &Value, value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    value_in_schema("", value, schema, &mut problems);
    schema_in_value("", schema, value, &mut problems);
    problems
}

#[test]
fn schema_matches_the_wire_types() {
    let object = full();
    let value = serde_json::to_value(&object).expect("serializes");
    let found = problems(&schema(), &value);
    assert!(
        found.is_empty(),
        "OpenAPI schema and api::types differ:\n{}",
        found.join("\n")
    );
    // What the schema describes is what a client may send back.
    let back: PipelineRunRetry = serde_json::from_value(value).expect("deserializes");
    assert_eq!(back, object);
    // Both documents serve this schema.
    assert_eq!(
        v3_document()["components"]["schemas"][SCHEMA_NAME],
        schema()
    );
    assert_eq!(v2_document()["definitions"][SCHEMA_NAME], schema());
}

#[test]
fn finally_enum_lists_every_policy() {
    let listed = &schema()["properties"]["spec"]["properties"]["finally"]["enum"];
    let all = [FinallyPolicy::Rerun, FinallyPolicy::Keep];
    assert_eq!(
        listed,
        &json!(all),
        "the enum lists every FinallyPolicy, in order"
    );
}

/// The check itself finds each kind of drift (a field on one side only, a wrong type, an enum
/// value the schema does not list).
#[test]
fn the_check_finds_drift() {
    let value = serde_json::to_value(full()).expect("serializes");

    let mut extra_field = value.clone();
    extra_field["status"]["newField"] = json!("x");
    assert!(problems(&schema(), &extra_field)
        .iter()
        .any(|p| p.contains(".status.newField")));

    let mut extra_property = schema();
    extra_property["properties"]["status"]["properties"]["newField"] = json!({"type": "string"});
    assert!(problems(&extra_property, &value)
        .iter()
        .any(|p| p.contains(".status.newField")));

    let mut wrong_type = schema();
    wrong_type["properties"]["status"]["properties"]["attempt"] = json!({"type": "string"});
    assert!(problems(&wrong_type, &value)
        .iter()
        .any(|p| p.contains(".status.attempt")));

    let mut bad_enum = value;
    bad_enum["spec"]["finally"] = json!("Skip");
    assert!(problems(&schema(), &bad_enum)
        .iter()
        .any(|p| p.contains(".spec.finally")));
}

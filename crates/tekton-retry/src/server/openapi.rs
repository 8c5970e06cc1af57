//! Small, valid OpenAPI documents for `PipelineRunRetry`. `/openapi/v3` is the index of group-versions
//! (`staging/src/k8s.io/kube-openapi/pkg/handler3`), `/openapi/v3/apis/retry.tekton.dev/v1alpha1`
//! the document, `/openapi/v2` the Swagger 2.0 document.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{json, Value};

use crate::api::{API_VERSION, GROUP, KIND, RESOURCE, SUBRESOURCE, VERSION};

/// Relative path of our group-version in the v3 index.
pub const V3_GROUP_VERSION_PATH: &str = "apis/retry.tekton.dev/v1alpha1";
/// Name of the schema of `PipelineRunRetry` (reverse-DNS of the group, as Kubernetes names them).
pub const SCHEMA_NAME: &str = "dev.tekton.retry.v1alpha1.PipelineRunRetry";

fn gvk() -> Value {
    json!({"group": GROUP, "version": VERSION, "kind": KIND})
}

/// JSON schema of `PipelineRunRetry` (the shape of `crate::api::PipelineRunRetry`; the test
/// `schema_matches_the_wire_types` keeps the two in step).
fn schema() -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "description": "A request to retry a failed or cancelled Tekton PipelineRun in place, and the server's answer.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "retry.tekton.dev/v1alpha1"},
            "kind": {"type": "string", "description": "PipelineRunRetry"},
            "metadata": {
                "type": "object",
                "description": "name and namespace of the PipelineRun (optional in a request); the other fields are accepted and ignored.",
                "properties": {
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "uid": {"type": "string"},
                    "creationTimestamp": {"type": "string"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            },
            "spec": {
                "type": "object",
                "description": "What the caller asks for; every field is optional.",
                "properties": {
                    "reason": {"type": "string", "description": "Recorded on the run and in the Event."},
                    "preconditions": {
                        "type": "object",
                        "properties": {
                            "uid": {"type": "string", "description": "Refuse (409) if the run was replaced."},
                            "attempt": {"type": "integer", "format": "int32", "description": "Refuse (409) unless this is the current attempt."},
                        },
                    },
                    "finally": {"type": "string", "enum": ["Rerun", "Keep"], "description": "Rerun (default) or Keep the finally tasks that succeeded (failed ones run again)."},
                    "restartTasks": strings.clone(),
                    "acknowledgeNonIdempotent": strings.clone(),
                },
            },
            "status": {
                "type": "object",
                "description": "What the server did (or would do, for a dry run).",
                "properties": {
                    "attempt": {"type": "integer", "format": "int32"},
                    "dryRun": {"type": "boolean"},
                    "pipelineRunUID": {"type": "string"},
                    "retriedTasks": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "previousRun": {"type": "string"}, "previousReason": {"type": "string"}}}},
                    "preservedTasks": strings,
                    "startTime": {"type": "string"},
                    "originalStartTime": {"type": "string"},
                    "originalCompletionTime": {"type": "string"},
                    "remainingTimeout": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
        "x-kubernetes-group-version-kind": [gvk()],
    })
}

fn path() -> String {
    format!("/apis/{API_VERSION}/namespaces/{{namespace}}/{RESOURCE}/{{name}}/{SUBRESOURCE}")
}

fn description() -> &'static str {
    "retry a failed or cancelled PipelineRun in place: the failed, cancelled and timed-out tasks (and what depends on them) run again; succeeded tasks keep their results"
}

/// The OpenAPI v3 document of `retry.tekton.dev/v1alpha1`.
pub fn v3_document() -> Value {
    let reference = json!({"$ref": format!("#/components/schemas/{SCHEMA_NAME}")});
    let ok = json!({"description": "OK", "content": {"application/json": {"schema": reference}}});
    json!({
        "openapi": "3.0.0",
        "info": {"title": "tekton-retry", "version": VERSION},
        "paths": {
            path(): {
                "parameters": [
                    {"name": "name", "in": "path", "required": true, "description": "name of the PipelineRun", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "namespace", "in": "path", "required": true, "description": "object name and auth scope, such as for teams and projects", "schema": {"type": "string", "uniqueItems": true}},
                    {"name": "dryRun", "in": "query", "description": "All: compute and return the plan, write nothing", "schema": {"type": "string", "uniqueItems": true}},
                ],
                "post": {
                    "description": description(),
                    "operationId": "createNamespacedPipelineRunRetry",
                    "tags": ["retryTektonDev_v1alpha1"],
                    "requestBody": {"content": {"application/json": {"schema": reference}}},
                    "responses": {"200": ok, "201": {"description": "Created", "content": {"application/json": {"schema": reference}}}, "401": {"description": "Unauthorized"}},
                    "x-kubernetes-action": "post",
                    "x-kubernetes-group-version-kind": gvk(),
                },
            },
        },
        "components": {"schemas": {SCHEMA_NAME: schema()}},
    })
}

/// The Swagger 2.0 document served at `/openapi/v2`.
pub fn v2_document() -> Value {
    let reference = json!({"$ref": format!("#/definitions/{SCHEMA_NAME}")});
    json!({
        "swagger": "2.0",
        "info": {"title": "tekton-retry", "version": VERSION},
        "paths": {
            path(): {
                "parameters": [
                    {"name": "name", "in": "path", "required": true, "type": "string", "uniqueItems": true, "description": "name of the PipelineRun"},
                    {"name": "namespace", "in": "path", "required": true, "type": "string", "uniqueItems": true, "description": "object name and auth scope, such as for teams and projects"},
                    {"name": "dryRun", "in": "query", "type": "string", "uniqueItems": true, "description": "All: compute and return the plan, write nothing"},
                ],
                "post": {
                    "description": description(),
                    "consumes": ["application/json"],
                    "produces": ["application/json"],
                    "schemes": ["https"],
                    "operationId": "createNamespacedPipelineRunRetry",
                    "tags": ["retryTektonDev_v1alpha1"],
                    "parameters": [{"name": "body", "in": "body", "schema": reference}],
                    "responses": {"200": {"description": "OK", "schema": reference}, "201": {"description": "Created", "schema": reference}, "401": {"description": "Unauthorized"}},
                    "x-kubernetes-action": "post",
                    "x-kubernetes-group-version-kind": gvk(),
                },
            },
        },
        "definitions": {SCHEMA_NAME: schema()},
    })
}

/// A stable hash of a document (used in the v3 index URL and as ETag).
pub fn etag(doc: &Value) -> String {
    let mut h = DefaultHasher::new();
    doc.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// `/openapi/v3`: the index of group-versions.
pub fn v3_index() -> Value {
    let hash = etag(&v3_document());
    json!({"paths": {V3_GROUP_VERSION_PATH: {"serverRelativeURL": format!("/openapi/v3/{V3_GROUP_VERSION_PATH}?hash={hash}")}}})
}

#[cfg(test)]
mod sync_tests;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `doc` resolves inside `doc`.
    fn refs_resolve(doc: &Value, v: &Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    let ptr = r.trim_start_matches('#');
                    assert!(doc.pointer(ptr).is_some(), "dangling {r}");
                }
                m.values().for_each(|x| refs_resolve(doc, x));
            }
            Value::Array(a) => a.iter().for_each(|x| refs_resolve(doc, x)),
            _ => {}
        }
    }

    #[test]
    fn documents_are_self_contained_and_name_the_kind() {
        for doc in [v3_document(), v2_document()] {
            refs_resolve(&doc, &doc);
        }
        let v3 = v3_document();
        assert_eq!(
            v3["components"]["schemas"][SCHEMA_NAME]["x-kubernetes-group-version-kind"][0]["kind"],
            KIND
        );
        let idx = v3_index();
        let url = idx["paths"][V3_GROUP_VERSION_PATH]["serverRelativeURL"]
            .as_str()
            .expect("url");
        assert!(url.starts_with("/openapi/v3/apis/retry.tekton.dev/v1alpha1?hash="));
        assert_eq!(v2_document()["swagger"], "2.0");
    }
}

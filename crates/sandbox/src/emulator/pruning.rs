//! Structural-schema pruning of unknown fields, as kube-apiserver does for custom resources
//! (`apiextensions-apiserver/pkg/apiserver/schema/pruning`), against the schemas of
//! [`crate::tekton_webhook::crd_schema`]: fixture `dag-failed` (README §a) shows
//! `status.lastRetry` dropped at write time, a `Warning: unknown field "status.lastRetry"`, and with
//! `?fieldValidation=Strict` the error `PipelineRun in version "v1" cannot be handled as a
//! PipelineRun: strict decoding error: unknown field "status.lastRetry"`.
//!
//! Approximation: only the top level of the object and of `status` are checked; deeper levels are
//! kept.

use serde_json::Value;

use super::resources::ResourceDef;
use super::status::StatusError;
use crate::tekton_webhook::crd_schema;

/// The unknown fields of `obj` (`status.lastRetry`, …), for a resource with a structural schema
/// (Tekton's CRDs); none for other types.
pub fn unknown_fields(def: &ResourceDef, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(schema) = crd_schema::find(def.group, def.resource) else {
        return out;
    };
    if let Some(m) = obj.as_object() {
        out.extend(
            m.keys()
                .filter(|k| !schema.top.contains(&k.as_str()))
                .cloned(),
        );
    }
    if let (true, Some(st)) = (
        schema.checks_status(),
        obj.get("status").and_then(Value::as_object),
    ) {
        out.extend(
            st.keys()
                .filter(|k| !schema.knows_status_field(k))
                .map(|k| format!("status.{k}")),
        );
    }
    out
}

/// Unknown fields a JSON patch would add (`add`/`replace`/`copy`/`move` targets).
pub fn unknown_in_json_patch(def: &ResourceDef, patch: &json_patch::Patch) -> Vec<String> {
    let mut probe = serde_json::json!({});
    for op in &patch.0 {
        let path = match op {
            json_patch::PatchOperation::Add(o) => o.path.to_string(),
            json_patch::PatchOperation::Replace(o) => o.path.to_string(),
            json_patch::PatchOperation::Copy(o) => o.path.to_string(),
            json_patch::PatchOperation::Move(o) => o.path.to_string(),
            _ => continue,
        };
        let parts: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
        match parts.as_slice() {
            [top] | [top, ..] if *top != "status" => {
                probe[*top] = Value::Bool(true);
            }
            ["status", key, ..] => {
                probe["status"][*key] = Value::Bool(true);
            }
            _ => {}
        }
    }
    unknown_fields(def, &probe)
}

/// Drop the unknown fields from `obj`.
pub fn prune(def: &ResourceDef, obj: &mut Value) {
    for f in unknown_fields(def, obj) {
        match f.strip_prefix("status.") {
            Some(k) => {
                if let Some(st) = obj.get_mut("status").and_then(Value::as_object_mut) {
                    st.remove(k);
                }
            }
            None => {
                if let Some(m) = obj.as_object_mut() {
                    m.remove(&f);
                }
            }
        }
    }
}

/// `?fieldValidation=`: `Strict` fails on unknown fields, `Warn` (default) warns, `Ignore` is silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<FieldValidation, StatusError> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(StatusError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {other:?}"
            ))),
        }
    }

    /// Check unknown fields: the strict error, or the warnings to send.
    pub fn check(self, def: &ResourceDef, unknown: &[String]) -> Result<Vec<String>, StatusError> {
        if unknown.is_empty() || self == FieldValidation::Ignore {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect();
        if self == FieldValidation::Strict {
            return Err(StatusError::bad_request(format!(
                "{kind} in version {v:?} cannot be handled as a {kind}: strict decoding error: {}",
                texts.join(", "),
                kind = def.kind,
                v = def.version
            )));
        }
        Ok(texts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn last_retry_is_pruned_like_the_fixture_shows() {
        let def =
            super::super::resources::find("tekton.dev", "v1", "pipelineruns").expect("served");
        let mut o = json!({"spec": {}, "status": {"conditions": [], "lastRetry": {}, "annotations": {"a": "b"}}});
        assert_eq!(unknown_fields(def, &o), ["status.lastRetry"]);
        let e = FieldValidation::Strict
            .check(def, &unknown_fields(def, &o))
            .expect_err("strict");
        assert_eq!(
            e.message,
            r#"PipelineRun in version "v1" cannot be handled as a PipelineRun: strict decoding error: unknown field "status.lastRetry""#
        );
        prune(def, &mut o);
        assert_eq!(
            o,
            json!({"spec": {}, "status": {"conditions": [], "annotations": {"a": "b"}}})
        );
    }
}

//! `metav1.Status` errors with kube-apiserver's exact messages
//! (`k8s.io/apimachinery/pkg/api/errors/errors.go`: `NewNotFound`, `NewAlreadyExists`, `NewConflict`,
//! `NewInvalid`, `NewForbidden`, `NewResourceExpired`, `NewBadRequest`, `NewGenericServerResponse`).

use std::fmt;

use serde_json::{json, Map, Value};

/// A failed API call as kube-apiserver answers it: HTTP code, `reason`, `message`, `details`.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` (`name`, `group`, `kind`, `causes`, `retryAfterSeconds`), or `None` for none.
    pub details: Option<Value>,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.code, self.message)
    }
}

impl std::error::Error for StatusError {}

/// `schema.GroupResource.String()`: `pipelineruns.tekton.dev`, or `pods` for the core group.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut m = Map::new();
    if !name.is_empty() {
        m.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        m.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        m.insert("kind".into(), json!(kind));
    }
    Value::Object(m)
}

impl StatusError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        StatusError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// This error with `details` naming object `name` of `group` and `kind` (a resource or a kind;
    /// empty parts are left out).
    fn about(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details = Some(details(group, kind, name));
        self
    }

    /// `NewNotFound`: `pipelineruns.tekton.dev "x" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let message = format!("{} {name:?} not found", qualified(group, resource));
        Self::new(404, "NotFound", message).about(group, resource, name)
    }

    /// The router's 404 for an unknown path: `the server could not find the requested resource`,
    /// with empty details.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .about("", "", "")
    }

    /// `NewAlreadyExists`: `configmaps "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let message = format!("{} {name:?} already exists", qualified(group, resource));
        Self::new(409, "AlreadyExists", message).about(group, resource, name)
    }

    /// `NewConflict`: `Operation cannot be fulfilled on pipelineruns.tekton.dev "x": <why>`.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} {name:?}: {why}",
            qualified(group, resource)
        );
        Self::new(409, "Conflict", message).about(group, resource, name)
    }

    /// The optimistic-concurrency conflict (`storage.NewConflict` / `registry.OptimisticLockErrorMsg`).
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `NewInvalid`: `PipelineRun.tekton.dev "x" is invalid: field: message` with `details.causes`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: &[(&str, String)]) -> Self {
        let qkind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let texts: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let joined = if texts.len() == 1 {
            texts[0].clone()
        } else {
            format!("[{}]", texts.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{qkind} {name:?} is invalid: {joined}"),
        )
        .about(group, kind, name);
        if let Some(d) = e.details.as_mut() {
            d["causes"] = causes
                .iter()
                .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
                .collect();
        }
        e
    }

    /// 422 for a JSON patch that fails to apply (`NewGenericServerResponse(422, …)` in
    /// `k8s.io/apiserver/pkg/endpoints/handlers/patch.go`, `applyJSPatch`).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// An admission webhook's denial: kube-apiserver answers 400 BadRequest with the webhook's
    /// message (kubectl printed `Error from server (BadRequest): admission webhook …`).
    pub fn webhook_denied(denied: crate::tekton_webhook::admission::Denied) -> Self {
        Self::bad_request(denied.message)
    }

    /// `NewForbidden` with the authorizer's message (`responsewriters.forbiddenMessage`).
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = if resource.is_empty() {
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!("{} is forbidden: {why}", qualified(group, resource))
        } else {
            format!(
                "{} {name:?} is forbidden: {why}",
                qualified(group, resource)
            )
        };
        Self::new(403, "Forbidden", message).about(group, resource, name)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// `NewResourceExpired` (410 Gone, reason `Expired`), sent as a watch `ERROR` event.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn method_not_supported(group: &str, resource: &str, verb: &str) -> Self {
        let message = format!(
            "{verb} is not supported on resources of kind {:?}",
            qualified(group, resource)
        );
        Self::new(405, "MethodNotAllowed", message).about(group, resource, "")
    }

    /// 415 for a patch type the emulator does not apply. kube-apiserver's message lists the types
    /// it accepts; server-side apply is not among the emulator's.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (server-side apply is not served by the sandbox); got {content_type}"
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    pub fn too_many_requests(retry_after: u32) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        e.details = Some(json!({"retryAfterSeconds": retry_after}));
        e
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// The `metav1.Status` body.
    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v["code"] = json!(self.code);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_kube_apiserver() {
        assert_eq!(
            StatusError::not_found("tekton.dev", "pipelineruns", "x").message,
            r#"pipelineruns.tekton.dev "x" not found"#
        );
        assert_eq!(
            StatusError::stale("tekton.dev", "pipelineruns", "x").message,
            r#"Operation cannot be fulfilled on pipelineruns.tekton.dev "x": the object has been modified; please apply your changes to the latest version and try again"#
        );
        assert_eq!(
            StatusError::already_exists("", "configmaps", "c").message,
            r#"configmaps "c" already exists"#
        );
        let s: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status =
            serde_json::from_value(StatusError::not_found("", "pods", "p").to_value())
                .expect("Status");
        assert_eq!(s.code, Some(404));
        assert_eq!(s.details.and_then(|d| d.kind).as_deref(), Some("pods"));
    }

    #[test]
    fn a_webhook_denial_is_a_bad_request_with_its_message() {
        let denied = crate::tekton_webhook::admission::Denied {
            message: "admission webhook \"w\" denied the request: no".into(),
        };
        let e = StatusError::webhook_denied(denied.clone());
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        assert_eq!(e.message, denied.message);
    }
}

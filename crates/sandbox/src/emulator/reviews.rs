//! SubjectAccessReview, SelfSubjectAccessReview and TokenReview, answered from the sandbox policy
//! (`pkg/registry/authorization/subjectaccessreview/rest.go`, `selfsubjectaccessreview/rest.go`,
//! `pkg/registry/authentication/tokenreview/storage.go`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::status::StatusError;
use crate::policy::{Attributes, Policy};
use tekton_retry::api::UserInfo;

fn attributes(spec: &Value) -> Result<Attributes, StatusError> {
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(Attributes {
            verb: s("verb"),
            resource_request: true,
            api_group: s("group"),
            api_version: s("version"),
            resource: s("resource"),
            subresource: s("subresource"),
            namespace: s("namespace"),
            name: s("name"),
            path: String::new(),
        });
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(Attributes::non_resource(&s("verb"), &s("path")));
    }
    Err(StatusError::invalid(
        "authorization.k8s.io",
        "SubjectAccessReview",
        "",
        &[("spec.resourceAttributes", "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified".into())],
    ))
}

fn answer(mut body: Value, policy: &Policy, user: &UserInfo, attrs: &Attributes) -> Value {
    let d = policy.authorize(user, attrs);
    let mut status = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        status["reason"] = json!(d.reason);
    }
    body["status"] = status;
    if body.get("metadata").is_none() {
        body["metadata"] = json!({});
    }
    body["metadata"]["creationTimestamp"] = Value::Null;
    body
}

/// Answer a review `kind` created by `caller`.
pub fn handle(
    kind: &str,
    body: Value,
    policy: &Policy,
    caller: &UserInfo,
) -> Result<Value, StatusError> {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    match kind {
        "SelfSubjectAccessReview" => {
            let attrs = attributes(&spec)?;
            Ok(answer(body, policy, caller, &attrs))
        }
        "SubjectAccessReview" => {
            let attrs = attributes(&spec)?;
            let user = UserInfo {
                username: spec
                    .get("user")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                uid: spec.get("uid").and_then(Value::as_str).map(str::to_string),
                groups: spec
                    .get("groups")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|g| g.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                extra: serde_json::from_value::<BTreeMap<String, Vec<String>>>(
                    spec.get("extra").cloned().unwrap_or(json!({})),
                )
                .unwrap_or_default(),
            };
            if user.username.is_empty() && user.groups.is_empty() {
                return Err(StatusError::invalid(
                    "authorization.k8s.io",
                    "SubjectAccessReview",
                    "",
                    &[(
                        "spec.user",
                        "Invalid value: \"\": at least one of user or group must be specified"
                            .into(),
                    )],
                ));
            }
            Ok(answer(body, policy, &user, &attrs))
        }
        // `pkg/registry/authentication/selfsubjectreview/rest.go`: who the caller is.
        "SelfSubjectReview" => {
            let mut user = json!({"username": caller.username, "groups": caller.groups});
            if let Some(uid) = &caller.uid {
                user["uid"] = json!(uid);
            }
            if !caller.extra.is_empty() {
                user["extra"] = json!(caller.extra);
            }
            Ok(
                json!({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": null}, "status": {"userInfo": user}}),
            )
        }
        "TokenReview" => {
            let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
            let mut out = body.clone();
            out["metadata"] = json!({"creationTimestamp": null});
            out["status"] = match policy.authenticate_token(token) {
                Some(u) => {
                    let mut user = json!({"username": u.username, "groups": u.groups});
                    if let Some(uid) = u.uid {
                        user["uid"] = json!(uid);
                    }
                    if !u.extra.is_empty() {
                        user["extra"] = json!(u.extra);
                    }
                    json!({"authenticated": true, "user": user, "audiences": spec.get("audiences").cloned().unwrap_or(json!([]))})
                }
                None => json!({"user": {}}),
            };
            Ok(out)
        }
        other => Err(StatusError::internal(format!(
            "no review handler for {other}"
        ))),
    }
}

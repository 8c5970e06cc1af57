//! The engine's Kubernetes API wrapper. Every call names its permission from
//! [`crate::rbac::SERVER_API_CALLS`] and is refused here if the list does not grant it, so the
//! deployed ClusterRole (checked against the same list) always covers what the code does.

use std::time::Duration;

use http::{header, Method, Request};
use serde_json::{json, Value};

use crate::rbac;

/// A failed API call, classified the way the executor needs it.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{what}: not found")]
    NotFound { what: String },
    #[error("{what}: conflict: {message}")]
    Conflict { what: String, message: String },
    /// Any other answer from the API server (status code and its message).
    #[error("{what}: the Kubernetes API answered {code}: {message}")]
    Api {
        what: String,
        code: u16,
        message: String,
        reason: String,
    },
    #[error("{what}: the Kubernetes API did not answer in time")]
    Timeout { what: String },
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    /// A name that is not an object name (empty, `.`, `..`, or with `/`): as a URL it would
    /// address the collection or another path (an empty name makes a DELETE a deletecollection).
    #[error("refusing to {verb} {resource} named {name:?}: not an object name")]
    BadName {
        verb: &'static str,
        resource: &'static str,
        name: String,
    },
    #[error("the server's permission list does not grant {verb} on {resource}: refusing the call")]
    NotGranted {
        verb: &'static str,
        resource: &'static str,
    },
}

impl ClusterError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClusterError::NotFound { .. })
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, ClusterError::Conflict { .. })
    }
}

/// Identifies one object kind the engine touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
}

impl Kind {
    fn base(&self, namespace: &str) -> String {
        if self.group.is_empty() {
            format!(
                "/api/{}/namespaces/{}/{}",
                self.version, namespace, self.resource
            )
        } else {
            format!(
                "/apis/{}/{}/namespaces/{}/{}",
                self.group, self.version, namespace, self.resource
            )
        }
    }
}

pub const PIPELINERUNS: Kind = Kind {
    group: "tekton.dev",
    version: "v1",
    resource: "pipelineruns",
};
pub const TASKRUNS: Kind = Kind {
    group: "tekton.dev",
    version: "v1",
    resource: "taskruns",
};
pub const CUSTOMRUNS: Kind = Kind {
    group: "tekton.dev",
    version: "v1beta1",
    resource: "customruns",
};
pub const PIPELINES: Kind = Kind {
    group: "tekton.dev",
    version: "v1",
    resource: "pipelines",
};
pub const PODS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "pods",
};
pub const PVCS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "persistentvolumeclaims",
};
pub const CONFIGMAPS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "configmaps",
};
pub const EVENTS: Kind = Kind {
    group: "",
    version: "v1",
    resource: "events",
};

/// The kind of a child run, from its `kind` field.
pub fn child_kind(kind: &str) -> Option<Kind> {
    match kind {
        "TaskRun" => Some(TASKRUNS),
        "CustomRun" => Some(CUSTOMRUNS),
        "PipelineRun" => Some(PIPELINERUNS),
        _ => None,
    }
}

/// The engine's handle on the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    timeout: Duration,
}

const MERGE_PATCH: &str = "application/merge-patch+json";

impl Cluster {
    pub fn new(client: kube::Client) -> Self {
        Cluster {
            client,
            timeout: Duration::from_secs(15),
        }
    }

    /// Per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn permit(
        kind: Kind,
        sub: Option<&'static str>,
        verb: &'static str,
    ) -> Result<(), ClusterError> {
        let resource: &'static str = match sub {
            None => kind.resource,
            Some("status") => match kind.resource {
                "pipelineruns" => "pipelineruns/status",
                _ => "unknown/status",
            },
            Some("log") => "pods/log",
            Some(_) => "unknown",
        };
        if rbac::allowed(kind.group, resource, verb) {
            Ok(())
        } else {
            Err(ClusterError::NotGranted { verb, resource })
        }
    }

    async fn send(
        &self,
        what: String,
        method: Method,
        uri: String,
        content_type: Option<&str>,
        body: Option<Value>,
        audit_id: Option<&str>,
    ) -> Result<Value, ClusterError> {
        let text = self
            .send_text(what.clone(), method, uri, content_type, body, audit_id)
            .await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ClusterError::Transport {
            what,
            message: format!("undecodable answer: {e}"),
        })
    }

    async fn send_text(
        &self,
        what: String,
        method: Method,
        uri: String,
        content_type: Option<&str>,
        body: Option<Value>,
        audit_id: Option<&str>,
    ) -> Result<String, ClusterError> {
        let counted = method.clone();
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        if let Some(id) = audit_id {
            builder = builder.header("Audit-ID", id);
        }
        let bytes = match body {
            Some(b) => serde_json::to_vec(&b).unwrap_or_default(),
            None => Vec::new(),
        };
        let req = builder.body(bytes).map_err(|e| ClusterError::Transport {
            what: what.clone(),
            message: e.to_string(),
        })?;
        let answer = tokio::time::timeout(self.timeout, self.client.request_text(req)).await;
        let result = match &answer {
            Err(_) => "timeout",
            Ok(Ok(_)) => "ok",
            Ok(Err(kube::Error::Api(s))) if (400..500).contains(&s.code) => "client_error",
            Ok(Err(_)) => "server_error",
        };
        super::api_calls::count(&counted, result);
        match answer {
            Err(_) => Err(ClusterError::Timeout { what }),
            Ok(Ok(text)) => Ok(text),
            Ok(Err(e)) => Err(classify(what, e)),
        }
    }

    /// GET one object.
    pub async fn get(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        Self::permit(kind, None, "get")?;
        let uri = format!("{}/{}", kind.base(ns), name);
        self.send(
            format!("get {} {ns}/{name}", kind.resource),
            Method::GET,
            uri,
            None,
            None,
            audit,
        )
        .await
    }

    /// LIST with a label selector; returns the items.
    pub async fn list(
        &self,
        kind: Kind,
        ns: &str,
        selector: &str,
        audit: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        Self::permit(kind, None, "list")?;
        let mut uri = kind.base(ns);
        if !selector.is_empty() {
            uri.push_str("?labelSelector=");
            uri.push_str(
                &percent_encoding::utf8_percent_encode(
                    selector,
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string(),
            );
        }
        let v = self
            .send(
                format!("list {} in {ns}", kind.resource),
                Method::GET,
                uri,
                None,
                None,
                audit,
            )
            .await?;
        Ok(v.get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// JSON merge patch of the main resource. Put `metadata.resourceVersion` in the patch to fence it.
    pub async fn merge_patch(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        patch: Value,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        Self::permit(kind, None, "patch")?;
        let uri = format!("{}/{}", kind.base(ns), name);
        self.send(
            format!("patch {} {ns}/{name}", kind.resource),
            Method::PATCH,
            uri,
            Some(MERGE_PATCH),
            Some(patch),
            audit,
        )
        .await
    }

    /// JSON merge patch of the status subresource.
    pub async fn merge_patch_status(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        patch: Value,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        Self::permit(kind, Some("status"), "patch")?;
        let uri = format!("{}/{}/status", kind.base(ns), name);
        self.send(
            format!("patch {}/status {ns}/{name}", kind.resource),
            Method::PATCH,
            uri,
            Some(MERGE_PATCH),
            Some(patch),
            audit,
        )
        .await
    }

    /// Foreground DELETE with a uid precondition. NotFound and a uid mismatch (someone else's object
    /// by now) are reported as errors for the caller to judge.
    pub async fn delete_foreground(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        uid: &str,
        audit: Option<&str>,
    ) -> Result<(), ClusterError> {
        Self::permit(kind, None, "delete")?;
        object_name(kind.resource, "delete", name)?;
        let uri = format!("{}/{}", kind.base(ns), name);
        let body = json!({
            "apiVersion": "v1", "kind": "DeleteOptions",
            "propagationPolicy": "Foreground",
            "preconditions": {"uid": uid},
        });
        self.send(
            format!("delete {} {ns}/{name}", kind.resource),
            Method::DELETE,
            uri,
            Some("application/json"),
            Some(body),
            audit,
        )
        .await
        .map(|_| ())
    }

    /// The tail of a container's log: at most `max_bytes`, cut at a line start.
    pub async fn pod_log_tail(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        max_bytes: usize,
        audit: Option<&str>,
    ) -> Result<String, ClusterError> {
        Self::permit(PODS, Some("log"), "get")?;
        // `limitBytes` counts from the start, so ask for the last lines instead: a few first, and
        // only if those are short and there may be more, enough lines to fill `max_bytes`
        // (a line is at least one byte).
        let mut text = String::new();
        for lines in [2_000, max_bytes.max(1)] {
            let uri = format!(
                "{}/{}/log?container={}&tailLines={lines}",
                PODS.base(ns),
                pod,
                container
            );
            text = self
                .send_text(
                    format!("log of {ns}/{pod}/{container}"),
                    Method::GET,
                    uri,
                    None,
                    None,
                    audit,
                )
                .await?;
            if text.len() >= max_bytes || text.lines().count() < lines {
                break;
            }
        }
        Ok(tail_bytes(&text, max_bytes).to_string())
    }

    /// POST a new object.
    pub async fn create(
        &self,
        kind: Kind,
        ns: &str,
        obj: Value,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        Self::permit(kind, None, "create")?;
        let uri = kind.base(ns);
        self.send(
            format!("create {} in {ns}", kind.resource),
            Method::POST,
            uri,
            Some("application/json"),
            Some(obj),
            audit,
        )
        .await
    }

    /// PUT an object (its `metadata.resourceVersion` fences the write).
    pub async fn replace(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        obj: Value,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        Self::permit(kind, None, "update")?;
        let uri = format!("{}/{}", kind.base(ns), name);
        self.send(
            format!("update {} {ns}/{name}", kind.resource),
            Method::PUT,
            uri,
            Some("application/json"),
            Some(obj),
            audit,
        )
        .await
    }
}

/// The last `max` bytes of `text`, starting at a line boundary when one is near.
pub fn tail_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let cut = &text[start..];
    match cut.find('\n') {
        Some(i) if i + 1 < cut.len() => &cut[i + 1..],
        _ => cut,
    }
}

fn classify(what: String, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) => {
            let code = s.code;
            let message = s.message.clone();
            let reason = s.reason.clone();
            match code {
                404 => ClusterError::NotFound { what },
                409 => ClusterError::Conflict { what, message },
                504 => ClusterError::Timeout { what },
                _ => ClusterError::Api {
                    what,
                    code,
                    message,
                    reason,
                },
            }
        }
        other => ClusterError::Transport {
            what,
            message: other.to_string(),
        },
    }
}

/// `name` if it can be the last segment of an object's URL (apimachinery
/// `pkg/api/validation/path/name.go` `IsValidPathSegmentName`, which
/// kube-apiserver applies to every object name): not empty, not `.` or `..`, no `/` or `%`.
pub fn object_name<'a>(
    resource: &'static str,
    verb: &'static str,
    name: &'a str,
) -> Result<&'a str, ClusterError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '%']) {
        return Err(ClusterError::BadName {
            verb,
            resource,
            name: name.to_string(),
        });
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_address_another_url_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a%2Fb"] {
            assert!(
                matches!(
                    object_name("taskruns", "delete", bad),
                    Err(ClusterError::BadName { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            object_name("taskruns", "delete", "demo-run-b").ok(),
            Some("demo-run-b")
        );
    }

    #[test]
    fn tail_keeps_the_end_from_a_line_start() {
        let text = "line one\nline two\nline three\n";
        assert_eq!(tail_bytes(text, 100), text);
        assert_eq!(tail_bytes(text, 14), "line three\n");
        let s = "ééééé";
        assert!(tail_bytes(s, 3).len() <= 3);
    }

    #[test]
    fn every_kind_the_engine_uses_is_granted() {
        for (kind, sub, verb) in [
            (PIPELINERUNS, None, "get"),
            (PIPELINERUNS, None, "patch"),
            (PIPELINERUNS, Some("status"), "patch"),
            (TASKRUNS, None, "delete"),
            (CUSTOMRUNS, None, "delete"),
            (PODS, None, "list"),
            (PODS, Some("log"), "get"),
            (CONFIGMAPS, None, "create"),
            (CONFIGMAPS, None, "update"),
            (EVENTS, None, "create"),
        ] {
            assert!(
                Cluster::permit(kind, sub, verb).is_ok(),
                "{verb} {} {sub:?}",
                kind.resource
            );
        }
        assert!(Cluster::permit(PODS, None, "delete").is_err());
        assert!(Cluster::permit(CONFIGMAPS, None, "delete").is_err());
    }
}

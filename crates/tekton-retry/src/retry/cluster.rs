//! The engine's Kubernetes API wrapper. Every call names its permission from
//! [`crate::rbac::SERVER_API_CALLS`] and is refused here if the list does not grant it, so the
//! deployed ClusterRole (checked against the same list) always covers what the code does.

use std::time::Duration;

use http::{header, Method, Request};
use percent_encoding::AsciiSet;
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

/// A Kubernetes API resource the engine touches: the group, version and plural name its URLs
/// carry, and the `kind` of its objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
}

impl Resource {
    const fn new(
        group: &'static str,
        version: &'static str,
        plural: &'static str,
        kind: &'static str,
    ) -> Self {
        Resource {
            group,
            version,
            plural,
            kind,
        }
    }

    /// The URL of the object `namespace/name`: the one place an object name goes into a URL, so
    /// both names are checked here ([`object_name`]) for every verb.
    fn object_url(
        &self,
        verb: &'static str,
        namespace: &str,
        name: &str,
    ) -> Result<String, ClusterError> {
        let collection = self.collection_url(verb, namespace)?;
        Ok(format!(
            "{collection}/{}",
            object_name(self.plural, verb, name)?
        ))
    }

    /// The URL of the objects in `namespace` (checked: [`object_name`]).
    pub(crate) fn collection_url(
        &self,
        verb: &'static str,
        namespace: &str,
    ) -> Result<String, ClusterError> {
        let namespace = object_name("namespaces", verb, namespace)?;
        let (version, plural) = (self.version, self.plural);
        Ok(if self.group.is_empty() {
            format!("/api/{version}/namespaces/{namespace}/{plural}")
        } else {
            let group = self.group;
            format!("/apis/{group}/{version}/namespaces/{namespace}/{plural}")
        })
    }
}

pub const PIPELINERUNS: Resource = Resource::new("tekton.dev", "v1", "pipelineruns", "PipelineRun");
/// A PipelineRun itself, as a [`Cluster::merge_patch`] target.
pub const RUN: (Resource, Option<&'static str>) = (PIPELINERUNS, None);
/// A PipelineRun's status subresource, as a [`Cluster::merge_patch`] target.
pub const RUN_STATUS: (Resource, Option<&'static str>) = (PIPELINERUNS, Some("status"));
pub const TASKRUNS: Resource = Resource::new("tekton.dev", "v1", "taskruns", "TaskRun");
pub const CUSTOMRUNS: Resource = Resource::new("tekton.dev", "v1beta1", "customruns", "CustomRun");
pub const PIPELINES: Resource = Resource::new("tekton.dev", "v1", "pipelines", "Pipeline");
pub const TASKS: Resource = Resource::new("tekton.dev", "v1", "tasks", "Task");
pub const PODS: Resource = Resource::new("", "v1", "pods", "Pod");
pub const PVCS: Resource =
    Resource::new("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim");
pub const CONFIGMAPS: Resource = Resource::new("", "v1", "configmaps", "ConfigMap");
pub const EVENTS: Resource = Resource::new("", "v1", "events", "Event");

/// The resource of a child run, from its `kind` field.
pub fn child_run_resource(kind: &str) -> Option<Resource> {
    [TASKRUNS, CUSTOMRUNS, PIPELINERUNS]
        .into_iter()
        .find(|r| r.kind == kind)
}

/// The engine's handle on the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    timeout: Duration,
    /// The server's own namespace, where [`rbac::OWN_NAMESPACE_CALLS`] are granted.
    own_namespace: std::sync::Arc<str>,
    /// Client-side rate limit toward kube-apiserver (shared by clones).
    bucket: std::sync::Arc<super::ratelimit::TokenBucket>,
}

const MERGE_PATCH: &str = "application/merge-patch+json";
const JSON: &str = "application/json";

impl Cluster {
    pub fn new(client: kube::Client) -> Self {
        Cluster {
            client,
            timeout: Duration::from_secs(15),
            own_namespace: rbac::DEFAULT_NAMESPACE.into(),
            bucket: std::sync::Arc::new(super::ratelimit::TokenBucket::new(
                super::ratelimit::RateLimit::default(),
            )),
        }
    }

    /// Limits the requests toward kube-apiserver to `limit` (shared by every clone made after).
    pub fn with_rate_limit(mut self, limit: super::ratelimit::RateLimit) -> Self {
        self.bucket = std::sync::Arc::new(super::ratelimit::TokenBucket::new(limit));
        self
    }

    /// The namespace the server runs in (its records live there).
    pub fn with_own_namespace(mut self, namespace: &str) -> Self {
        self.own_namespace = namespace.into();
        self
    }

    pub fn own_namespace(&self) -> &str {
        &self.own_namespace
    }

    /// Per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn permit(
        &self,
        resource: Resource,
        ns: &str,
        sub: Option<&'static str>,
        verb: &'static str,
    ) -> Result<(), ClusterError> {
        permitted(&self.own_namespace, resource, ns, sub, verb)
    }
}

/// Whether the server's permission lists grant `verb` on `resource` (`sub`resource) in `ns`, for a
/// server running in `own_namespace`.
fn permitted(
    own_namespace: &str,
    resource: Resource,
    ns: &str,
    sub: Option<&'static str>,
    verb: &'static str,
) -> Result<(), ClusterError> {
    let group = resource.group;
    let resource: &'static str = match sub {
        None => resource.plural,
        Some("status") => match resource.plural {
            "pipelineruns" => "pipelineruns/status",
            _ => "unknown/status",
        },
        Some("log") => "pods/log",
        Some(_) => "unknown",
    };
    let in_own = ns == own_namespace && rbac::allowed_in_own_namespace(group, resource, verb);
    if in_own || rbac::allowed(group, resource, verb) {
        Ok(())
    } else {
        Err(ClusterError::NotGranted { verb, resource })
    }
}

impl Cluster {
    /// Sends a request (`body`: its content type and JSON) and returns the answer's text.
    async fn send_text(
        &self,
        what: String,
        method: Method,
        uri: String,
        body: Option<(&'static str, Value)>,
        audit_id: Option<&str>,
    ) -> Result<String, ClusterError> {
        let counted = method.clone();
        self.bucket.acquire().await;
        let req = request(&what, method, uri, body, audit_id)?;
        let answer = tokio::time::timeout(self.timeout, self.client.request_text(req)).await;
        settle(what, &counted, answer)
    }

    /// A request on the objects of `resource` in `ns`: `verb` names the permission it needs and
    /// its method.
    async fn collection_request(
        &self,
        verb: &'static str,
        resource: Resource,
        ns: &str,
        query: &str,
        body: Option<(&'static str, Value)>,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        self.permit(resource, ns, None, verb)?;
        let uri = format!("{}{query}", resource.collection_url(verb, ns)?);
        let what = format!("{verb} {} in {ns}", resource.plural);
        let text = self
            .send_text(what.clone(), method_of(verb), uri, body, audit)
            .await?;
        decode_answer(what, &text)
    }

    /// A request on the object `ns/name` of `resource` (or its subresource `sub`): `verb` names
    /// the permission it needs and its method.
    async fn object_request(
        &self,
        verb: &'static str,
        (resource, sub): (Resource, Option<&'static str>),
        (ns, name): (&str, &str),
        body: Option<(&'static str, Value)>,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        self.permit(resource, ns, sub, verb)?;
        let mut uri = resource.object_url(verb, ns, name)?;
        let mut addressed = resource.plural.to_string();
        if let Some(sub) = sub {
            uri = format!("{uri}/{sub}");
            addressed = format!("{addressed}/{sub}");
        }
        let what = format!("{verb} {addressed} {ns}/{name}");
        let text = self
            .send_text(what.clone(), method_of(verb), uri, body, audit)
            .await?;
        decode_answer(what, &text)
    }

    /// LIST with a label selector; returns the items and the list's resourceVersion (to watch
    /// from).
    pub async fn list_at(
        &self,
        resource: Resource,
        ns: &str,
        selector: &str,
        audit: Option<&str>,
    ) -> Result<(Vec<Value>, String), ClusterError> {
        let query = match selector {
            "" => String::new(),
            s => format!("?labelSelector={}", encode(s)),
        };
        let v = self
            .collection_request("list", resource, ns, &query, None, audit)
            .await?;
        let rv = v
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok((items, rv))
    }

    /// WATCH objects of `resource` in `ns` matching `labels` / `fields` from `resource_version`
    /// (empty: the current state first, as ADDED events), ending after `timeout`. Counted once,
    /// as the request that opens it.
    pub async fn watch(
        &self,
        resource: Resource,
        ns: &str,
        query: &WatchQuery<'_>,
        audit: Option<&str>,
    ) -> Result<WatchStream, ClusterError> {
        let WatchQuery {
            labels,
            fields,
            resource_version,
            timeout,
        } = *query;
        self.permit(resource, ns, None, "watch")?;
        let mut uri = format!(
            "{}?watch=true&timeoutSeconds={}",
            resource.collection_url("watch", ns)?,
            timeout.as_secs().max(1)
        );
        let params = [
            ("labelSelector", labels),
            ("fieldSelector", fields),
            ("resourceVersion", resource_version),
        ];
        push_query(&mut uri, &params, percent_encoding::NON_ALPHANUMERIC);
        let what = format!("watch {} in {ns}", resource.plural);
        let req = request(&what, Method::GET, uri, None, audit)?;
        self.bucket.acquire().await;
        let opened =
            tokio::time::timeout(self.timeout, self.client.request_events::<Value>(req)).await;
        settle(what, &Method::GET, opened).map(|stream| Box::pin(stream) as WatchStream)
    }

    /// GET one object.
    pub async fn get(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        self.object_request("get", (resource, None), (ns, name), None, audit)
            .await
    }

    /// LIST with a label selector; returns the items.
    pub async fn list(
        &self,
        resource: Resource,
        ns: &str,
        selector: &str,
        audit: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.list_at(resource, ns, selector, audit)
            .await
            .map(|(items, _)| items)
    }

    /// JSON merge patch of an object, or of a subresource of it ([`RUN_STATUS`] is the only one the
    /// server writes). Put `metadata.resourceVersion` in the patch to fence it.
    pub async fn merge_patch(
        &self,
        target: (Resource, Option<&'static str>),
        (ns, name): (&str, &str),
        patch: Value,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        let body = Some((MERGE_PATCH, patch));
        self.object_request("patch", target, (ns, name), body, audit)
            .await
    }

    /// Foreground DELETE with a uid precondition. NotFound and a uid mismatch (someone else's object
    /// by now) are reported as errors for the caller to judge.
    pub async fn delete_foreground(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        uid: &str,
        audit: Option<&str>,
    ) -> Result<(), ClusterError> {
        let body = json!({
            "apiVersion": "v1", "kind": "DeleteOptions",
            "propagationPolicy": "Foreground",
            "preconditions": {"uid": uid},
        });
        let body = Some((JSON, body));
        self.object_request("delete", (resource, None), (ns, name), body, audit)
            .await
            .map(|_| ())
    }

    /// Plain DELETE of a ConfigMap in the server's own namespace (a record whose run is gone).
    pub async fn delete_configmap(&self, ns: &str, name: &str) -> Result<(), ClusterError> {
        self.object_request("delete", (CONFIGMAPS, None), (ns, name), None, None)
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
        self.permit(PODS, ns, Some("log"), "get")?;
        // `limitBytes` counts from the start, so ask for the last lines instead: a few first, and
        // only if those are short and there may be more, enough lines to fill `max_bytes`
        // (a line is at least one byte).
        let mut text = String::new();
        for lines in [2_000, max_bytes.max(1)] {
            let uri = format!(
                "{}/log?container={}&tailLines={lines}",
                PODS.object_url("get", ns, pod)?,
                encode(container)
            );
            let what = format!("log of {ns}/{pod}/{container}");
            text = self.send_text(what, Method::GET, uri, None, audit).await?;
            if text.len() >= max_bytes || text.lines().count() < lines {
                break;
            }
        }
        Ok(tail_bytes(&text, max_bytes).to_string())
    }

    /// POST a new object.
    pub async fn create(
        &self,
        resource: Resource,
        ns: &str,
        obj: Value,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        self.collection_request("create", resource, ns, "", Some((JSON, obj)), audit)
            .await
    }

    /// PUT a ConfigMap (its `metadata.resourceVersion` fences the write).
    pub async fn replace_configmap(
        &self,
        (ns, name): (&str, &str),
        configmap: Value,
        audit: Option<&str>,
    ) -> Result<Value, ClusterError> {
        let body = Some((JSON, configmap));
        self.object_request("update", (CONFIGMAPS, None), (ns, name), body, audit)
            .await
    }
}

/// The JSON of an answer's text (an empty answer is `null`).
fn decode_answer(what: String, text: &str) -> Result<Value, ClusterError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| ClusterError::Transport {
        what,
        message: format!("undecodable answer: {e}"),
    })
}

/// The HTTP method of a request that needs the permission `verb`.
fn method_of(verb: &str) -> Method {
    match verb {
        "create" => Method::POST,
        "update" => Method::PUT,
        "patch" => Method::PATCH,
        "delete" => Method::DELETE,
        _ => Method::GET,
    }
}

/// A request with its `Audit-ID` and, with a `body`, its content type.
fn request(
    what: &str,
    method: Method,
    uri: String,
    body: Option<(&'static str, Value)>,
    audit_id: Option<&str>,
) -> Result<Request<Vec<u8>>, ClusterError> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(id) = audit_id {
        builder = builder.header("Audit-ID", id);
    }
    let bytes = match body {
        Some((content_type, json)) => {
            builder = builder.header(header::CONTENT_TYPE, content_type);
            serde_json::to_vec(&json).unwrap_or_default()
        }
        None => Vec::new(),
    };
    builder.body(bytes).map_err(|e| ClusterError::Transport {
        what: what.to_string(),
        message: e.to_string(),
    })
}

/// Counts the outcome of a request sent with `method` and turns its timeout or error into a
/// [`ClusterError`] about `what`.
fn settle<T>(
    what: String,
    method: &Method,
    answer: Result<Result<T, kube::Error>, tokio::time::error::Elapsed>,
) -> Result<T, ClusterError> {
    let result = match &answer {
        Err(_) => "timeout",
        Ok(Ok(_)) => "ok",
        Ok(Err(kube::Error::Api(s))) if (400..500).contains(&s.code) => "client_error",
        Ok(Err(_)) => "server_error",
    };
    super::api_calls::count(method, result);
    match answer {
        Err(_) => Err(ClusterError::Timeout { what }),
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(classify(what, e)),
    }
}

/// Appends `&key=value` to `uri` for each parameter that has a value (an empty one is left out:
/// no selector, or no resourceVersion to start from), the bytes of the value in `escaped` (and all
/// non-ASCII ones) percent-encoded. Shared with the kubectl plugin's watches.
pub fn push_query(uri: &mut String, params: &[(&str, &str)], escaped: &'static AsciiSet) {
    for (key, value) in params {
        if !value.is_empty() {
            let value = percent_encoding::utf8_percent_encode(value, escaped);
            uri.push_str(&format!("&{key}={value}"));
        }
    }
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What a watch selects and where it starts.
#[derive(Clone, Copy, Debug)]
pub struct WatchQuery<'a> {
    /// Label selector (empty: all).
    pub labels: &'a str,
    /// Field selector (empty: all).
    pub fields: &'a str,
    /// Where to start (empty: the current state first, as ADDED events).
    pub resource_version: &'a str,
    /// When the server ends the watch.
    pub timeout: Duration,
}

/// The events of a watch.
pub type WatchStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<kube::core::WatchEvent<Value>, kube::Error>> + Send>,
>;

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
    fn query_parameters_without_a_value_are_left_out() {
        let mut uri = "/api/v1/pods?watch=true".to_string();
        let params = [
            ("labelSelector", "tekton.dev/pipelineRun=run-1"),
            ("fieldSelector", ""),
            ("resourceVersion", "42"),
        ];
        push_query(&mut uri, &params, percent_encoding::NON_ALPHANUMERIC);
        assert_eq!(
            uri,
            "/api/v1/pods?watch=true&labelSelector=tekton%2Edev%2FpipelineRun%3Drun%2D1&resourceVersion=42"
        );
    }

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
    fn every_object_url_checks_both_names() {
        assert_eq!(
            PODS.object_url("get", "demo", "p-1").ok().as_deref(),
            Some("/api/v1/namespaces/demo/pods/p-1")
        );
        for (ns, name) in [
            ("demo", "../x"),
            ("demo", ""),
            ("..", "p"),
            ("a/b", "p"),
            ("demo", "a%2F"),
        ] {
            assert!(
                matches!(
                    TASKRUNS.object_url("patch", ns, name),
                    Err(ClusterError::BadName { .. })
                ),
                "{ns:?}/{name:?}"
            );
        }
    }

    #[tokio::test]
    async fn get_patch_replace_and_log_refuse_bad_names_before_any_call() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let svc = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async {
                Err::<http::Response<kube::client::Body>, std::io::Error>(std::io::Error::other(
                    "no API in this test",
                ))
            }
        });
        let c = Cluster::new(kube::Client::new(svc, "default"));
        let bad = "../../api/v1/secrets";
        let r = c.get(PIPELINERUNS, "demo", bad, None).await;
        assert!(matches!(r, Err(ClusterError::BadName { .. })), "{r:?}");
        let r = c.merge_patch(RUN, ("demo", bad), json!({}), None).await;
        assert!(matches!(r, Err(ClusterError::BadName { .. })), "{r:?}");
        let r = c
            .merge_patch(RUN_STATUS, ("demo", bad), json!({}), None)
            .await;
        assert!(matches!(r, Err(ClusterError::BadName { .. })), "{r:?}");
        let r = c
            .replace_configmap((crate::rbac::DEFAULT_NAMESPACE, bad), json!({}), None)
            .await;
        assert!(matches!(r, Err(ClusterError::BadName { .. })), "{r:?}");
        let r = c.pod_log_tail("demo", bad, "step", 100, None).await;
        assert!(matches!(r, Err(ClusterError::BadName { .. })), "{r:?}");
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
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
        for (resource, sub, verb) in [
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
                permitted(rbac::DEFAULT_NAMESPACE, resource, "team-a", sub, verb).is_ok()
                    || (resource == CONFIGMAPS
                        && permitted(
                            rbac::DEFAULT_NAMESPACE,
                            resource,
                            rbac::DEFAULT_NAMESPACE,
                            sub,
                            verb
                        )
                        .is_ok()),
                "{verb} {} {sub:?}",
                resource.plural
            );
        }
        assert!(permitted(rbac::DEFAULT_NAMESPACE, PODS, "team-a", None, "delete").is_err());
        // ConfigMaps only in the server's own namespace: never a tenant's.
        for verb in ["get", "create", "update", "delete"] {
            assert!(permitted(rbac::DEFAULT_NAMESPACE, CONFIGMAPS, "team-a", None, verb).is_err());
            assert!(permitted(
                rbac::DEFAULT_NAMESPACE,
                CONFIGMAPS,
                "kube-system",
                None,
                verb
            )
            .is_err());
            assert!(permitted("ops", CONFIGMAPS, "ops", None, verb).is_ok());
            assert!(permitted("ops", CONFIGMAPS, rbac::DEFAULT_NAMESPACE, None, verb).is_err());
        }
    }
}

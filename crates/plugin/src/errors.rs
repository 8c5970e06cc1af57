//! What the plugin prints, and with which exit code, when a call fails.
//!
//! The server's `metav1.Status` message is shown verbatim, the way kubectl shows it
//! (`Error from server (Conflict): <message>`); a 422 also lists `details.causes` as `FIELD: MESSAGE`.
//! A 404 or 503 that did not come from tekton-retry means the API group is not served: kube-apiserver
//! answers 404 `the server could not find the requested resource` for an unknown group, and the
//! aggregator answers a plain-text 503 `service unavailable` when the APIService is unavailable
//! (kubernetes `staging/src/k8s.io/kube-aggregator/pkg/apiserver/handler_proxy.go`, `proxyError`).

use serde_json::Value;

use tekton_retry::api::{APISERVICE_NAME, GROUP};

/// Exit code of a successful command.
pub const EXIT_OK: i32 = 0;
/// Exit code when the retry was refused, a call failed, or the followed run did not succeed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code of a usage error (clap uses it for its own errors).
pub const EXIT_USAGE: i32 = 2;

/// The hint printed when the `retry.tekton.dev` API is not served.
pub fn install_hint() -> String {
    format!("is tekton-retry installed? kubectl get apiservice {APISERVICE_NAME}")
}

/// A failed command: the text for stderr and the process exit code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub message: String,
    pub exit_code: i32,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit_code: EXIT_FAILED,
        }
    }
    /// A usage error (exit code 2), for checks clap cannot express.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit_code: EXIT_USAGE,
        }
    }
}

/// The reason word kubectl shows for a status code when the body carries none.
fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

/// kubectl's text for a status code when the body carries no message.
fn default_message(code: u16) -> String {
    match code {
        404 => "the server could not find the requested resource".into(),
        503 => "the server is currently unable to handle the request".into(),
        401 => "the server has asked for the client to provide credentials".into(),
        403 => "the server does not allow access to the requested resource".into(),
        504 => "the server was unable to return a response in the time allotted".into(),
        _ => format!(
            "an error on the server (HTTP {code}) has prevented the request from succeeding"
        ),
    }
}

/// Maps an HTTP error answer (`code` ≥ 400, raw `body`) of a call to the retry API to what is printed:
/// a 404 or 503 that is not a Status of our group adds the install hint.
pub fn from_response(code: u16, body: &str) -> Failure {
    map_response(code, body, true)
}

/// Maps an HTTP error answer of any other call (reading PipelineRuns, TaskRuns, ConfigMaps): the
/// message verbatim, no install hint.
pub fn from_other_response(code: u16, body: &str) -> Failure {
    map_response(code, body, false)
}

/// The string at `pointer` in `v`; empty when there is none.
fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn map_response(code: u16, body: &str, retry_api: bool) -> Failure {
    let status: Option<Value> = serde_json::from_str::<Value>(body)
        .ok()
        .filter(|v| v.get("kind").and_then(Value::as_str) == Some("Status"));
    let (reason, message, ours, causes) = match &status {
        Some(s) => {
            let reason = match str_at(s, "/reason") {
                "" => reason_for_code(code),
                r => r,
            };
            let message = match str_at(s, "/message") {
                "" => default_message(code),
                m => m.to_string(),
            };
            let ours = str_at(s, "/details/group") == GROUP;
            let causes: Vec<String> = s
                .pointer("/details/causes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| match (str_at(c, "/field"), str_at(c, "/message")) {
                    ("", msg) => msg.to_string(),
                    (field, msg) => format!("{field}: {msg}"),
                })
                .collect();
            (reason.to_string(), message, ours, causes)
        }
        None => {
            let text = body.trim();
            let message = if text.is_empty() {
                default_message(code)
            } else {
                text.to_string()
            };
            (
                reason_for_code(code).to_string(),
                message,
                false,
                Vec::new(),
            )
        }
    };
    let mut out = format!("Error from server ({reason}): {message}");
    if code == 422 {
        for cause in &causes {
            out.push_str("\n  ");
            out.push_str(cause);
        }
    }
    if retry_api && !ours && (code == 404 || code == 503) {
        out.push('\n');
        out.push_str(&install_hint());
    }
    Failure::new(out)
}

/// A call that got no HTTP answer at all (connection refused, TLS, DNS…).
pub fn transport(error: &dyn std::fmt::Display) -> Failure {
    Failure::new(format!("Unable to connect to the server: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tekton_retry::api::{ApiError, Cause};

    #[test]
    fn our_status_is_shown_verbatim_without_hint() {
        let e = ApiError::conflict(
            "pipelinerun demo/demo-succeeded succeeded: there is nothing to retry",
        )
        .with_name("demo-succeeded");
        let f = from_response(409, &String::from_utf8_lossy(&e.to_body()));
        assert_eq!(
            f.message,
            "Error from server (Conflict): pipelinerun demo/demo-succeeded succeeded: there is nothing to retry"
        );
        assert_eq!(f.exit_code, EXIT_FAILED);
    }

    #[test]
    fn our_not_found_has_no_install_hint() {
        let e = ApiError::not_found("pipelineruns.tekton.dev \"nope\" not found").with_name("nope");
        let f = from_response(404, &String::from_utf8_lossy(&e.to_body()));
        assert_eq!(
            f.message,
            "Error from server (NotFound): pipelineruns.tekton.dev \"nope\" not found"
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid(
            "PipelineRunRetry \"r\" is invalid",
            vec![
                Cause::invalid("spec.restartTasks[0]", "no pipeline task \"zz\""),
                Cause::forbidden("spec.acknowledgeNonIdempotent", "deploy is not idempotent"),
            ],
        )
        .with_name("r");
        let f = from_response(422, &String::from_utf8_lossy(&e.to_body()));
        assert_eq!(
            f.message,
            "Error from server (Invalid): PipelineRunRetry \"r\" is invalid\n  spec.restartTasks[0]: no pipeline task \"zz\"\n  spec.acknowledgeNonIdempotent: deploy is not idempotent"
        );
    }

    #[test]
    fn missing_group_gets_the_install_hint() {
        // What kube-apiserver answers for a group nobody serves.
        let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;
        let f = from_response(404, body);
        assert_eq!(
            f.message,
            "Error from server (NotFound): the server could not find the requested resource\nis tekton-retry installed? kubectl get apiservice v1alpha1.retry.tekton.dev"
        );
        assert_eq!(f.exit_code, 1);
        // A plain-text 404 (no Status at all) too.
        assert!(from_response(404, "404 page not found\n")
            .message
            .ends_with(&install_hint()));
    }

    #[test]
    fn unavailable_apiservice_gets_the_install_hint() {
        // kube-aggregator's proxyError: http.Error(w, "service unavailable", 503).
        let f = from_response(503, "service unavailable\n");
        assert_eq!(
            f.message,
            format!(
                "Error from server (ServiceUnavailable): service unavailable\n{}",
                install_hint()
            )
        );
        // Our own 503 (a Status of our group) is shown without the hint.
        let ours = ApiError::new(
            tekton_retry::api::StatusReason::ServiceUnavailable,
            "busy, retry in 5s",
        );
        let f = from_response(503, &String::from_utf8_lossy(&ours.to_body()));
        assert_eq!(
            f.message,
            "Error from server (ServiceUnavailable): busy, retry in 5s"
        );
    }

    #[test]
    fn forbidden_from_kube_apiserver_is_verbatim() {
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pipelineruns.retry.tekton.dev \"x\" is forbidden: User \"viewer\" cannot create resource \"pipelineruns/retry\" in API group \"retry.tekton.dev\" in the namespace \"demo\"","reason":"Forbidden","details":{"name":"x","group":"retry.tekton.dev","kind":"pipelineruns"},"code":403}"#;
        let f = from_response(403, body);
        assert!(f.message.starts_with("Error from server (Forbidden): pipelineruns.retry.tekton.dev \"x\" is forbidden: User \"viewer\""));
        assert!(!f.message.contains("installed"));
    }

    #[test]
    fn reads_of_tekton_objects_never_get_the_hint() {
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pipelineruns.tekton.dev \"x\" not found","reason":"NotFound","details":{"name":"x","group":"tekton.dev","kind":"pipelineruns"},"code":404}"#;
        assert_eq!(
            from_other_response(404, body).message,
            "Error from server (NotFound): pipelineruns.tekton.dev \"x\" not found"
        );
    }

    #[test]
    fn empty_bodies_get_kubectl_defaults() {
        assert_eq!(
            from_response(504, "").message,
            "Error from server (Timeout): the server was unable to return a response in the time allotted"
        );
    }
}

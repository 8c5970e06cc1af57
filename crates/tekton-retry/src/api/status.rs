use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{GROUP, KIND};

/// `metav1.StatusReason` values this server returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusReason {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    UnsupportedMediaType,
    Conflict,
    Invalid,
    RequestEntityTooLarge,
    TooManyRequests,
    InternalError,
    Timeout,
    ServiceUnavailable,
}

impl StatusReason {
    /// The HTTP status code and the reason's name on the wire.
    fn wire(self) -> (u16, &'static str) {
        match self {
            StatusReason::BadRequest => (400, "BadRequest"),
            StatusReason::Unauthorized => (401, "Unauthorized"),
            StatusReason::Forbidden => (403, "Forbidden"),
            StatusReason::NotFound => (404, "NotFound"),
            StatusReason::MethodNotAllowed => (405, "MethodNotAllowed"),
            StatusReason::NotAcceptable => (406, "NotAcceptable"),
            StatusReason::UnsupportedMediaType => (415, "UnsupportedMediaType"),
            StatusReason::Conflict => (409, "Conflict"),
            StatusReason::Invalid => (422, "Invalid"),
            StatusReason::RequestEntityTooLarge => (413, "RequestEntityTooLarge"),
            StatusReason::TooManyRequests => (429, "TooManyRequests"),
            StatusReason::InternalError => (500, "InternalError"),
            StatusReason::Timeout => (504, "Timeout"),
            StatusReason::ServiceUnavailable => (503, "ServiceUnavailable"),
        }
    }

    pub fn code(self) -> u16 {
        self.wire().0
    }

    pub fn as_str(self) -> &'static str {
        self.wire().1
    }
}

/// One `details.causes[]` entry: for 422 kubectl prints `FIELD: MESSAGE` from these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, …
    pub reason: String,
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause::new("FieldValueInvalid", field.into(), message.into())
    }
    pub fn forbidden(field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause::new("FieldValueForbidden", field.into(), message.into())
    }
    fn new(reason: &str, field: String, message: String) -> Self {
        Cause {
            reason: reason.into(),
            field,
            message,
        }
    }
}

/// An error answered as a `metav1.Status`. The message says what to do next.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ApiError {
    pub reason: StatusReason,
    pub message: String,
    /// `details.name`: the PipelineRun the request was about.
    pub name: Option<String>,
    pub causes: Vec<Cause>,
    /// Seconds, for 429/503/504 (`details.retryAfterSeconds` and the `Retry-After` header).
    pub retry_after_seconds: Option<u32>,
    /// The refusal's label in `tekton_retry_refusals_total{reason}` (`Succeeded`, `NotDone`,
    /// `TimeoutBudget`, …), set when the error is a `retry::Refusal`.
    pub refusal: Option<&'static str>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.reason.as_str(),
            self.code(),
            self.message
        )
    }
}

/// Defines `ApiError::<constructor>(message)` for each `constructor => StatusReason` pair.
macro_rules! constructors_by_reason {
    ($($constructor:ident => $reason:ident),* $(,)?) => {
        impl ApiError {
            $(
                #[doc = concat!("An error of reason `", stringify!($reason), "`.")]
                pub fn $constructor(message: impl Into<String>) -> Self {
                    Self::new(StatusReason::$reason, message)
                }
            )*
        }
    };
}

constructors_by_reason! {
    bad_request => BadRequest,
    not_found => NotFound,
    conflict => Conflict,
    forbidden => Forbidden,
    unauthorized => Unauthorized,
    internal => InternalError,
    timeout => Timeout,
    too_large => RequestEntityTooLarge,
}

impl ApiError {
    pub fn new(reason: StatusReason, message: impl Into<String>) -> Self {
        ApiError {
            reason,
            message: message.into(),
            name: None,
            causes: Vec::new(),
            retry_after_seconds: None,
            refusal: None,
        }
    }
    /// 422 with the causes kubectl prints (`The PipelineRunRetry "NAME" is invalid: FIELD: MESSAGE`).
    pub fn invalid(message: impl Into<String>, causes: Vec<Cause>) -> Self {
        let mut e = Self::new(StatusReason::Invalid, message);
        e.causes = causes;
        e
    }
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    pub fn code(&self) -> u16 {
        self.reason.code()
    }

    /// The `metav1.Status` JSON body.
    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        if let Some(name) = &self.name {
            details.insert("name".into(), json!(name));
        }
        details.insert("group".into(), json!(GROUP));
        details.insert("kind".into(), json!(KIND));
        if !self.causes.is_empty() {
            details.insert("causes".into(), json!(self.causes));
        }
        if let Some(s) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(s));
        }
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "details": Value::Object(details),
            "code": self.code(),
        })
    }

    /// The body as bytes (a `Status` always serialises).
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_status()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_carries_causes_and_details() {
        let e = ApiError::invalid(
            "PipelineRunRetry \"x\" is invalid",
            vec![Cause::invalid(
                "spec.restartTasks[0]",
                "no pipeline task \"zz\"",
            )],
        )
        .with_name("x");
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(s["details"]["name"], "x");
        assert_eq!(s["details"]["group"], "retry.tekton.dev");
        assert_eq!(s["details"]["causes"][0]["field"], "spec.restartTasks[0]");
        let parsed: k8s_openapi::apimachinery::pkg::apis::meta::v1::Status =
            serde_json::from_value(s).expect("a metav1.Status");
        assert_eq!(parsed.code, Some(422));
    }
}

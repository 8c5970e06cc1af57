//! The router: which route a request path is, and the handling of `POST …/retry`.

use std::sync::Arc;

use http::Method;

use super::authz::Attributes;
use super::body;
use crate::api::UserInfo;
use crate::api::{
    ApiError, PipelineRunRetry, StatusReason, GROUP, HISTORY_SUBRESOURCE, RESOURCE, SUBRESOURCE,
    VERSION,
};
use crate::retry::{RetryRequest, RetryService};

/// Health endpoints (`/healthz`, `/livez`, `/readyz`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthKind {
    Healthz,
    Livez,
    Readyz,
}

impl HealthKind {
    pub fn name(self) -> &'static str {
        match self {
            HealthKind::Healthz => "healthz",
            HealthKind::Livez => "livez",
            HealthKind::Readyz => "readyz",
        }
    }
}

/// A public document (no SubjectAccessReview).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicDoc {
    Apis,
    Group,
    GroupVersion,
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3GroupVersion,
}

/// What a request path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// A health endpoint; `check` is the single check of `/readyz/<check>`.
    Health {
        kind: HealthKind,
        check: Option<String>,
    },
    Metrics,
    Public(PublicDoc),
    Retry {
        namespace: String,
        name: String,
    },
    /// `GET …/pipelineruns/{name}/history`: the run's attempt history.
    History {
        namespace: String,
        name: String,
    },
    /// A retry or history path whose namespace or run name is not a DNS subdomain: answered
    /// 400 before anything is reviewed or read. kube-apiserver would decode such a segment
    /// (`x%2F..%2F..`) into another path, so the object reviewed would not be the one acted on.
    BadName {
        namespace: String,
        name: String,
    },
    NotFound,
}

impl Route {
    /// What the caller must be allowed to do to be answered on this route (`None`: the
    /// documents anyone may read, and the routes answered with an error before any review).
    pub fn authorization(&self) -> Option<Attributes> {
        match self {
            Route::Metrics => Some(Attributes::NonResource {
                verb: "get".into(),
                path: "/metrics".into(),
            }),
            Route::Retry { namespace, name } => Some(Attributes::retry(namespace, name)),
            Route::History { namespace, name } => Some(Attributes::history(namespace, name)),
            Route::Health { .. } | Route::Public(_) | Route::BadName { .. } | Route::NotFound => {
                None
            }
        }
    }

    /// Classifies a path (no query).
    pub fn parse(path: &str) -> Route {
        let trimmed = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        for kind in [HealthKind::Healthz, HealthKind::Livez, HealthKind::Readyz] {
            let base = format!("/{}", kind.name());
            if trimmed == base {
                return Route::Health { kind, check: None };
            }
            if let Some(check) = trimmed.strip_prefix(&format!("{base}/")) {
                return Route::Health {
                    kind,
                    check: Some(check.to_string()),
                };
            }
        }
        let group = format!("/apis/{GROUP}");
        let gv = format!("/apis/{GROUP}/{VERSION}");
        match trimmed {
            "/metrics" => return Route::Metrics,
            "/apis" => return Route::Public(PublicDoc::Apis),
            "/openapi/v2" => return Route::Public(PublicDoc::OpenApiV2),
            "/openapi/v3" => return Route::Public(PublicDoc::OpenApiV3Index),
            p if p == group => return Route::Public(PublicDoc::Group),
            p if p == gv => return Route::Public(PublicDoc::GroupVersion),
            p if p == format!("/openapi/v3{gv}") => {
                return Route::Public(PublicDoc::OpenApiV3GroupVersion)
            }
            _ => {}
        }
        let Some(rest) = path.strip_prefix(&format!("{gv}/namespaces/")) else {
            return Route::NotFound;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if let [ns, res, name, sub] = parts.as_slice() {
            let ours = *res == RESOURCE && (*sub == SUBRESOURCE || *sub == HISTORY_SUBRESOURCE);
            if ours && !(is_dns1123_subdomain(ns) && is_dns1123_subdomain(name)) {
                return Route::BadName {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                };
            }
        }
        match parts.as_slice() {
            [ns, res, name, sub] if *res == RESOURCE && !ns.is_empty() && !name.is_empty() => {
                let (namespace, name) = (ns.to_string(), name.to_string());
                match *sub {
                    SUBRESOURCE => Route::Retry { namespace, name },
                    HISTORY_SUBRESOURCE => Route::History { namespace, name },
                    _ => Route::NotFound,
                }
            }
            _ => Route::NotFound,
        }
    }

    /// Label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Health { .. } => "health",
            Route::Metrics => "metrics",
            Route::Public(
                PublicDoc::OpenApiV2 | PublicDoc::OpenApiV3Index | PublicDoc::OpenApiV3GroupVersion,
            ) => "openapi",
            Route::Public(_) => "discovery",
            Route::Retry { .. } => "retry",
            Route::History { .. } => "history",
            Route::BadName { .. } | Route::NotFound => "unknown",
        }
    }

    /// The methods the route answers.
    pub fn allows(&self, method: &Method) -> bool {
        match self {
            Route::Retry { .. } => method == Method::POST,
            Route::BadName { .. } | Route::NotFound => true,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
}

/// Whether `s` is a valid DNS-1123 subdomain (`k8s.io/apimachinery/pkg/util/validation`
/// `IsDNS1123Subdomain`), the rule for namespace and PipelineRun names.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// `?dryRun=All` → true; absent → false; anything else is a 400.
pub fn dry_run(query: Option<&str>) -> Result<bool, ApiError> {
    let mut dry = false;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "dryRun" {
            if v == "All" {
                dry = true;
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid dryRun value {v:?}: the only supported value is \"All\" (compute and return the plan, write nothing)"
                )));
            }
        }
    }
    Ok(dry)
}

/// The 405 for a method a route does not serve.
pub fn method_not_allowed(method: &Method, route: &Route) -> ApiError {
    let allowed = match route {
        Route::Retry { .. } => "POST",
        _ => "GET",
    };
    ApiError::new(
        StatusReason::MethodNotAllowed,
        format!("the server does not allow this method on the requested resource: {method} is not supported here, use {allowed}"),
    )
}

/// Handles an authorized `POST …/namespaces/{namespace}/pipelineruns/{name}/retry`: validates,
/// reads and decodes the body, and calls the engine in its own task (a client that gives up, or a
/// 504, does not cancel a retry that started). Returns the HTTP code and the object.
pub async fn retry<B>(
    service: Arc<dyn RetryService>,
    namespace: String,
    name: String,
    parts: &http::request::Parts,
    body_in: B,
    user: UserInfo,
    audit_id: String,
) -> Result<(u16, PipelineRunRetry), ApiError>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let dry_run = dry_run(parts.uri.query())?;
    body::check_content_type(&parts.headers)?;
    let bytes = body::read_limited(&parts.headers, body_in).await?;
    let object = body::decode(&bytes, &namespace, &name)?;
    let request = RetryRequest {
        namespace,
        name,
        spec: object.spec,
        dry_run,
        user,
        audit_id: Some(audit_id),
    };
    let task = tokio::spawn(service.retry(request));
    match task.await {
        Ok(Ok(out)) => Ok((if dry_run { 200 } else { 201 }, out)),
        Ok(Err(e)) => Err(e),
        Err(e) => {
            tracing::error!(error = %e, "the retry task failed");
            Err(ApiError::internal(
                "the retry failed inside the server; it is safe to send the request again",
            ))
        }
    }
}

#[cfg(test)]
mod tests;

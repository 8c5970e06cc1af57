//! Authorization by SubjectAccessReview, as a delegated Kubernetes API server does it
//! (`staging/src/k8s.io/apiserver/pkg/server/options/authorization.go`: `system:masters` always
//! allowed; `plugin/pkg/authorizer/webhook/webhook.go`: allow/deny cached per request attributes;
//! `pkg/endpoints/filters/authorization.go`: an allow wins, an error is a 500, anything else 403).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};

use super::metrics::Metrics;
use super::review;
use crate::api::{ApiError, UserInfo};

/// Group whose members are allowed without a review.
pub const SYSTEM_MASTERS: &str = "system:masters";

/// What a request does, as a SubjectAccessReview describes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attributes {
    Resource {
        verb: String,
        group: String,
        version: String,
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Attributes {
    /// `create` on `pipelineruns/retry` of `retry.tekton.dev` for the run `namespace/name`.
    pub fn retry(namespace: &str, name: &str) -> Self {
        Self::run_subresource("create", crate::api::SUBRESOURCE, namespace, name)
    }

    /// `get` on `pipelineruns/history` of `retry.tekton.dev` for the run `namespace/name`.
    pub fn history(namespace: &str, name: &str) -> Self {
        Self::run_subresource("get", crate::api::HISTORY_SUBRESOURCE, namespace, name)
    }

    /// `verb` on `pipelineruns/<subresource>` of `retry.tekton.dev` for the run `namespace/name`.
    fn run_subresource(verb: &str, subresource: &str, namespace: &str, name: &str) -> Self {
        Attributes::Resource {
            verb: verb.into(),
            group: crate::api::GROUP.into(),
            version: crate::api::VERSION.into(),
            resource: crate::api::RESOURCE.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The message of kube-apiserver's 403 (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/
    /// responsewriters/errors.go` `Forbidden`/`forbiddenMessage`, wrapped by `apierrors.NewForbidden`).
    pub fn forbidden_message(&self, user: &str, reason: &str) -> String {
        let mut msg = match self {
            Attributes::NonResource { verb, path } => {
                format!(
                    "User {} cannot {verb} path {}",
                    go_quote(user),
                    go_quote(path)
                )
            }
            Attributes::Resource {
                verb,
                group,
                resource,
                subresource,
                namespace,
                ..
            } => {
                let mut res = resource.clone();
                if !subresource.is_empty() {
                    res = format!("{res}/{subresource}");
                }
                if namespace.is_empty() {
                    format!(
                        "User {} cannot {verb} resource {} in API group {} at the cluster scope",
                        go_quote(user),
                        go_quote(&res),
                        go_quote(group)
                    )
                } else {
                    format!(
                        "User {} cannot {verb} resource {} in API group {} in the namespace {}",
                        go_quote(user),
                        go_quote(&res),
                        go_quote(group),
                        go_quote(namespace)
                    )
                }
            }
        };
        if !reason.is_empty() {
            msg = format!("{msg}: {reason}");
        }
        match self {
            Attributes::NonResource { .. } => format!("forbidden: {msg}"),
            Attributes::Resource {
                group,
                resource,
                name,
                ..
            } => {
                let qualified = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                if name.is_empty() {
                    format!("{qualified} is forbidden: {msg}")
                } else {
                    format!("{qualified} {} is forbidden: {msg}", go_quote(name))
                }
            }
        }
    }

    fn to_spec(&self, user: &UserInfo) -> SubjectAccessReviewSpec {
        let mut spec = SubjectAccessReviewSpec {
            user: Some(user.username.clone()),
            uid: user.uid.clone(),
            groups: Some(user.groups.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            ..Default::default()
        };
        match self {
            Attributes::Resource {
                verb,
                group,
                version,
                resource,
                subresource,
                namespace,
                name,
            } => {
                spec.resource_attributes = Some(ResourceAttributes {
                    verb: Some(verb.clone()),
                    group: Some(group.clone()),
                    version: Some(version.clone()),
                    resource: Some(resource.clone()),
                    subresource: (!subresource.is_empty()).then(|| subresource.clone()),
                    namespace: (!namespace.is_empty()).then(|| namespace.clone()),
                    name: (!name.is_empty()).then(|| name.clone()),
                    ..Default::default()
                })
            }
            Attributes::NonResource { verb, path } => {
                spec.non_resource_attributes = Some(NonResourceAttributes {
                    verb: Some(verb.clone()),
                    path: Some(path.clone()),
                })
            }
        }
        spec
    }
}

/// Go's `%q` for the strings that appear in messages.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Clone, Debug)]
enum Decision {
    Allow,
    Deny(String),
}

type CacheKey = (UserInfo, Attributes);

/// Decides with SubjectAccessReviews, caching allow and deny for `ttl` per full user and attributes.
pub struct Authorizer {
    client: kube::Client,
    ttl: Duration,
    metrics: Arc<Metrics>,
    cache: Mutex<HashMap<CacheKey, (Instant, Decision)>>,
}

const CACHE_MAX: usize = 10_000;

impl Authorizer {
    pub fn new(client: kube::Client, ttl: Duration, metrics: Arc<Metrics>) -> Self {
        Authorizer {
            client,
            ttl,
            metrics,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` if `user` may do `attrs`; else a 403 `Status` naming the missing permission, or a 500
    /// when the review itself failed (nothing is performed either way).
    pub async fn authorize(
        &self,
        user: &UserInfo,
        attrs: &Attributes,
        audit_id: &str,
    ) -> Result<(), ApiError> {
        if user.in_group(SYSTEM_MASTERS) {
            return Ok(());
        }
        let key = (user.clone(), attrs.clone());
        let cached = self.cache.lock().ok().and_then(|c| {
            c.get(&key)
                .filter(|(at, _)| at.elapsed() < self.ttl)
                .map(|(_, d)| d.clone())
        });
        self.metrics.authz_cache(cached.is_some());
        let decision = match cached {
            Some(d) => d,
            None => {
                let d = self.review(user, attrs, audit_id).await?;
                if let Ok(mut c) = self.cache.lock() {
                    if c.len() >= CACHE_MAX {
                        let ttl = self.ttl;
                        c.retain(|_, (at, _)| at.elapsed() < ttl);
                        if c.len() >= CACHE_MAX {
                            c.clear();
                        }
                    }
                    c.insert(key, (Instant::now(), d.clone()));
                }
                d
            }
        };
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => {
                let mut e = ApiError::forbidden(attrs.forbidden_message(&user.username, &reason));
                if let Attributes::Resource { name, .. } = attrs {
                    if !name.is_empty() {
                        e = e.with_name(name.clone());
                    }
                }
                Err(e)
            }
        }
    }

    async fn review(
        &self,
        user: &UserInfo,
        attrs: &Attributes,
        audit_id: &str,
    ) -> Result<Decision, ApiError> {
        let sar = SubjectAccessReview {
            spec: attrs.to_spec(user),
            ..Default::default()
        };
        let answer = review::create(&self.client, review::SUBJECT_ACCESS_REVIEWS, &sar, Some(audit_id))
            .await
            .map_err(|e| {
            tracing::warn!(error = %e, "SubjectAccessReview failed");
            ApiError::internal(format!(
                "authorization check failed: the SubjectAccessReview could not be completed ({e}); nothing was done, try again"
            ))
        })?;
        let status = answer.status.ok_or_else(|| {
            ApiError::internal("authorization check failed: the SubjectAccessReview has no status; nothing was done, try again")
        })?;
        let reason = status.reason.unwrap_or_default();
        match (status.allowed, status.denied.unwrap_or(false)) {
            (true, true) => Err(ApiError::internal(
                "authorization check failed: the SubjectAccessReview both allowed and denied; nothing was done",
            )),
            (true, false) => Ok(Decision::Allow),
            _ => Ok(Decision::Deny(reason)),
        }
    }
}

#[cfg(test)]
mod tests;

//! What a request path and method mean, as `k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`
//! (`RequestInfoFactory.NewRequestInfo`) reads them.

use http::Method;

use crate::policy::Attributes;

/// A parsed request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub resource_request: bool,
    pub path: String,
    pub verb: String,
    /// `""` for the core group (`/api`).
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

impl RequestInfo {
    /// Parse `method path?query`.
    pub fn parse(method: &Method, path: &str, query: &[(String, String)]) -> RequestInfo {
        let mut info = RequestInfo {
            path: path.to_string(),
            verb: method.as_str().to_lowercase(),
            ..Default::default()
        };
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let (group, rest): (&str, &[&str]) = match parts.as_slice() {
            ["api", v, rest @ ..] => {
                info.version = v.to_string();
                ("", rest)
            }
            ["apis", g, v, rest @ ..] => {
                info.version = v.to_string();
                (*g, rest)
            }
            _ => {
                // Non-resource request: verb is the lower-cased HTTP method.
                return info;
            }
        };
        info.group = group.to_string();
        let mut rest: Vec<&str> = rest.to_vec();
        if rest.is_empty() {
            return info;
        }
        info.resource_request = true;
        let mut watch_prefix = false;
        if rest.first() == Some(&"watch") {
            watch_prefix = true;
            rest.remove(0);
        }
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            if rest.len() > 2 && rest[2] != "status" && rest[2] != "finalize" {
                rest.drain(0..2);
            }
        }
        if let Some(r) = rest.first() {
            info.resource = r.to_string();
        }
        if let Some(n) = rest.get(1) {
            info.name = n.to_string();
        }
        if rest.len() > 2 {
            info.subresource = rest[2..].join("/");
        }
        let watch = watch_prefix
            || query
                .iter()
                .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
        info.verb = match *method {
            Method::GET | Method::HEAD if watch => "watch",
            Method::GET | Method::HEAD if info.name.is_empty() => "list",
            Method::GET | Method::HEAD => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if info.name.is_empty() => "deletecollection",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_string();
        // A list or watch of one object by `fieldSelector=metadata.name=X` is authorized with that
        // name (requestinfo.go: `opts.FieldSelector.RequiresExactMatch("metadata.name")`).
        if (info.verb == "list" || info.verb == "watch") && info.name.is_empty() {
            let fs = query
                .iter()
                .find(|(k, _)| k == "fieldSelector")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let terms: Vec<&str> = fs
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect();
            for t in &terms {
                let exact = t
                    .strip_prefix("metadata.name==")
                    .or_else(|| t.strip_prefix("metadata.name="));
                if let Some(n) = exact.filter(|n| !n.starts_with('=')) {
                    info.name = n.to_string();
                }
            }
        }
        info
    }

    /// The authorizer's view of this request.
    pub fn attributes(&self) -> Attributes {
        Attributes {
            verb: self.verb.clone(),
            resource_request: self.resource_request,
            api_group: self.group.clone(),
            api_version: self.version.clone(),
            resource: self.resource.clone(),
            subresource: self.subresource.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            path: self.path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let q = vec![];
        let i = RequestInfo::parse(
            &Method::POST,
            "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/x/retry",
            &q,
        );
        assert_eq!(
            (
                i.verb.as_str(),
                i.group.as_str(),
                i.resource.as_str(),
                i.subresource.as_str(),
                i.namespace.as_str(),
                i.name.as_str()
            ),
            (
                "create",
                "retry.tekton.dev",
                "pipelineruns",
                "retry",
                "demo",
                "x"
            )
        );
        let i = RequestInfo::parse(&Method::GET, "/api/v1/namespaces/demo", &q);
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_str(),
                i.namespace.as_str(),
                i.verb.as_str()
            ),
            ("namespaces", "demo", "demo", "get")
        );
        let w = vec![("watch".to_string(), "true".to_string())];
        let i = RequestInfo::parse(&Method::GET, "/apis/tekton.dev/v1/pipelineruns", &w);
        assert_eq!((i.verb.as_str(), i.namespace.as_str()), ("watch", ""));
        let i = RequestInfo::parse(&Method::GET, "/apis", &q);
        assert!(!i.resource_request);
        assert_eq!(i.verb, "get");
        let i = RequestInfo::parse(&Method::DELETE, "/api/v1/namespaces/d/pods", &q);
        assert_eq!(i.verb, "deletecollection");
        let f = vec![
            ("watch".to_string(), "1".to_string()),
            (
                "fieldSelector".to_string(),
                "metadata.name=extension-apiserver-authentication".to_string(),
            ),
        ];
        let i = RequestInfo::parse(
            &Method::GET,
            "/api/v1/namespaces/kube-system/configmaps",
            &f,
        );
        assert_eq!(
            (i.verb.as_str(), i.name.as_str()),
            ("watch", "extension-apiserver-authentication")
        );
    }
}

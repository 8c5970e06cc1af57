//! Users and a small RBAC-like authorizer for the sandbox: client-certificate users (CN = user,
//! O = groups, as kube-apiserver's x509 authenticator reads them), a bearer-token table (also what
//! TokenReview answers from), and rules of apiGroups/resources/verbs/namespaces/resourceNames and
//! nonResourceURLs bound to users and groups, matched as `plugin/pkg/auth/authorizer/rbac`
//! (`rbac.go` `RuleAllows`, `VerbMatches`, `ResourceMatches`, `NonResourceURLMatches`) does.

use std::collections::HashMap;
use std::sync::RwLock;

use tekton_retry::api::UserInfo;

/// What a request asks to do (`authorizer.Attributes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    /// A resource request (else a non-resource URL request on `path`).
    pub resource_request: bool,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
}

impl Attributes {
    /// A resource request.
    pub fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Self {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// A non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Attributes {
            verb: verb.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    /// kube-apiserver's denial text (`responsewriters.forbiddenMessage`).
    pub fn forbidden_message(&self, user: &str) -> String {
        if !self.resource_request {
            return format!("User {user:?} cannot {} path {:?}", self.verb, self.path);
        }
        let mut resource = self.resource.clone();
        if !self.subresource.is_empty() {
            resource = format!("{resource}/{}", self.subresource);
        }
        if self.namespace.is_empty() {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
                self.verb, self.api_group
            )
        } else {
            format!(
                "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
                self.verb, self.api_group, self.namespace
            )
        }
    }
}

/// One policy rule (`rbacv1.PolicyRule`, plus the namespaces a RoleBinding would limit it to).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub api_groups: Vec<String>,
    /// `pipelineruns`, `pipelineruns/retry`, `pipelineruns/*`, `*`.
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    /// Empty: every namespace and the cluster scope (a ClusterRoleBinding).
    pub namespaces: Vec<String>,
    pub resource_names: Vec<String>,
    /// `/metrics`, `/apis/*`, `*`.
    pub non_resource_urls: Vec<String>,
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

impl Rule {
    /// A resource rule, in every namespace.
    pub fn resources(api_groups: &[&str], resources: &[&str], verbs: &[&str]) -> Rule {
        Rule {
            api_groups: strings(api_groups),
            resources: strings(resources),
            verbs: strings(verbs),
            ..Default::default()
        }
    }

    /// A non-resource URL rule.
    pub fn urls(urls: &[&str], verbs: &[&str]) -> Rule {
        Rule {
            non_resource_urls: strings(urls),
            verbs: strings(verbs),
            ..Default::default()
        }
    }

    /// Limit the rule to these namespaces (a RoleBinding).
    pub fn in_namespaces(mut self, namespaces: &[&str]) -> Rule {
        self.namespaces = strings(namespaces);
        self
    }

    /// Limit the rule to these object names.
    pub fn named(mut self, names: &[&str]) -> Rule {
        self.resource_names = strings(names);
        self
    }

    /// Whether this rule allows the request (`RuleAllows`).
    pub fn allows(&self, a: &Attributes) -> bool {
        let verb_ok = self.verbs.iter().any(|v| v == "*" || *v == a.verb);
        if !verb_ok {
            return false;
        }
        if !a.resource_request {
            return self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            });
        }
        if !self.namespaces.is_empty() && !self.namespaces.contains(&a.namespace) {
            return false;
        }
        let group_ok = self
            .api_groups
            .iter()
            .any(|g| g == "*" || *g == a.api_group);
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty() && *r == format!("{}/*", a.resource))
                || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
        });
        let name_ok = self.resource_names.is_empty() || self.resource_names.contains(&a.name);
        group_ok && resource_ok && name_ok
    }
}

/// Who a binding applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Group(String),
}

/// An allow/deny answer with the reason SubjectAccessReview reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

#[derive(Default)]
struct Inner {
    bindings: Vec<(Subject, String, Vec<Rule>)>,
    tokens: HashMap<String, UserInfo>,
    users: HashMap<String, Vec<String>>,
}

/// The sandbox's users and rules. Shared (`Arc<Policy>`) and changeable at runtime by tests.
#[derive(Default)]
pub struct Policy {
    inner: RwLock<Inner>,
}

/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group that may do everything (kube-apiserver's `cluster-admin` binding).
pub const MASTERS: &str = "system:masters";
/// Namespace of the retry server's service account in the sandbox.
pub const SERVER_SA_NAMESPACE: &str = "tekton-retry";
/// Name of the binding that grants the retry server its rights ([`Policy::server_rules`]).
pub const SERVER_BINDING: &str = "tekton-retry-server";
/// Name of the retry server's service account in the sandbox.
pub const SERVER_SA_NAME: &str = "tekton-retry";

/// The retry server's identity: `system:serviceaccount:tekton-retry:tekton-retry`.
pub fn server_user() -> UserInfo {
    UserInfo::new(
        format!("system:serviceaccount:{SERVER_SA_NAMESPACE}:{SERVER_SA_NAME}"),
        &[
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{SERVER_SA_NAMESPACE}"),
            AUTHENTICATED,
        ],
    )
}

impl Policy {
    /// The built-in policy:
    /// - group `system:masters` (user `admin`): everything;
    /// - user `viewer`: get/list/watch of everything (so no `create` of `pipelineruns/retry`);
    /// - the retry server's service account: exactly [`tekton_retry::rbac::SERVER_API_CALLS`],
    ///   [`tekton_retry::rbac::OWN_NAMESPACE_CALLS`] and [`tekton_retry::rbac::CERT_API_CALLS`] (its certificate
    ///   Secret in its namespace, its APIService), create tokenreviews and subjectaccessreviews,
    ///   get/list/watch configmaps in `kube-system`;
    /// - every authenticated user: discovery, version, health and OpenAPI URLs, and
    ///   selfsubjectaccessreviews and selfsubjectreviews (kube's `system:discovery`, `system:public-info-viewer`,
    ///   `system:basic-user`).
    pub fn with_defaults() -> Policy {
        let p = Policy::default();
        p.bind(
            Subject::Group(MASTERS.into()),
            "cluster-admin",
            vec![
                Rule::resources(&["*"], &["*"], &["*"]),
                Rule::urls(&["*"], &["*"]),
            ],
        );
        p.add_user("admin", &[MASTERS]);
        p.add_user("viewer", &[]);
        p.bind(
            Subject::User("viewer".into()),
            "view",
            vec![Rule::resources(&["*"], &["*"], &["get", "list", "watch"])],
        );
        p.bind(
            Subject::User(server_user().username),
            SERVER_BINDING,
            Policy::server_rules(true),
        );
        p.bind(
            Subject::Group(AUTHENTICATED.into()),
            "system:discovery",
            vec![
                Rule::urls(
                    &[
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/version",
                        "/version/",
                        "/openapi",
                        "/openapi/*",
                        "/healthz",
                        "/livez",
                        "/readyz",
                    ],
                    &["get"],
                ),
                Rule::resources(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                Rule::resources(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        );
        p
    }

    /// The retry server's rights as `deploy/` grants them (`archive_logs`: with the `pods/log`
    /// rule, as `deploy/base`; without, as `deploy/overlays/no-log-archive`).
    pub fn server_rules(archive_logs: bool) -> Vec<Rule> {
        let mut server_rules: Vec<Rule> = tekton_retry::rbac::server_api_calls(archive_logs)
            .map(|c| Rule::resources(&[c.group], &[c.resource], c.verbs))
            .collect();
        server_rules.extend(tekton_retry::rbac::CERT_API_CALLS.iter().map(|c| {
            let rule = Rule::resources(&[c.group], &[c.resource], c.verbs).named(c.names);
            if c.namespaced {
                rule.in_namespaces(&[SERVER_SA_NAMESPACE])
            } else {
                rule
            }
        }));
        server_rules.push(Rule::resources(
            &["authentication.k8s.io"],
            &["tokenreviews"],
            &["create"],
        ));
        server_rules.push(Rule::resources(
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
            &["create"],
        ));
        server_rules.push(
            Rule::resources(&[""], &["configmaps"], &["get", "list", "watch"])
                .in_namespaces(&["kube-system"])
                .named(&["extension-apiserver-authentication"]),
        );
        // The Role in the server's own namespace (`deploy/base/role-server.yaml`).
        server_rules.extend(tekton_retry::rbac::OWN_NAMESPACE_CALLS.iter().map(|c| {
            Rule::resources(&[c.group], &[c.resource], c.verbs)
                .in_namespaces(&[SERVER_SA_NAMESPACE])
        }));
        server_rules
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Grant `rules` to `subject` (bindings add up; `name` only labels SAR reasons).
    pub fn bind(&self, subject: Subject, name: &str, rules: Vec<Rule>) {
        self.write().bindings.push((subject, name.into(), rules));
    }

    /// Remove every binding called `name`.
    pub fn unbind(&self, name: &str) {
        self.write().bindings.retain(|(_, n, _)| n != name);
    }

    /// Register a client-certificate user (the emulator issues its certificate with these groups).
    pub fn add_user(&self, name: &str, groups: &[&str]) {
        self.write().users.insert(name.into(), strings(groups));
    }

    /// Groups of a registered user.
    pub fn user_groups(&self, name: &str) -> Option<Vec<String>> {
        self.read().users.get(name).cloned()
    }

    /// Accept `token` as a bearer token for `user` (also what TokenReview answers).
    pub fn add_token(&self, token: &str, user: UserInfo) {
        self.write().tokens.insert(token.into(), user);
    }

    /// Forget a token.
    pub fn remove_token(&self, token: &str) {
        self.write().tokens.remove(token);
    }

    /// The user of a bearer token, with `system:authenticated` added.
    pub fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        let mut u = self.read().tokens.get(token).cloned()?;
        if !u.in_group(AUTHENTICATED) {
            u.groups.push(AUTHENTICATED.into());
        }
        Some(u)
    }

    /// Decide a request.
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        let g = self.read();
        for (subject, name, rules) in &g.bindings {
            let applies = match subject {
                Subject::User(u) => *u == user.username,
                Subject::Group(gr) => user.in_group(gr),
            };
            if applies && rules.iter().any(|r| r.allows(a)) {
                let how = match subject {
                    Subject::User(u) => format!("User {u:?}"),
                    Subject::Group(gr) => format!("Group {gr:?}"),
                };
                return Decision {
                    allowed: true,
                    reason: format!("RBAC: allowed by ClusterRoleBinding {name:?} of ClusterRole {name:?} to {how}"),
                };
            }
        }
        Decision {
            allowed: false,
            reason: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn can(p: &Policy, u: &UserInfo, a: &Attributes) -> bool {
        p.authorize(u, a).allowed
    }

    #[test]
    fn builtins() {
        let p = Policy::with_defaults();
        let admin = UserInfo::new("admin", &[MASTERS, AUTHENTICATED]);
        let viewer = UserInfo::new("viewer", &[AUTHENTICATED]);
        let retry = Attributes::resource(
            "create",
            "retry.tekton.dev",
            "pipelineruns",
            "retry",
            "demo",
            "x",
        );
        assert!(can(&p, &admin, &retry));
        assert!(!can(&p, &viewer, &retry));
        let get = Attributes::resource("get", "tekton.dev", "pipelineruns", "", "demo", "x");
        assert!(can(&p, &viewer, &get));
        let del = Attributes::resource("delete", "tekton.dev", "pipelineruns", "", "demo", "x");
        assert!(!can(&p, &viewer, &del));
        assert_eq!(
            del.forbidden_message("viewer"),
            r#"User "viewer" cannot delete resource "pipelineruns" in API group "tekton.dev" in the namespace "demo""#
        );
        let sa = server_user();
        assert!(can(
            &p,
            &sa,
            &Attributes::resource("patch", "tekton.dev", "pipelineruns", "status", "demo", "x")
        ));
        assert!(!can(
            &p,
            &sa,
            &Attributes::resource(
                "update",
                "tekton.dev",
                "pipelineruns",
                "status",
                "demo",
                "x"
            )
        ));
        assert!(!can(
            &p,
            &sa,
            &Attributes::resource("delete", "", "pods", "", "demo", "x")
        ));
        let cm = Attributes::resource(
            "watch",
            "",
            "configmaps",
            "",
            "kube-system",
            "extension-apiserver-authentication",
        );
        assert!(can(&p, &sa, &cm));
        assert!(!can(
            &p,
            &sa,
            &Attributes {
                namespace: "demo".into(),
                ..cm
            }
        ));
        assert!(can(
            &p,
            &viewer,
            &Attributes::non_resource("get", "/apis/tekton.dev/v1")
        ));
    }

    #[test]
    fn wildcards_and_subresources() {
        let r = Rule::resources(&["tekton.dev"], &["pipelineruns/*"], &["get"]);
        assert!(r.allows(&Attributes::resource(
            "get",
            "tekton.dev",
            "pipelineruns",
            "status",
            "d",
            "x"
        )));
        assert!(!r.allows(&Attributes::resource(
            "get",
            "tekton.dev",
            "pipelineruns",
            "",
            "d",
            "x"
        )));
        let n = Rule::urls(&["/apis/*"], &["get"]);
        assert!(n.allows(&Attributes::non_resource("get", "/apis/x")));
        assert!(!n.allows(&Attributes::non_resource("get", "/metrics")));
    }
}

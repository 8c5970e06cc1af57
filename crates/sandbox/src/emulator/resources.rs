//! The resource types the emulator serves, as kube-apiserver's discovery describes them.

/// Group/version/resource: which collection a request or object belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl Gvr {
    pub fn new(group: &str, version: &str, resource: &str) -> Gvr {
        Gvr {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }
    /// `group/version` as in `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The constructors of the served collections, one line each: `Gvr::pipelineruns()` etc.
macro_rules! collections {
    ($($(#[$doc:meta])* $name:ident => ($group:literal, $version:literal, $resource:literal);)*) => {
        impl Gvr {
            $($(#[$doc])* pub fn $name() -> Gvr { Gvr::new($group, $version, $resource) })*
        }
    };
}

collections! {
    /// `tekton.dev/v1 pipelineruns`.
    pipelineruns => ("tekton.dev", "v1", "pipelineruns");
    /// `tekton.dev/v1 taskruns`.
    taskruns => ("tekton.dev", "v1", "taskruns");
    /// `tekton.dev/v1beta1 customruns`.
    customruns => ("tekton.dev", "v1beta1", "customruns");
    /// `tekton.dev/v1 pipelines`.
    pipelines => ("tekton.dev", "v1", "pipelines");
    /// `tekton.dev/v1 tasks`.
    tasks => ("tekton.dev", "v1", "tasks");
    /// core `v1 pods`.
    pods => ("", "v1", "pods");
    /// core `v1 configmaps`.
    configmaps => ("", "v1", "configmaps");
    /// core `v1 events`.
    events => ("", "v1", "events");
    /// core `v1 secrets`.
    secrets => ("", "v1", "secrets");
    /// `apiregistration.k8s.io/v1 apiservices`.
    apiservices => ("apiregistration.k8s.io", "v1", "apiservices");
    /// core `v1 namespaces`.
    namespaces => ("", "v1", "namespaces");
}

/// How a resource is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Stored objects with the usual verbs.
    Stored,
    /// Create-only review objects answered from the policy (SubjectAccessReview, TokenReview …).
    Review,
}

/// One served resource.
#[derive(Debug)]
pub struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Has a `/status` subresource (status writes and main writes are split).
    pub status: bool,
    /// Has `metadata.generation` bumped on spec changes (CRDs and pods).
    pub generation: bool,
    pub serving: Kind,
}

/// Verbs of a stored resource, as discovery lists them.
pub const STORED_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of a review resource.
pub const REVIEW_VERBS: &[&str] = &["create"];

#[allow(clippy::too_many_arguments)]
const fn stored(
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        resource,
        singular,
        kind,
        namespaced,
        short_names,
        categories: &[],
        status,
        generation: false,
        serving: Kind::Stored,
    }
}

const fn tekton(
    version: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
    short_names: &'static [&'static str],
    status: bool,
) -> ResourceDef {
    ResourceDef {
        group: "tekton.dev",
        version,
        resource,
        singular,
        kind,
        namespaced: true,
        short_names,
        // Tekton's CRDs (config/300-crds/*.yaml) list these categories.
        categories: &["tekton", "tekton-pipelines"],
        status,
        generation: true,
        serving: Kind::Stored,
    }
}

const fn review(
    group: &'static str,
    resource: &'static str,
    singular: &'static str,
    kind: &'static str,
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        resource,
        singular,
        kind,
        namespaced: false,
        short_names: &[],
        categories: &[],
        status: false,
        generation: false,
        serving: Kind::Review,
    }
}

/// Every resource the emulator serves. Short names and categories follow kube-apiserver's
/// discovery and Tekton's CRDs (`config/300-crds/300-pipelinerun.yaml` etc.).
#[rustfmt::skip]
pub static RESOURCES: &[ResourceDef] = &[
    stored("", "v1", "namespaces", "namespace", "Namespace", false, &["ns"], true),
    stored("", "v1", "configmaps", "configmap", "ConfigMap", true, &["cm"], false),
    stored("", "v1", "events", "event", "Event", true, &["ev"], false),
    ResourceDef {
        generation: true,
        categories: &["all"],
        ..stored("", "v1", "pods", "pod", "Pod", true, &["po"], true)
    },
    stored("", "v1", "secrets", "secret", "Secret", true, &[], false),
    stored("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, &["sa"], false),
    stored("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true, &["pvc"], true),
    // What the install (`release.yaml`) creates besides, so that kubectl can map every object of
    // it against the emulator (`kubectl apply --dry-run=client -f release.yaml`).
    stored("", "v1", "services", "service", "Service", true, &["svc"], true),
    stored("apps", "v1", "deployments", "deployment", "Deployment", true, &["deploy"], true),
    // The affinity assistants Tekton creates (pkg/reconciler/pipelinerun/affinity_assistant.go).
    stored("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, &["sts"], true),
    stored("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, &["pdb"], true),
    stored("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", true, &[], false),
    stored("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", true, &[], false),
    stored("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", true, &[], false),
    stored("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", false, &[], false),
    stored("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, &[], false),
    // The aggregation layer's own objects (`kube-aggregator/pkg/apis/apiregistration/v1`): the
    // retry server keeps the `caBundle` of its APIService current, and the front proxy reads it.
    stored("apiregistration.k8s.io", "v1", "apiservices", "apiservice", "APIService", false, &[], true),
    stored("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, &[], false),
    stored("events.k8s.io", "v1", "events", "event", "Event", true, &["ev"], false),
    tekton("v1", "pipelineruns", "pipelinerun", "PipelineRun", &["pr", "prs"], true),
    tekton("v1", "taskruns", "taskrun", "TaskRun", &["tr", "trs"], true),
    tekton("v1", "pipelines", "pipeline", "Pipeline", &[], false),
    tekton("v1", "tasks", "task", "Task", &[], false),
    tekton("v1beta1", "customruns", "customrun", "CustomRun", &[], true),
    review("authorization.k8s.io", "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview"),
    review("authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview"),
    review("authentication.k8s.io", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview"),
    review("authentication.k8s.io", "tokenreviews", "tokenreview", "TokenReview"),
];

/// The served resource `group/version/resource`, if any.
pub fn find(group: &str, version: &str, resource: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// The served resource for a [`Gvr`].
pub fn find_gvr(gvr: &Gvr) -> Option<&'static ResourceDef> {
    find(&gvr.group, &gvr.version, &gvr.resource)
}

/// Groups in discovery order, each with its versions (preferred first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES {
        if r.group.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) => {
                if !vs.contains(&r.version) {
                    vs.push(r.version)
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

impl ResourceDef {
    pub fn gvr(&self) -> Gvr {
        Gvr::new(self.group, self.version, self.resource)
    }
    pub fn api_version(&self) -> String {
        self.gvr().api_version()
    }
    /// Discovery verbs.
    pub fn verbs(&self) -> &'static [&'static str] {
        match self.serving {
            Kind::Stored => STORED_VERBS,
            Kind::Review => REVIEW_VERBS,
        }
    }
    /// Whether a DELETE that removes the object at once answers with the object (else with a
    /// `Status`): set in the registries of pods (`pkg/registry/core/pod/storage`), namespaces and
    /// custom resources (`apiextensions-apiserver/pkg/registry/customresource/etcd.go`).
    pub fn returns_deleted_object(&self) -> bool {
        self.group == "tekton.dev"
            || (self.group.is_empty() && matches!(self.resource, "pods" | "namespaces"))
    }

    /// Subresources: `(name, verbs)`.
    pub fn subresources(&self) -> Vec<(&'static str, &'static [&'static str])> {
        let mut out = Vec::new();
        if self.status {
            out.push(("status", &["get", "patch", "update"][..]));
        }
        if self.group.is_empty() && self.resource == "pods" {
            out.push(("log", &["get"][..]));
        }
        out
    }
}

//! The lists of Kubernetes API calls the server's code makes: [`SERVER_API_CALLS`] in every
//! namespace (the ClusterRole `tekton-retry-server`) and [`OWN_NAMESPACE_CALLS`] only in the
//! server's own namespace (the Role `tekton-retry-server` there). The deploy manifests are checked
//! against both by a test (`tests/deploy.rs`), and the engine's API wrapper refuses any call they
//! do not list, so the server is granted exactly what it uses.

/// One permission: verbs on a resource (`resource/subresource`) of an API group (`""` = core).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiCall {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

/// Granted by the server's own ClusterRole (`deploy/base/clusterrole-server.yaml`).
pub const SERVER_API_CALLS: &[ApiCall] = &[
    // The run itself: read, watch (recorder), claim and record annotations (metadata patch).
    ApiCall {
        group: "tekton.dev",
        resource: "pipelineruns",
        verbs: &["get", "list", "watch", "patch", "delete"],
    },
    // The status reset.
    ApiCall {
        group: "tekton.dev",
        resource: "pipelineruns/status",
        verbs: &["patch"],
    },
    // Child runs: read, delete the ones that re-run, and watch them go and come back (the
    // executor waits on watches, not polls).
    ApiCall {
        group: "tekton.dev",
        resource: "taskruns",
        verbs: &["get", "list", "watch", "delete"],
    },
    ApiCall {
        group: "tekton.dev",
        resource: "customruns",
        verbs: &["get", "list", "delete"],
    },
    // Opt-out annotations on Pipelines and Tasks.
    ApiCall {
        group: "tekton.dev",
        resource: "pipelines",
        verbs: &["get"],
    },
    ApiCall {
        group: "tekton.dev",
        resource: "tasks",
        verbs: &["get"],
    },
    // Wait until a deleted TaskRun's pod is gone.
    ApiCall {
        group: "",
        resource: "pods",
        verbs: &["get", "list", "watch"],
    },
    LOG_ARCHIVE_CALL,
    // Workspace data still there?
    ApiCall {
        group: "",
        resource: "persistentvolumeclaims",
        verbs: &["list"],
    },
    // RetryStarted / RetrySucceeded / RetryFailed.
    ApiCall {
        group: "",
        resource: "events",
        verbs: &["create"],
    },
];

/// Read step logs: the one right only the log archive needs. Before a retry deletes the TaskRuns
/// that re-run, the server keeps the last 64 KiB of each step's log in the run's attempt history
/// (the pods, and with them the logs, go with the TaskRuns). Tenants' pods live in any namespace,
/// so this is granted cluster-wide, and it lets the server read every pod log in the cluster.
/// It can go when logs are kept elsewhere (a log collector) or not wanted: `serve
/// --archive-logs=false` makes no such call, and `deploy/components/no-log-archive` (applied by
/// `deploy/overlays/no-log-archive`) sets that flag and drops this rule.
pub const LOG_ARCHIVE_CALL: ApiCall = ApiCall {
    group: "",
    resource: "pods/log",
    verbs: &["get"],
};

/// [`SERVER_API_CALLS`], without [`LOG_ARCHIVE_CALL`] when logs are not archived.
pub fn server_api_calls(archive_logs: bool) -> impl Iterator<Item = &'static ApiCall> {
    SERVER_API_CALLS
        .iter()
        .filter(move |c| archive_logs || **c != LOG_ARCHIVE_CALL)
}

/// The namespace the server runs in unless told otherwise (`--namespace`, `POD_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "tekton-retry";

/// Granted only in the server's own namespace (`deploy/base/role-server.yaml`).
pub const OWN_NAMESPACE_CALLS: &[ApiCall] = &[
    // Attempt records and histories (one pair per retried run, named after its uid): read and
    // watched by the recorder, written fenced, deleted when their run is gone. Nowhere else: the
    // server never reads or writes a tenant's ConfigMaps.
    ApiCall {
        group: "",
        resource: "configmaps",
        verbs: &["get", "list", "watch", "create", "update", "delete"],
    },
];

/// Whether `verb` on `group`/`resource` is in [`OWN_NAMESPACE_CALLS`].
pub fn allowed_in_own_namespace(group: &str, resource: &str, verb: &str) -> bool {
    OWN_NAMESPACE_CALLS
        .iter()
        .any(|c| c.group == group && c.resource == resource && c.verbs.contains(&verb))
}

/// Whether `verb` on `group`/`resource` is in [`SERVER_API_CALLS`].
pub fn allowed(group: &str, resource: &str, verb: &str) -> bool {
    SERVER_API_CALLS
        .iter()
        .any(|c| c.group == group && c.resource == resource && c.verbs.contains(&verb))
}

/// A permission limited to named objects and, for namespaced resources, to the server's own
/// namespace: a rule of a Role (namespaced) or ClusterRole with `resourceNames`. `names` empty =
/// any name (RBAC cannot limit `create` by name: the name is not known when it is authorized).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScopedApiCall {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    pub names: &'static [&'static str],
    /// In the server's namespace only (Role `tekton-retry-certificate`), else cluster-wide
    /// (ClusterRole `tekton-retry-apiservice`).
    pub namespaced: bool,
}

/// Secret holding the self-managed CA and serving certificate (`serve --cert-secret`).
pub const CERT_SECRET: &str = "tekton-retry-serving-cert";

/// What the self-managed serving certificate needs (`src/server/selfcert`); granted by
/// `deploy/base/rbac-certificate.yaml`.
pub const CERT_API_CALLS: &[ScopedApiCall] = &[
    // Read and rotate the one certificate Secret.
    ScopedApiCall {
        group: "",
        resource: "secrets",
        verbs: &["get", "update"],
        names: &[CERT_SECRET],
        namespaced: true,
    },
    // Create it on first start.
    ScopedApiCall {
        group: "",
        resource: "secrets",
        verbs: &["create"],
        names: &[],
        namespaced: true,
    },
    // Keep the caBundle of the server's own APIService current.
    ScopedApiCall {
        group: "apiregistration.k8s.io",
        resource: "apiservices",
        verbs: &["patch"],
        names: &[crate::api::APISERVICE_NAME],
        namespaced: false,
    },
];

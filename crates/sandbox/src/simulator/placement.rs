//! The parts of Kubernetes the simulator plays besides Tekton and the kubelet, for workspaces and
//! the affinity assistant: the scheduler's placement of pods (a pod whose claim is missing, or
//! whose required pod affinity matches no placed pod, stays `Pending` with `PodScheduled=False`:
//! kube-scheduler's VolumeBinding and InterPodAffinity filters) and the StatefulSet controller
//! (pod `<set>-0` and the claims of its `volumeClaimTemplates`). The decisions are the pure
//! functions of [`super::affinity`] and [`super::volumeclaim`]; this module writes them through
//! the API for [`super::driver`].

use chrono::Utc;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::Client;
use serde_json::{json, Value};

use super::affinity::{self, Coschedule};
use super::api::{create_unless_exists, is_status, pods, to_value, SimulatorError};
use super::util::{self, str_or_empty};
use super::volumeclaim;

fn core(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn statefulsets() -> ApiResource {
    ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        plural: "statefulsets".into(),
    }
}

/// The resource of a kind created or deleted here.
fn resource_of(kind: &str) -> ApiResource {
    match kind {
        "StatefulSet" => statefulsets(),
        "PersistentVolumeClaim" => core(kind, "persistentvolumeclaims"),
        _ => pods(),
    }
}

fn owned_by_statefulset(pod: &Value) -> bool {
    util::array(pod, &["metadata", "ownerReferences"])
        .iter()
        .any(|o| str_or_empty(o, &["kind"]) == "StatefulSet")
}

/// What one pass read: the `coschedule` flag, the StatefulSets and claims, and the assistants'
/// pods (what creations and deletions are compared against).
pub struct Workspaces {
    /// The `coschedule` feature flag.
    pub mode: Coschedule,
    /// Every StatefulSet.
    pub sets: Vec<Value>,
    /// Every PersistentVolumeClaim.
    pub claims: Vec<Value>,
    existing: Vec<Value>,
}

impl Workspaces {
    /// Whether an object of `kind` named `name` exists in `ns` (as listed by this pass).
    pub fn has(&self, kind: &str, ns: &str, name: &str) -> bool {
        self.existing
            .iter()
            .any(|o| util::kind(o) == kind && util::namespace(o) == ns && util::name(o) == name)
    }
}

async fn list_if_served(client: &Client, ar: &ApiResource) -> Result<Vec<Value>, SimulatorError> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    match api.list(&Default::default()).await {
        Ok(list) => list
            .items
            .iter()
            .map(|o| to_value(o, ar).map_err(SimulatorError::from))
            .collect(),
        // A small fake API that serves neither: there are none.
        Err(e) if is_status(&e, kube::core::Status::is_not_found) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Whether anything in the cluster involves claims or assistants: a run binding a claim, a pod
/// mounting one or pinned to an assistant, or a `coschedule` mode that gives every run an
/// assistant. Otherwise StatefulSets and claims are not listed (a pass's cost stays one GET).
fn involved(mode: Coschedule, pipelineruns: &[Value], all_pods: &[Value]) -> bool {
    let binds = |pr: &Value| {
        util::array(pr, &["spec", "workspaces"]).iter().any(|b| {
            b.get("persistentVolumeClaim").is_some() || b.get("volumeClaimTemplate").is_some()
        })
    };
    let pod_needs = |p: &Value| {
        util::get(p, &["spec", "affinity", "podAffinity"]).is_some()
            || util::array(p, &["spec", "volumes"])
                .iter()
                .any(|v| v.get("persistentVolumeClaim").is_some())
            || owned_by_statefulset(p)
    };
    matches!(
        mode,
        Coschedule::PipelineRuns | Coschedule::IsolatePipelineRun
    ) || pipelineruns.iter().any(binds)
        || all_pods.iter().any(pod_needs)
}

/// Reads the feature flags (`tekton-pipelines/feature-flags`) and, when anything involves them
/// ([`involved`]), the StatefulSets and claims.
pub async fn read(
    client: &Client,
    pipelineruns: &[Value],
    all_pods: &[Value],
) -> Result<Workspaces, SimulatorError> {
    let (flags_ns, flags_name) = affinity::FEATURE_FLAGS;
    let cm_ar = core("ConfigMap", "configmaps");
    let cms: Api<DynamicObject> = Api::namespaced_with(client.clone(), flags_ns, &cm_ar);
    let flags = match cms.get_opt(flags_name).await? {
        Some(cm) => Some(to_value(&cm, &cm_ar)?),
        None => None,
    };
    let mode = Coschedule::from_feature_flags(flags.as_ref());
    let (sets, claims) = if involved(mode, pipelineruns, all_pods) {
        let pvcs = core("PersistentVolumeClaim", "persistentvolumeclaims");
        (
            list_if_served(client, &statefulsets()).await?,
            list_if_served(client, &pvcs).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let existing = sets
        .iter()
        .chain(claims.iter())
        .chain(all_pods.iter().filter(|p| owned_by_statefulset(p)))
        .cloned()
        .collect();
    Ok(Workspaces {
        mode,
        sets,
        claims,
        existing,
    })
}

/// Creates `obj` unless this pass listed it; AlreadyExists is fine. Returns the writes.
pub async fn create_if_absent(
    client: &Client,
    ws: &Workspaces,
    obj: Value,
) -> Result<usize, SimulatorError> {
    let (kind, ns, name) = (util::kind(&obj), util::namespace(&obj), util::name(&obj));
    if ws.has(kind, ns, name) {
        return Ok(0);
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource_of(kind));
    create_unless_exists(&api, obj).await
}

/// Deletes `kind`/`name` in `ns` if this pass listed it. Returns the writes.
pub async fn delete_if_present(
    client: &Client,
    ws: &Workspaces,
    ns: &str,
    kind: &str,
    name: &str,
) -> Result<usize, SimulatorError> {
    if !ws.has(kind, ns, name) {
        return Ok(0);
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource_of(kind));
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(1),
        Err(e) if is_status(&e, kube::core::Status::is_not_found) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The StatefulSet controller for the affinity assistants. Returns the writes.
pub async fn run_statefulsets(client: &Client, ws: &Workspaces) -> usize {
    let mut writes = 0;
    for set in ws
        .sets
        .iter()
        .filter(|s| util::get(s, &["metadata", "deletionTimestamp"]).is_none())
    {
        for child in affinity::statefulset_children(set) {
            match create_if_absent(client, ws, child).await {
                Ok(w) => writes += w,
                Err(e) => {
                    tracing::warn!(statefulset = util::name(set), error = %e, "simulator: StatefulSet child not created")
                }
            }
        }
    }
    writes
}

async fn patch_pod_status(client: &Client, pod: &Value, patch: &Value) -> usize {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), util::namespace(pod), &pods());
    match api
        .patch_status(
            util::name(pod),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
    {
        Ok(_) => 1,
        Err(e) => {
            tracing::debug!(pod = util::name(pod), error = %e, "simulator: pod placement not written");
            0
        }
    }
}

/// The scheduler's decision for a pod the kubelet has not started yet. `None`: the pod is placed
/// and the kubelet may run it. `Some(writes)`: it was handled here — left unschedulable (with
/// `PodScheduled=False/Unschedulable`, written once per message), or, for an assistant's pod,
/// placed and running (it only sleeps).
pub async fn place(
    client: &Client,
    ws: &Workspaces,
    pod: &Value,
    all_pods: &[Value],
) -> Option<usize> {
    let phase = str_or_empty(pod, &["status", "phase"]);
    if !(phase == "Pending" || phase.is_empty()) {
        return None;
    }
    let why = volumeclaim::missing_claim(pod, &ws.claims)
        .or_else(|| affinity::unschedulable(pod, all_pods));
    if let Some(message) = why {
        let already = util::array(pod, &["status", "conditions"]).iter().any(|c| {
            str_or_empty(c, &["type"]) == "PodScheduled" && str_or_empty(c, &["message"]) == message
        });
        if already {
            return Some(0);
        }
        let patch = json!({"status": {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": null,
            "lastTransitionTime": util::fmt_time(Utc::now()),
        }]}});
        return Some(patch_pod_status(client, pod, &patch).await);
    }
    if owned_by_statefulset(pod) {
        let now = util::fmt_time(Utc::now());
        let patch = json!({"status": {"phase": "Running", "startTime": now, "conditions": [
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": now},
        ]}});
        return Some(patch_pod_status(client, pod, &patch).await);
    }
    None
}

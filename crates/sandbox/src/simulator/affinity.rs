//! The affinity assistant: the StatefulSet Tekton creates per PipelineRun so that the pods sharing
//! a claim land on one node, its removal when the run is done, the TaskRun annotation and the
//! pods' required pod affinity. Pure functions over JSON.
//!
//! Source (`tektoncd/pipeline` v1.15.0-49-g3ee1745ae):
//! * `pkg/internal/affinityassistant/affinityassistant_types.go` `GetAffinityAssistantBehavior`:
//!   the `coschedule` key of the `feature-flags` ConfigMap (`pkg/apis/config/feature_flags.go`,
//!   default `workspaces`) picks one of four behaviours, [`Coschedule`].
//! * `pkg/reconciler/pipelinerun/affinity_assistant.go`:
//!   - `createOrUpdateAffinityAssistantsAndPVCs`, called by `reconcile` only while no child run
//!     exists (`IsBeforeFirstTaskRun`): `workspaces` — one StatefulSet per `persistentVolumeClaim`
//!     or `volumeClaimTemplate` workspace, named `GetAffinityAssistantName(workspace, run)`, and the
//!     template claims created by the run (`pvcHandler.CreatePVCFromVolumeClaimTemplate`);
//!     `pipelineruns` / `isolate-pipelinerun` — one StatefulSet per run
//!     (`GetAffinityAssistantName("", run)`) carrying the templates as its own
//!     `volumeClaimTemplates`; `disabled` — the template claims only. A StatefulSet that exists is
//!     not created again (`createOrUpdateAffinityAssistant` GETs it first).
//!   - `cleanupAffinityAssistantsAndPVCs`, on the reconcile that completes the run and on every
//!     reconcile of a done run: deletes the StatefulSet(s); template claims only with annotation
//!     `tekton.dev/auto-cleanup-pvc: "true"` (`workspaces`), always (per-pipelinerun modes, the
//!     StatefulSet's `<claim>-<assistant>-0`), never (`disabled`); user claims never.
//!   - `getAffinityAssistantAnnotationVal`: the TaskRun annotation
//!     `pipeline.tekton.dev/affinity-assistant` — `workspaces`: the assistant of the task's claim
//!     workspace, none for a task without one; per-pipelinerun: the run's assistant, every task;
//!     `disabled`: none (pipelinerun.go `createTaskRun`).
//!   - `GetAffinityAssistantName`: `affinity-assistant-<first 10 hex of sha256(workspace + run)>`.
//! * `pkg/internal/affinityassistant/transformer.go` `NewTransformer`: the pod of an annotated
//!   TaskRun gets a **required** pod affinity to the pods labelled
//!   `app.kubernetes.io/instance=<assistant>`, `app.kubernetes.io/component=affinity-assistant`
//!   (fixture affinity/01 pod), so without the assistant's pod it cannot be scheduled:
//!   [`unschedulable`] (kube-scheduler's InterPodAffinity filter).
//!
//! The StatefulSet controller is reduced to what the assistant needs: pod `<set>-0` with the
//! template's labels, owned by the set, and one claim `<template>-<set>-0` per
//! `volumeClaimTemplates` entry ([`statefulset_children`]; kube-controller-manager
//! `pkg/controller/statefulset` `getPersistentVolumeClaimName`).

use serde_json::{json, Map, Value};

pub use super::coschedule::{assistant_name, Coschedule};
use super::rules;
use super::util::{self, array, get, str_or_empty};
use super::volumeclaim;

/// Namespace and name of the ConfigMap holding Tekton's feature flags
/// (`config/config-feature-flags.yaml`).
pub const FEATURE_FLAGS: (&str, &str) = ("tekton-pipelines", "feature-flags");

/// Annotation that makes `workspaces` mode delete the template claims with the run
/// (`AutoCleanupPVCAnnotation`).
pub const ANN_AUTO_CLEANUP_PVC: &str = "tekton.dev/auto-cleanup-pvc";

/// `workspace.LabelInstance` / `LabelComponent` / `ComponentNameAffinityAssistant`
/// (`pkg/workspace/affinity_assistant_names.go`).
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// See [`LABEL_INSTANCE`].
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// See [`LABEL_INSTANCE`].
pub const COMPONENT: &str = "affinity-assistant";

fn binds_claim(b: &Value) -> bool {
    b.get("persistentVolumeClaim").is_some() || b.get("volumeClaimTemplate").is_some()
}

/// `pipelinePVCWorkspaceName` of `createTaskRun`: the (last) pipeline workspace of the task that
/// the run binds to a claim or claim template.
pub fn claim_workspace_of(pr: &Value, task: &Value) -> Option<String> {
    array(task, &["workspaces"]).iter().rev().find_map(|w| {
        let ws = volumeclaim::pipeline_workspace_of(w);
        volumeclaim::run_binding(pr, ws)
            .filter(|b| binds_claim(b))
            .map(|_| ws.to_string())
    })
}

/// `getAffinityAssistantAnnotationVal` for a new TaskRun of `task`.
pub fn annotation_value(mode: Coschedule, pr: &Value, task: &Value) -> Option<String> {
    let run = util::name(pr);
    match mode {
        Coschedule::Workspaces => claim_workspace_of(pr, task).map(|ws| assistant_name(&ws, run)),
        Coschedule::PipelineRuns | Coschedule::IsolatePipelineRun => Some(assistant_name("", run)),
        Coschedule::Disabled => None,
    }
}

fn statefulset_labels(pr: &Value, name: &str) -> Map<String, Value> {
    let mut labels = get(pr, &["metadata", "labels"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(rules::LABEL_PIPELINE_RUN.into(), util::name(pr).into());
    labels.insert(LABEL_INSTANCE.into(), name.into());
    labels.insert(LABEL_COMPONENT.into(), COMPONENT.into());
    labels
}

/// `affinityAssistantStatefulSet`, reduced: one replica, the run's labels plus the instance and
/// component labels, the run as controlling owner, the user claims as volumes and the (sanitized)
/// claim templates as `volumeClaimTemplates`.
fn statefulset(pr: &Value, name: &str, claim_templates: &[Value], claim_names: &[String]) -> Value {
    let labels = statefulset_labels(pr, name);
    let volumes: Vec<Value> = claim_names
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"name": format!("workspace-{i}"), "persistentVolumeClaim": {"claimName": c}}))
        .collect();
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": name,
            "namespace": util::namespace(pr),
            "labels": labels,
            "ownerReferences": [volumeclaim::controller_ref(pr)],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "volumeClaimTemplates": claim_templates,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [{"name": "affinity-assistant", "image": "nop", "args": ["tekton_run_indefinitely"]}],
                    "volumes": volumes,
                },
            },
        },
    })
}

/// `createOrUpdateAffinityAssistantsAndPVCs`: the StatefulSets and claims the run needs, to be
/// created when absent.
pub fn assistants_and_claims(pr: &Value, mode: Coschedule) -> Vec<Value> {
    let run = util::name(pr);
    let mut out = Vec::new();
    let bindings: Vec<&Value> = array(pr, &["spec", "workspaces"])
        .iter()
        .filter(|b| binds_claim(b))
        .collect();
    match mode {
        Coschedule::Workspaces => {
            for b in &bindings {
                let ws = str_or_empty(b, &["name"]);
                let aa = assistant_name(ws, run);
                if let Some(c) = util::get_str(b, &["persistentVolumeClaim", "claimName"]) {
                    out.push(statefulset(pr, &aa, &[], &[c.to_string()]));
                } else if let Some(claim) = volumeclaim::claim_from_template(pr, b) {
                    let name = util::name(&claim).to_string();
                    out.push(claim);
                    out.push(statefulset(pr, &aa, &[], &[name]));
                }
            }
        }
        Coschedule::PipelineRuns | Coschedule::IsolatePipelineRun => {
            let aa = assistant_name("", run);
            let mut templates = Vec::new();
            let mut claims = Vec::new();
            for b in &bindings {
                if let Some(c) = util::get_str(b, &["persistentVolumeClaim", "claimName"]) {
                    claims.push(c.to_string());
                } else if let Some(mut t) = b.get("volumeClaimTemplate").cloned() {
                    let n = volumeclaim::sanitize_volume_name(&volumeclaim::template_claim_name(
                        b,
                        util::uid(pr),
                    ));
                    t["metadata"]["name"] = n.into();
                    if let Some(o) = t.as_object_mut() {
                        o.remove("status");
                    }
                    templates.push(t);
                }
            }
            out.push(statefulset(pr, &aa, &templates, &claims));
        }
        Coschedule::Disabled => {
            out.extend(
                bindings
                    .iter()
                    .filter_map(|b| volumeclaim::claim_from_template(pr, b)),
            );
        }
    }
    out
}

/// An object to delete: `(kind, name)` in the run's namespace.
pub type ObjectName = (&'static str, String);

/// `cleanupAffinityAssistantsAndPVCs`: what a done run's reconcile deletes.
pub fn cleanup(pr: &Value, mode: Coschedule) -> Vec<ObjectName> {
    let run = util::name(pr);
    let mut out = Vec::new();
    let bindings = array(pr, &["spec", "workspaces"]);
    match mode {
        Coschedule::Workspaces => {
            let auto = util::get_str(pr, &["metadata", "annotations", ANN_AUTO_CLEANUP_PVC])
                == Some("true");
            for b in bindings.iter().filter(|b| binds_claim(b)) {
                out.push((
                    "StatefulSet",
                    assistant_name(str_or_empty(b, &["name"]), run),
                ));
                if auto && b.get("volumeClaimTemplate").is_some() {
                    out.push((
                        "PersistentVolumeClaim",
                        volumeclaim::template_claim_name(b, util::uid(pr)),
                    ));
                }
            }
        }
        Coschedule::PipelineRuns | Coschedule::IsolatePipelineRun => {
            out.push(("StatefulSet", assistant_name("", run)));
            for b in bindings
                .iter()
                .filter(|b| b.get("volumeClaimTemplate").is_some())
            {
                out.push((
                    "PersistentVolumeClaim",
                    volumeclaim::claim_name_with_assistant(pr, b),
                ));
            }
        }
        Coschedule::Disabled => {}
    }
    out
}

/// `NewTransformer`: the pod affinity of a TaskRun's pod, from its annotation.
pub fn pod_affinity(tr: &Value) -> Option<Value> {
    let aa = util::get_str(
        tr,
        &["metadata", "annotations", rules::ANN_AFFINITY_ASSISTANT],
    )
    .filter(|a| !a.is_empty())?;
    Some(
        json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {LABEL_COMPONENT: COMPONENT, LABEL_INSTANCE: aa}},
            "topologyKey": "kubernetes.io/hostname",
        }]}}),
    )
}

/// What the StatefulSet controller creates for an assistant: pod `<set>-0` (owned by the set) and
/// the claims of its `volumeClaimTemplates`.
pub fn statefulset_children(sts: &Value) -> Vec<Value> {
    let name = util::name(sts);
    let ns = util::namespace(sts);
    let mut out = Vec::new();
    let mut volumes: Vec<Value> = array(sts, &["spec", "template", "spec", "volumes"]).to_vec();
    for t in array(sts, &["spec", "volumeClaimTemplates"]) {
        let claim = format!("{}-{name}-0", str_or_empty(t, &["metadata", "name"]));
        let mut pvc = t.clone();
        pvc["apiVersion"] = "v1".into();
        pvc["kind"] = "PersistentVolumeClaim".into();
        pvc["metadata"] = json!({"name": claim, "namespace": ns,
            "labels": get(sts, &["spec", "template", "metadata", "labels"]).cloned().unwrap_or_else(|| json!({}))});
        volumes.push(json!({"name": str_or_empty(t, &["metadata", "name"]), "persistentVolumeClaim": {"claimName": claim}}));
        out.push(pvc);
    }
    out.push(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{name}-0"),
            "namespace": ns,
            "labels": get(sts, &["spec", "template", "metadata", "labels"]).cloned().unwrap_or_else(|| json!({})),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                "uid": util::uid(sts), "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "containers": get(sts, &["spec", "template", "spec", "containers"]).cloned().unwrap_or_else(|| json!([])),
            "volumes": volumes,
        },
    }));
    out
}

/// Why the scheduler cannot place `pod`: a required pod-affinity term that no placed (`Running`),
/// live pod of the namespace matches (kube-scheduler's InterPodAffinity filter, one node).
pub fn unschedulable(pod: &Value, pods: &[Value]) -> Option<String> {
    let terms = array(
        pod,
        &[
            "spec",
            "affinity",
            "podAffinity",
            "requiredDuringSchedulingIgnoredDuringExecution",
        ],
    );
    let unmatched = terms.iter().any(|t| {
        let want = get(t, &["labelSelector", "matchLabels"])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        !pods.iter().any(|p| {
            util::namespace(p) == util::namespace(pod)
                && util::name(p) != util::name(pod)
                && get(p, &["metadata", "deletionTimestamp"]).is_none()
                && str_or_empty(p, &["status", "phase"]) == "Running"
                && want
                    .iter()
                    .all(|(k, v)| get(p, &["metadata", "labels", k]) == Some(v))
        })
    });
    unmatched
        .then(|| "0/1 nodes are available: 1 node(s) didn't match pod affinity rules.".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::affinity_fixture::{parse, POD_A, RUN, TR_A};

    fn run() -> Value {
        json!({"metadata": {"name": "ws-run", "namespace": "ns", "uid": "u1", "labels": {"x": "y"}},
            "spec": {"workspaces": [
                {"name": "src", "volumeClaimTemplate": {"spec": {}}},
                {"name": "shared", "persistentVolumeClaim": {"claimName": "mine"}},
                {"name": "tmp", "emptyDir": {}}]}})
    }

    /// The recorded assistant name, annotation and pod affinity (fixture affinity/01).
    #[test]
    fn names_annotation_and_pod_affinity_as_recorded() {
        let pr = parse(RUN);
        let tr = parse(TR_A);
        let task = json!({"name": "a", "workspaces": [{"name": "w", "workspace": "src"}]});
        let want = util::get_str(
            &tr,
            &["metadata", "annotations", rules::ANN_AFFINITY_ASSISTANT],
        );
        assert_eq!(
            annotation_value(Coschedule::Workspaces, &pr, &task).as_deref(),
            want
        );
        assert_eq!(want, Some("affinity-assistant-9e9e0199da"));
        assert_eq!(
            pod_affinity(&tr),
            parse(POD_A)["spec"].get("affinity").cloned()
        );
    }

    #[test]
    fn annotation_per_mode() {
        let pr = run();
        let with = json!({"name": "a", "workspaces": [{"name": "w", "workspace": "src"}]});
        let implicit = json!({"name": "a", "workspaces": [{"name": "shared"}]});
        let scratch = json!({"name": "b", "workspaces": [{"name": "w", "workspace": "tmp"}]});
        let none = json!({"name": "c"});
        let ws = Coschedule::Workspaces;
        assert_eq!(
            annotation_value(ws, &pr, &with),
            Some(assistant_name("src", "ws-run"))
        );
        assert_eq!(
            annotation_value(ws, &pr, &implicit),
            Some(assistant_name("shared", "ws-run"))
        );
        assert_eq!(annotation_value(ws, &pr, &scratch), None);
        assert_eq!(annotation_value(ws, &pr, &none), None);
        for m in [Coschedule::PipelineRuns, Coschedule::IsolatePipelineRun] {
            assert_eq!(
                annotation_value(m, &pr, &none),
                Some(assistant_name("", "ws-run"))
            );
        }
        assert_eq!(annotation_value(Coschedule::Disabled, &pr, &with), None);
    }

    #[test]
    fn the_flag_is_read_from_the_feature_flags_configmap() {
        let cm = |v: &str| json!({"data": {"coschedule": v}});
        assert_eq!(Coschedule::from_feature_flags(None), Coschedule::Workspaces);
        for (value, want) in [
            ("pipelineruns", Coschedule::PipelineRuns),
            ("isolate-pipelinerun", Coschedule::IsolatePipelineRun),
            ("disabled", Coschedule::Disabled),
            ("bogus", Coschedule::Workspaces),
        ] {
            assert_eq!(
                Coschedule::from_feature_flags(Some(&cm(value))),
                want,
                "{value}"
            );
        }
    }

    fn kinds_names(objs: &[Value]) -> Vec<(String, String)> {
        objs.iter()
            .map(|o| {
                (
                    str_or_empty(o, &["kind"]).to_string(),
                    util::name(o).to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn what_each_mode_creates_and_deletes() {
        let pr = run();
        let claim = volumeclaim::template_claim_name(&pr["spec"]["workspaces"][0], "u1");
        let sts = |ws: &str| ("StatefulSet".to_string(), assistant_name(ws, "ws-run"));
        let pvc = |n: &str| ("PersistentVolumeClaim".to_string(), n.to_string());
        assert_eq!(
            kinds_names(&assistants_and_claims(&pr, Coschedule::Workspaces)),
            [pvc(&claim), sts("src"), sts("shared")]
        );
        assert_eq!(
            kinds_names(&assistants_and_claims(&pr, Coschedule::PipelineRuns)),
            [sts("")]
        );
        assert_eq!(
            kinds_names(&assistants_and_claims(&pr, Coschedule::Disabled)),
            [pvc(&claim)]
        );
        let per_run = assistants_and_claims(&pr, Coschedule::IsolatePipelineRun);
        let children = kinds_names(&statefulset_children(&per_run[0]));
        let with_assistant =
            volumeclaim::claim_name_with_assistant(&pr, &pr["spec"]["workspaces"][0]);
        assert_eq!(
            children,
            [
                pvc(&with_assistant),
                ("Pod".into(), format!("{}-0", assistant_name("", "ws-run")))
            ]
        );

        let names = |v: Vec<ObjectName>| -> Vec<(String, String)> {
            v.into_iter().map(|(k, n)| (k.to_string(), n)).collect()
        };
        assert_eq!(
            names(cleanup(&pr, Coschedule::Workspaces)),
            [sts("src"), sts("shared")]
        );
        let mut auto = pr.clone();
        auto["metadata"]["annotations"] = json!({ANN_AUTO_CLEANUP_PVC: "true"});
        assert_eq!(
            names(cleanup(&auto, Coschedule::Workspaces)),
            [sts("src"), pvc(&claim), sts("shared")]
        );
        assert_eq!(
            names(cleanup(&pr, Coschedule::PipelineRuns)),
            [sts(""), pvc(&with_assistant)]
        );
        assert!(cleanup(&pr, Coschedule::Disabled).is_empty());
    }

    #[test]
    fn a_pinned_pod_schedules_only_next_to_its_assistant() {
        let tr = json!({"metadata": {"annotations": {rules::ANN_AFFINITY_ASSISTANT: "affinity-assistant-x"}}});
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"affinity": pod_affinity(&tr)}});
        let aa = json!({"metadata": {"name": "affinity-assistant-x-0", "namespace": "ns",
            "labels": {LABEL_INSTANCE: "affinity-assistant-x", LABEL_COMPONENT: COMPONENT}},
            "status": {"phase": "Running"}});
        let mut pending = aa.clone();
        pending["status"]["phase"] = "Pending".into();
        assert!(unschedulable(&pod, &[pending]).is_some(), "not placed yet");
        assert_eq!(unschedulable(&pod, std::slice::from_ref(&aa)), None);
        assert!(unschedulable(&pod, &[]).is_some());
        let mut other_ns = aa.clone();
        other_ns["metadata"]["namespace"] = "elsewhere".into();
        assert!(unschedulable(&pod, &[other_ns]).is_some());
        let free = json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {}});
        assert_eq!(unschedulable(&free, &[]), None);
    }
}

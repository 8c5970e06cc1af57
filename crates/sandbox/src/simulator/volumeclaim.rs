//! Workspaces bound with a `volumeClaimTemplate`: the PersistentVolumeClaim Tekton creates once per
//! PipelineRun and the bindings its TaskRuns get instead of the template. Pure functions over JSON.
//!
//! Source (`tektoncd/pipeline` v1.15.0-49-g3ee1745ae):
//! * `pkg/reconciler/volumeclaim/pvchandler.go` `GeneratePVCNameFromWorkspaceBinding`: the claim is
//!   named `<template name, else "pvc">-<first 10 hex digits of sha256(workspace + owner uid)>`, so
//!   the same run always finds the same claim; `CreatePVCFromVolumeClaimTemplate` GETs it and
//!   creates it (owner reference: the PipelineRun as controller) only when it is missing — an
//!   existing claim is reused with its data.
//! * `pkg/reconciler/pipelinerun/pipelinerun.go` `taskWorkspaceByWorkspaceVolumeSource`: a TaskRun
//!   gets `persistentVolumeClaim.claimName` of that claim (coschedule `workspaces`/`disabled`), or
//!   of the claim the affinity assistant's StatefulSet makes, `<claim>-<assistant>-0`
//!   (`pipelineruns`/`isolate-pipelinerun`, `getPersistentVolumeClaimNameWithAffinityAssistant`);
//!   the sub-path is the binding's joined with the pipeline task's (`combinedSubPath`). Any other
//!   binding is passed through under the task's workspace name.
//! * `pkg/workspace/apply.go` `CreateVolumes`: the pod gets one volume per bound claim (Tekton names
//!   it `ws-<random>`; here `ws-<hash of the workspace name>` so that pods are deterministic).
//!
//! The scheduler side: a pod whose claim does not exist stays `Pending` with `PodScheduled=False`
//! (kube-scheduler's VolumeBinding plugin: `persistentvolumeclaim "x" not found`), see
//! [`missing_claim`].

use serde_json::{json, Value};

use super::coschedule::{self, Coschedule};
use super::util::{self, array, get_str, str_or_empty};

/// `GeneratePVCNameFromWorkspaceBinding`: the claim Tekton creates for the template of pipeline
/// workspace binding `binding` of the run with uid `owner_uid`.
pub fn template_claim_name(binding: &Value, owner_uid: &str) -> String {
    let prefix = match get_str(binding, &["volumeClaimTemplate", "metadata", "name"]) {
        Some(n) if !n.is_empty() => n,
        _ => "pvc",
    };
    let ws = str_or_empty(binding, &["name"]);
    format!(
        "{prefix}-{}",
        util::sha256_hex(&format!("{ws}{owner_uid}"), 10)
    )
}

/// `sanitizeVolumeName` (affinity_assistant.go): names over 63 characters keep their first 52
/// and get `-<10 hex digits of sha256(name)>`.
pub fn sanitize_volume_name(name: &str) -> String {
    const MAX: usize = 63;
    if name.len() <= MAX {
        return name.to_string();
    }
    format!("{}-{}", &name[..MAX - 11], util::sha256_hex(name, 10))
}

/// `getPersistentVolumeClaimNameWithAffinityAssistant`: the claim the per-pipelinerun affinity
/// assistant's StatefulSet creates from the template (`<claim>-<assistant>-0`).
pub fn claim_name_with_assistant(pr: &Value, binding: &Value) -> String {
    format!(
        "{}-{}-0",
        sanitize_volume_name(&template_claim_name(binding, util::uid(pr))),
        coschedule::assistant_name("", util::name(pr))
    )
}

/// The PersistentVolumeClaim `CreatePVCFromVolumeClaimTemplate` creates for a template binding:
/// the template with the generated name, the run's namespace and the run as controlling owner.
pub fn claim_from_template(pr: &Value, binding: &Value) -> Option<Value> {
    let template = binding.get("volumeClaimTemplate")?;
    let mut claim = template.clone();
    let o = claim.as_object_mut()?;
    o.remove("status");
    o.insert("apiVersion".into(), "v1".into());
    o.insert("kind".into(), "PersistentVolumeClaim".into());
    let mut meta = o
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    meta.insert(
        "name".into(),
        template_claim_name(binding, util::uid(pr)).into(),
    );
    meta.insert("namespace".into(), util::namespace(pr).into());
    meta.insert("ownerReferences".into(), json!([controller_ref(pr)]));
    o.insert("metadata".into(), Value::Object(meta));
    Some(claim)
}

/// `kmeta.NewControllerRef(pr)`.
pub fn controller_ref(pr: &Value) -> Value {
    json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "name": util::name(pr),
        "uid": util::uid(pr),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `combinedSubPath`.
fn combined_sub_path(binding: &str, task: &str) -> String {
    match (binding.is_empty(), task.is_empty()) {
        (true, _) => task.to_string(),
        (_, true) => binding.to_string(),
        _ => format!("{binding}/{task}"),
    }
}

/// `taskWorkspaceByWorkspaceVolumeSource`: the TaskRun binding of task workspace `task_ws` (with
/// the pipeline task's `sub_path`) for the run's pipeline workspace binding `binding`.
pub fn task_binding(
    pr: &Value,
    binding: &Value,
    task_ws: &str,
    sub_path: &str,
    mode: Coschedule,
) -> Value {
    let sub = combined_sub_path(str_or_empty(binding, &["subPath"]), sub_path);
    if binding.get("volumeClaimTemplate").is_none() {
        let mut b = binding.clone();
        if let Some(o) = b.as_object_mut() {
            o.insert("name".into(), task_ws.into());
            if sub.is_empty() {
                o.remove("subPath");
            } else {
                o.insert("subPath".into(), sub.into());
            }
        }
        return b;
    }
    let claim = match mode {
        Coschedule::Workspaces | Coschedule::Disabled => {
            template_claim_name(binding, util::uid(pr))
        }
        Coschedule::PipelineRuns | Coschedule::IsolatePipelineRun => {
            claim_name_with_assistant(pr, binding)
        }
    };
    let mut b = json!({"name": task_ws, "persistentVolumeClaim": {"claimName": claim}});
    if !sub.is_empty() {
        b["subPath"] = sub.into();
    }
    b
}

/// The pipeline workspace a pipeline task's workspace entry binds: `workspace`, else its own name
/// (`getTaskrunWorkspaces`).
pub fn pipeline_workspace_of(task_ws: &Value) -> &str {
    match str_or_empty(task_ws, &["workspace"]) {
        "" => str_or_empty(task_ws, &["name"]),
        w => w,
    }
}

/// The run's binding of pipeline workspace `ws`.
pub fn run_binding<'a>(pr: &'a Value, ws: &str) -> Option<&'a Value> {
    array(pr, &["spec", "workspaces"])
        .iter()
        .find(|b| str_or_empty(b, &["name"]) == ws)
}

/// Pod volumes for the TaskRun's claim bindings (`CreateVolumes`, claims only).
pub fn pod_volumes(tr: &Value) -> Vec<Value> {
    array(tr, &["spec", "workspaces"])
        .iter()
        .filter_map(|w| {
            let claim = get_str(w, &["persistentVolumeClaim", "claimName"])?;
            Some(json!({
                "name": format!("ws-{}", util::sha256_hex(str_or_empty(w, &["name"]), 5)),
                "persistentVolumeClaim": {"claimName": claim},
            }))
        })
        .collect()
}

/// Why the scheduler cannot place `pod`: a claim it mounts does not exist (or is being deleted)
/// among `claims` (the namespace's PersistentVolumeClaims).
pub fn missing_claim(pod: &Value, claims: &[Value]) -> Option<String> {
    array(pod, &["spec", "volumes"]).iter().find_map(|v| {
        let claim = get_str(v, &["persistentVolumeClaim", "claimName"])?;
        let present = claims.iter().any(|c| {
            util::name(c) == claim
                && util::namespace(c) == util::namespace(pod)
                && util::get(c, &["metadata", "deletionTimestamp"]).is_none()
        });
        (!present)
            .then(|| format!("0/1 nodes are available: persistentvolumeclaim {claim:?} not found."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::affinity_fixture::{parse, POD_A, RUN, TR_A};

    /// The recorded run's template claim: `pvc-1dbde596f6` from workspace `src` and the run's uid,
    /// as mounted by the recorded TaskRun and its pod.
    #[test]
    fn the_template_claim_is_named_from_workspace_and_run_uid_as_recorded() {
        let pr = parse(RUN);
        let binding = run_binding(&pr, "src").expect("binding");
        assert_eq!(
            template_claim_name(binding, util::uid(&pr)),
            "pvc-1dbde596f6"
        );
        let tr = parse(TR_A);
        let got = task_binding(&pr, binding, "w", "", Coschedule::Workspaces);
        assert_eq!(got, tr["spec"]["workspaces"][0]);
        let pod = parse(POD_A);
        let recorded: Vec<&Value> = array(&pod, &["spec", "volumes"])
            .iter()
            .filter(|v| v.get("persistentVolumeClaim").is_some())
            .collect();
        let mut with = tr.clone();
        with["spec"]["workspaces"] = json!([got]);
        let made = pod_volumes(&with);
        assert_eq!(made.len(), recorded.len());
        assert_eq!(
            made[0]["persistentVolumeClaim"],
            recorded[0]["persistentVolumeClaim"]
        );
        let claim = claim_from_template(&pr, binding).expect("claim");
        assert_eq!(claim["metadata"]["name"], "pvc-1dbde596f6");
        assert_eq!(
            claim["metadata"]["ownerReferences"][0]["uid"],
            pr["metadata"]["uid"]
        );
        assert_eq!(claim["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(claim["spec"], binding["volumeClaimTemplate"]["spec"]);
    }

    #[test]
    fn a_named_template_and_the_per_pipelinerun_claim() {
        let pr = json!({"metadata": {"name": "r", "uid": "u1", "namespace": "ns"}});
        let b = json!({"name": "src", "volumeClaimTemplate": {"metadata": {"name": "data"}, "spec": {}}});
        let id = util::sha256_hex("srcu1", 10);
        assert_eq!(template_claim_name(&b, "u1"), format!("data-{id}"));
        assert_eq!(
            claim_name_with_assistant(&pr, &b),
            format!("data-{id}-{}-0", coschedule::assistant_name("", "r"))
        );
        let tb = task_binding(&pr, &b, "w", "sub", Coschedule::PipelineRuns);
        assert_eq!(tb["subPath"], "sub");
        assert_eq!(
            tb["persistentVolumeClaim"]["claimName"],
            claim_name_with_assistant(&pr, &b)
        );
        let long = "x".repeat(70);
        let s = sanitize_volume_name(&long);
        assert_eq!(s.len(), 63);
        assert!(s.starts_with(&"x".repeat(52)));
    }

    #[test]
    fn other_bindings_pass_through_with_combined_sub_paths() {
        let pr = json!({"metadata": {"name": "r", "uid": "u1"}});
        let b =
            json!({"name": "src", "persistentVolumeClaim": {"claimName": "mine"}, "subPath": "a"});
        let tb = task_binding(&pr, &b, "w", "b", Coschedule::Workspaces);
        assert_eq!(
            tb,
            json!({"name": "w", "persistentVolumeClaim": {"claimName": "mine"}, "subPath": "a/b"})
        );
    }

    #[test]
    fn a_pod_whose_claim_is_missing_cannot_be_scheduled() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"volumes": [{"name": "ws-1", "persistentVolumeClaim": {"claimName": "c"}}]}});
        let c = json!({"metadata": {"name": "c", "namespace": "ns"}});
        assert_eq!(missing_claim(&pod, std::slice::from_ref(&c)), None);
        assert!(missing_claim(&pod, &[]).is_some_and(|m| m.contains("\"c\" not found")));
        let mut deleting = c.clone();
        deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        assert!(missing_claim(&pod, &[deleting]).is_some());
    }
}

//! Deletion rules through the real kube-rs client: preconditions, finalizers, and garbage
//! collection with background, foreground and orphan propagation; Tekton's admission messages.

use crate::running_emulator::*;
use tekton_retry_test_support::emulator as emulator_support;

use emulator_support::*;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use kube::ResourceExt;
use serde_json::{json, Value};

fn owner_ref(kind: &str, api_version: &str, name: &str, uid: &str, block: bool) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": block})
}

/// A PipelineRun `pr` owning TaskRun `tr` owning Pod `tr-pod` (blockOwnerDeletion everywhere).
async fn chain(c: &kube::Client) -> (String, String) {
    let pr = prs(c, "demo")
        .create(&PostParams::default(), &dynamic(pipelinerun("pr")))
        .await
        .expect("pr");
    let pr_uid = pr.metadata.uid.expect("uid");
    let tr = trs(c, "demo")
        .create(
            &PostParams::default(),
            &dynamic(json!({
                "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
                "metadata": {"name": "tr", "namespace": "demo",
                    "ownerReferences": [owner_ref("PipelineRun", "tekton.dev/v1", "pr", &pr_uid, true)]},
                "spec": {"taskRef": {"name": "t"}}
            })),
        )
        .await
        .expect("tr");
    let tr_uid = tr.metadata.uid.expect("uid");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "tr-pod", "namespace": "demo", "finalizers": ["test.example/hold"],
            "ownerReferences": [owner_ref("TaskRun", "tekton.dev/v1", "tr", &tr_uid, true)]},
        "spec": {"containers": [{"name": "step-x", "image": "busybox"}]}
    }))
    .expect("pod");
    Api::<Pod>::namespaced(c.clone(), "demo")
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod");
    (pr_uid, tr_uid)
}

/// Drop the finalizers of the pod `tr-pod` (made by [`chain`]), which hold it.
async fn release_pod(pods: &Api<Pod>) {
    merge_patch(pods, "tr-pod", json!({"metadata": {"finalizers": null}}))
        .await
        .expect("unhold");
}

#[tokio::test]
async fn delete_preconditions_use_kube_messages() {
    let (_emu, _c, api) = with_demo_runs().await;
    let pr = create_pipelinerun(&api, "x").await;
    let uid = pr.metadata.uid.clone().expect("uid");
    let wrong = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let e = api_error(api.delete("x", &wrong).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        format!(
            r#"Operation cannot be fulfilled on pipelineruns.tekton.dev "x": Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"#
        )
    );
    let stale_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..Default::default()
    };
    let e = api_error(api.delete("x", &stale_rv).await);
    assert!(
        e.message
            .contains("Precondition failed: ResourceVersion in precondition: 1"),
        "{}",
        e.message
    );
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: pr.metadata.resource_version.clone(),
        }),
        ..Default::default()
    };
    api.delete("x", &right).await.expect("delete");
    assert_eq!(api_error(api.get("x").await).code, 404);
}

#[tokio::test]
async fn finalizers_hold_an_object_with_a_deletion_timestamp() {
    let (_emu, c) = with_admin().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "demo");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["test.example/hold"]}}),
    )
    .expect("cm");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let r = cms
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let left = r
        .left()
        .expect("the object is returned while finalizers remain");
    assert!(left.metadata.deletion_timestamp.is_some());
    let e = api_error(
        merge_patch(
            &cms,
            "held",
            json!({"metadata": {"finalizers": ["test.example/hold", "x/new"]}}),
        )
        .await,
    );
    assert_eq!(e.code, 422, "no new finalizers on a deleting object");
    merge_patch(&cms, "held", json!({"metadata": {"finalizers": null}}))
        .await
        .expect("remove finalizer");
    assert_eq!(
        api_error(cms.get("held").await).code,
        404,
        "gone once the last finalizer is removed"
    );
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let (_emu, c) = with_admin().await;
    chain(&c).await;
    // Release the pod's own finalizer so only GC semantics matter.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "demo");
    release_pod(&pods).await;
    prs(&c, "demo")
        .delete("pr", &DeleteParams::background())
        .await
        .expect("delete");
    assert_eq!(
        api_error(prs(&c, "demo").get("pr").await).code,
        404,
        "the owner goes at once"
    );
    eventually("taskrun and pod collected", || {
        let (t, p) = (trs(&c, "demo"), pods.clone());
        async move {
            t.get_opt("tr").await.expect("get").is_none()
                && p.get_opt("tr-pod").await.expect("get").is_none()
        }
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let (_emu, c) = with_admin().await;
    chain(&c).await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "demo");
    let r = trs(&c, "demo")
        .delete("tr", &DeleteParams::foreground())
        .await
        .expect("delete");
    let tr = r.left().expect("still there");
    assert!(tr
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .contains(&"foregroundDeletion".to_string()));
    assert!(tr.metadata.deletion_timestamp.is_some());
    // The GC deletes the pod, which its own finalizer holds; the TaskRun waits for it.
    eventually("pod marked for deletion", || {
        let p = pods.clone();
        async move {
            p.get("tr-pod")
                .await
                .expect("get")
                .metadata
                .deletion_timestamp
                .is_some()
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let tr = trs(&c, "demo")
        .get("tr")
        .await
        .expect("taskrun still there while its pod is");
    assert!(tr.metadata.deletion_timestamp.is_some());
    release_pod(&pods).await;
    eventually("taskrun gone after its pod", || {
        let t = trs(&c, "demo");
        async move { t.get_opt("tr").await.expect("get").is_none() }
    })
    .await;
    assert!(
        prs(&c, "demo").get_opt("pr").await.expect("get").is_some(),
        "the owner is untouched"
    );
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_drops_their_owner_reference() {
    let (_emu, c) = with_admin().await;
    chain(&c).await;
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    prs(&c, "demo").delete("pr", &dp).await.expect("delete");
    eventually("owner gone", || {
        let p = prs(&c, "demo");
        async move { p.get_opt("pr").await.expect("get").is_none() }
    })
    .await;
    let tr = trs(&c, "demo")
        .get("tr")
        .await
        .expect("orphaned taskrun stays");
    assert!(tr.metadata.owner_references.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn propagation_policy_in_the_query_string_is_honoured() {
    let (_emu, c) = with_admin().await;
    chain(&c).await;
    let req = http::Request::delete(
        "/apis/tekton.dev/v1/namespaces/demo/taskruns/tr?propagationPolicy=Foreground",
    )
    .body(Vec::new())
    .expect("request");
    let v: Value = c.request(req).await.expect("delete");
    assert!(v["metadata"]["finalizers"]
        .as_array()
        .expect("finalizers")
        .iter()
        .any(|f| f == "foregroundDeletion"));
}

#[tokio::test]
async fn tekton_webhook_messages_on_done_and_running_runs() {
    let (_emu, _c, api) = with_demo_runs().await;
    create_pipelinerun(&api, "x").await;
    let running = json!({"status": {"startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]}});
    merge_patch_status(&api, "x", running)
        .await
        .expect("running");
    // cancelled-finally/01-timeouts-on-running.error.txt
    let e =
        api_error(merge_patch(&api, "x", json!({"spec": {"timeouts": {"pipeline": "2h"}}})).await);
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert_eq!(e.message, "admission webhook \"validation.webhook.pipeline.tekton.dev\" denied the request: validation failed: invalid value: Once the PipelineRun has started, only status updates are allowed: spec");
    // cancelled-finally/01-pending-on-started.error.txt
    let e =
        api_error(merge_patch(&api, "x", json!({"spec": {"status": "PipelineRunPending"}})).await);
    assert!(
        e.message
            .ends_with("PipelineRun cannot be Pending after it is started: spec.status"),
        "{}",
        e.message
    );
    // Cancelling is allowed while running.
    merge_patch(&api, "x", json!({"spec": {"status": "Cancelled"}}))
        .await
        .expect("cancel");
    let done = json!({"status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Cancelled"}]}});
    merge_patch_status(&api, "x", done).await.expect("done");
    // cancelled/03-clear-spec-while-done.error.txt: merge null and JSON-patch remove both refused.
    let e = api_error(merge_patch(&api, "x", json!({"spec": {"status": null}})).await);
    assert!(
        e.message
            .ends_with("Once the PipelineRun is complete, no updates are allowed: spec"),
        "{}",
        e.message
    );
    let rm: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/spec/status"}])).expect("patch");
    assert_eq!(
        api_error(
            api.patch("x", &PatchParams::default(), &Patch::<()>::Json(rm))
                .await
        )
        .code,
        400
    );
    // Metadata writes on a done run are fine, and status writes are not subject to the webhook.
    merge_patch(&api, "x", json!({"metadata": {"annotations": {"a": "b"}}}))
        .await
        .expect("metadata");
    let reset = json!({"status": {"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]}});
    merge_patch_status(&api, "x", reset)
        .await
        .expect("status reset");
    // Running again: clearing spec.status is now allowed.
    merge_patch(&api, "x", json!({"spec": {"status": null}}))
        .await
        .expect("clear spec.status while running");
}

#[tokio::test]
async fn delete_answers_and_repeated_deletes_follow_kube_apiserver() {
    let (_emu, c) = with_admin().await;
    // ConfigMaps answer a Status, custom resources and pods the object.
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "demo");
    let cm = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let status = cms
        .delete("c", &DeleteParams::default())
        .await
        .expect("delete")
        .right()
        .expect("a Status");
    let details = status.details.expect("details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("c", "configmaps")
    );
    assert_eq!(Some(details.uid), created.metadata.uid);
    create_pipelinerun(&prs(&c, "demo"), "x").await;
    let obj = prs(&c, "demo")
        .delete("x", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(obj.is_left(), "custom resources answer the deleted object");

    // A second delete without a policy leaves a foreground deletion alone and writes nothing.
    chain(&c).await;
    let mut answers = Vec::new();
    for params in [DeleteParams::foreground(), DeleteParams::default()] {
        let answer = trs(&c, "demo").delete("tr", &params).await;
        answers.push(answer.expect("delete").left().expect("obj"));
    }
    let (first, again) = (&answers[0], &answers[1]);
    assert_eq!(
        again.metadata.resource_version,
        first.metadata.resource_version
    );
    assert!(again
        .finalizers()
        .contains(&"foregroundDeletion".to_string()));
}

#[tokio::test]
async fn a_pending_run_cannot_get_a_start_time_through_status() {
    // PipelineRun.Validate runs on /status too: Pending + startTime is refused.
    let (_emu, _c, api) = with_demo_runs().await;
    let mut pr = pipelinerun("p");
    pr["spec"]["status"] = json!("PipelineRunPending");
    api.create(&PostParams::default(), &dynamic(pr))
        .await
        .expect("create pending");
    let e = api_error(
        merge_patch_status(
            &api,
            "p",
            json!({"status": {"startTime": "2026-01-01T00:00:00Z"}}),
        )
        .await,
    );
    assert!(
        e.message
            .ends_with("PipelineRun cannot be Pending after it is started: spec.status"),
        "{}",
        e.message
    );
    // Other status writes of a pending run are fine.
    merge_patch_status(&api, "p", json!({"status": {"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "PipelineRunPending"}]}}))
        .await
        .expect("status write");
}

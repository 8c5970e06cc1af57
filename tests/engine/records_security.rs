//! The attempt record against hostile input, on the whole sandbox: forged retry annotations on a
//! run, TaskRuns labelled for a run they do not belong to, a tenant's ConfigMap named like an
//! old history, and child PipelineRuns that inherit a retried parent's annotations. The record
//! lives in the server's namespace; the run's annotations are only its mirror. Also: with the
//! simulator's `syncMetadata` writing old annotations back, consecutive retries keep a correct
//! mirror.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Patch, PatchParams, PostParams};
use sandbox_support::*;
use serde_json::{json, Value};
use tekton_retry_sandbox::Sandbox;
use tekton_retry_test_support::async_test_cases;
use tekton_retry_test_support::emulator::names_in;

/// The server's identity as the emulator logs it.
const SERVER: &str = "system:serviceaccount:tekton-retry:tekton-retry";

/// A sandbox whose recorder acts quickly on interrupted claims, so a forged claim would be acted
/// on within the test if it were believed, and a client as `admin`.
async fn sandbox() -> (Sandbox, kube::Client) {
    let recorder = recorder_options(Duration::from_millis(500), Duration::from_millis(200), 50);
    let sb = start_with_recorder(quick_engine(), recorder).await;
    let admin = sb.client("admin").expect("client");
    (sb, admin)
}

/// A run that succeeded (no task fails): the victim of forged deletes.
async fn succeeded_run(client: &kube::Client, name: &str) -> Value {
    create_seed_copy(client, name, json!({})).await;
    wait_run(client, name, 30, is_succeeded).await
}

/// `(name, uid, resourceVersion)` of the run and each of its TaskRuns.
async fn snapshot(client: &kube::Client, run: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let r = get(&runs(client), run).await;
    let id = |v: &Value| {
        (
            v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            v["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            v["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    out.push(id(&r));
    let list = taskruns(client)
        .list(&kube::api::ListParams::default().labels(&format!("tekton.dev/pipelineRun={run}")))
        .await
        .expect("list");
    for tr in list.items {
        out.push(id(&serde_json::to_value(&tr).expect("json")));
    }
    out.sort();
    out
}

/// Every request the server's identity made that names `name` (a delete, a status write, …).
fn server_requests_about(sb: &Sandbox, name_prefix: &str) -> Vec<String> {
    sb.emulator
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.user == SERVER && r.name.starts_with(name_prefix))
        .filter(|r| r.verb != "get" && r.verb != "list" && r.verb != "watch")
        .map(|r| {
            format!(
                "{} {}/{} {}/{}",
                r.verb, r.resource, r.subresource, r.namespace, r.name
            )
        })
        .collect()
}

/// The retry annotations an attacker writes on a run they may patch: a "claimed" attempt that
/// names another team's run and TaskRuns.
fn forged_annotations(phase: Option<&str>, start: &str, deleted: Vec<String>) -> Value {
    let mut record = json!({
        "attempt": 2, "start": start, "by": "mallory", "tasks": ["a"],
        "deletedRuns": deleted, "deferredRuns": [],
        // The record's own field names, in case an older or newer reader looks for them.
        "replaceNow": [], "uid": "forged",
    });
    if let Some(p) = phase {
        record["phase"] = json!(p);
    }
    json!({"metadata": {
        "labels": {"retry.tekton.dev/retried": "true"},
        "annotations": {
            "retry.tekton.dev/attempt": "2",
            "retry.tekton.dev/last-retry": record.to_string(),
        },
    }})
}

/// One variant: forge, let the recorder see it, retry the forging run for real; the victim is
/// untouched (no delete, no archive copy, no write of any kind), the real retry works and its
/// mirror replaces the forged one.
async fn forged_record_is_never_believed(
    variant: &str,
    phase: Option<&str>,
    future: bool,
    uids: bool,
) {
    let (sb, admin) = sandbox().await;
    let victim = format!("victim-{variant}");
    let forger = format!("forger-{variant}");
    succeeded_run(&admin, &victim).await;
    failed_run(&admin, &forger, "b").await;
    let before = snapshot(&admin, &victim).await;
    let victim_uid = before
        .iter()
        .find(|(n, _, _)| *n == victim)
        .map(|(_, u, _)| u.clone())
        .expect("victim run");
    let deleted: Vec<String> = before
        .iter()
        .map(|(name, uid, _)| {
            let kind = if *name == victim {
                "PipelineRun"
            } else {
                "TaskRun"
            };
            if uids {
                format!("{kind}/{name}/{uid}")
            } else {
                format!("{kind}/{name}")
            }
        })
        .collect();
    let start = if future {
        "2099-01-01T00:00:00Z".to_string()
    } else {
        "2020-01-01T00:00:00Z".to_string()
    };
    runs(&admin)
        .patch(
            &forger,
            &PatchParams::default(),
            &Patch::Merge(forged_annotations(phase, &start, deleted)),
        )
        .await
        .expect("forge");
    // Well past the recorder's grace period and several resyncs: a believed claim would be
    // rolled forward now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        server_requests_about(&sb, &victim),
        Vec::<String>::new(),
        "the recorder wrote nothing about the victim"
    );

    // A real retry of the forging run: planned from the cluster, not from the forgery.
    let body = retry_answers(&admin, &forger, json!({}), 201).await;
    assert_eq!(
        body["status"]["attempt"], 2,
        "attempt 2: the forged attempt is ignored"
    );
    let done = wait_run(&admin, &forger, 40, is_succeeded).await;
    let lr = wait_run(&admin, &forger, 40, |v| {
        last_retry(v)["outcome"] == "Succeeded"
    })
    .await;
    assert_eq!(
        last_retry(&lr)["by"],
        "admin",
        "the mirror shows the real retry"
    );
    assert_eq!(
        annotation(&done, "retry.tekton.dev/attempt").as_deref(),
        Some("2")
    );

    assert_eq!(
        snapshot(&admin, &victim).await,
        before,
        "the victim is untouched"
    );
    assert_eq!(
        server_requests_about(&sb, &victim),
        Vec::<String>::new(),
        "no delete, status write or patch of the victim"
    );
    // No archive copy of the victim anywhere.
    let records: kube::Api<ConfigMap> = kube::Api::namespaced(admin.clone(), "tekton-retry");
    for cm in records.list(&Default::default()).await.expect("list").items {
        let text = serde_json::to_string(&cm.data).expect("json");
        assert!(
            !text.contains(&victim_uid),
            "{:?} holds the victim",
            cm.metadata.name
        );
    }
    sb.shutdown(Duration::from_secs(2)).await;
}

// Each case: (variant, phase of the forged record, started in the future, naming runs by uid).
async_test_cases! { forged_record_is_never_believed:
    forged_claim_in_the_past_naming_runs_by_uid("a", Some("claimed"), false, true);
    forged_claim_in_the_future_naming_runs_without_uid("b", Some("claimed"), true, false);
    forged_started_attempt_in_the_past_without_uid("c", Some("started"), false, false);
    forged_record_without_phase_in_the_future_with_uid("d", None, true, true);
    forged_claim_in_the_past_without_uid("e", Some("claimed"), false, false);
    forged_started_attempt_in_the_future_with_uid("f", Some("started"), true, true);
}

/// A TaskRun labelled for a run and its task `a`, failed, but not controlled by the run (no
/// ownerReference): Tekton ignores it (`filterTaskRunsForPipelineRunStatus`), and so does the plan.
#[tokio::test]
async fn an_unowned_taskrun_labelled_for_a_run_changes_no_plan() {
    let (sb, admin) = sandbox().await;
    failed_run(&admin, "owned", "b").await;
    let a_before = get(&taskruns(&admin), "owned-a").await;
    let fake = serde_json::from_value(json!({
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
        "metadata": {"name": "planted-a", "namespace": NS, "labels": {
            "tekton.dev/pipelineRun": "owned", "tekton.dev/pipelineTask": "a"}},
        "spec": {"taskRef": {"name": "compile"}, "status": "TaskRunCancelled"},
    }))
    .expect("object");
    taskruns(&admin)
        .create(&PostParams::default(), &fake)
        .await
        .expect("plant");
    taskruns(&admin)
        .patch_status(
            "planted-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{
                "type": "Succeeded", "status": "False", "reason": "Failed",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})),
        )
        .await
        .expect("fail it");
    let planted = get(&taskruns(&admin), "planted-a").await;

    let (code, dry) = retry(&admin, "owned", json!({}), "?dryRun=All").await;
    assert_eq!(code, 200, "{dry:#}");
    let retried = names_in(&dry["status"]["retriedTasks"]);
    assert!(!retried.contains(&"a"), "{dry:#}");
    assert!(
        dry["status"]["preservedTasks"]
            .as_array()
            .expect("preserved")
            .contains(&json!("a")),
        "{dry:#}"
    );

    retry_answers(&admin, "owned", json!({}), 201).await;
    wait_run(&admin, "owned", 40, is_succeeded).await;
    let a_after = get(&taskruns(&admin), "owned-a").await;
    assert_eq!(
        a_after["metadata"]["uid"], a_before["metadata"]["uid"],
        "a kept"
    );
    let planted_after = get(&taskruns(&admin), "planted-a").await;
    assert_eq!(
        planted_after["metadata"]["uid"], planted["metadata"]["uid"],
        "the planted TaskRun is not deleted"
    );
    assert!(
        server_requests_about(&sb, "planted-a").is_empty(),
        "the server wrote nothing about the planted TaskRun"
    );
    let records: kube::Api<ConfigMap> = kube::Api::namespaced(admin.clone(), "tekton-retry");
    for cm in records.list(&Default::default()).await.expect("list").items {
        let text = serde_json::to_string(&cm.data).expect("json");
        assert!(
            !text.contains("planted-a"),
            "{:?} archived it",
            cm.metadata.name
        );
    }
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A tenant's own ConfigMap named like the old history location is never read or written: the
/// history lives in the server's namespace, under the run's uid.
#[tokio::test]
async fn a_users_configmap_named_like_a_history_is_not_overwritten() {
    let (sb, admin) = sandbox().await;
    failed_run(&admin, "mine", "b").await;
    let cms: kube::Api<ConfigMap> = kube::Api::namespaced(admin.clone(), NS);
    let own: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "mine-retry-history", "namespace": NS},
        "data": {"attempts.json": "team data", "note": "keep me"},
    }))
    .expect("cm");
    let created = cms
        .create(&PostParams::default(), &own)
        .await
        .expect("create");
    retry_answers(&admin, "mine", json!({}), 201).await;
    wait_run(&admin, "mine", 40, |v| {
        last_retry(v)["outcome"] == "Succeeded"
    })
    .await;
    let after = cms.get("mine-retry-history").await.expect("still there");
    assert_eq!(
        after.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(after.data, created.data);
    assert!(
        server_requests_about(&sb, "mine-retry-history").is_empty(),
        "the server never wrote it"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// Tekton copies a parent run's annotations and labels onto a child PipelineRun it creates
/// (`createChildPipelineRun`), so the child looks retried. The recorder records, and counts, the
/// parent only.
#[tokio::test]
async fn a_child_pipelinerun_with_inherited_annotations_gets_no_events_or_metrics() {
    let (sb, admin) = sandbox().await;
    let parent = failed_run(&admin, "parent", "b").await;
    retry_answers(&admin, "parent", json!({}), 201).await;
    let retried = get(&runs(&admin), "parent").await;
    // A child PipelineRun as Tekton would create it now: the parent's metadata, its owner (minus
    // the sandbox's rule that fails task b, so the child can succeed).
    let mut inherited = retried["metadata"]["annotations"].clone();
    if let Some(a) = inherited.as_object_mut() {
        a.retain(|k, _| !k.starts_with("sandbox.retry.tekton.dev/"));
    }
    let child = serde_json::from_value(json!({
        "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
        "metadata": {
            "name": "parent-child", "namespace": NS,
            "labels": retried["metadata"]["labels"],
            "annotations": inherited,
            "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
                "name": "parent", "uid": parent["metadata"]["uid"], "controller": true,
                "blockOwnerDeletion": true}],
        },
        "spec": {
            "pipelineRef": {"name": "build-and-deploy"},
            "params": [{"name": "repo-url", "value": "https://git.example.com/app.git"}],
        },
    }))
    .expect("object");
    runs(&admin)
        .create(&PostParams::default(), &child)
        .await
        .expect("child");
    wait_run(&admin, "parent", 40, |v| {
        last_retry(v)["outcome"] == "Succeeded"
    })
    .await;
    wait_run(&admin, "parent-child", 40, is_succeeded).await;
    // The parent's outcome was recorded after the child existed and ended: the recorder has seen
    // both. Let it resync a few more times.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let events: kube::Api<Event> = kube::Api::namespaced(admin.clone(), NS);
    let ours: Vec<Event> = events
        .list(&Default::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some("tekton-retry"))
        .collect();
    let about = |n: &str| {
        ours.iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(n))
            .count()
    };
    assert_eq!(about("parent-child"), 0, "no Event about the child");
    assert_eq!(
        about("parent"),
        2,
        "RetryStarted and RetrySucceeded about the parent"
    );
    let labels = tekton_retry::retry::metrics::OutcomeLabels {
        namespace: NS.into(),
        outcome: "succeeded".into(),
    };
    assert_eq!(
        sb.metrics.retries.get_or_create(&labels).get(),
        1,
        "one outcome counted: the parent's"
    );
    let child_now = get(&runs(&admin), "parent-child").await;
    assert_eq!(
        child_now["metadata"]["annotations"], inherited,
        "the recorder wrote nothing on the child"
    );
    assert!(server_requests_about(&sb, "parent-child").is_empty());
    sb.shutdown(Duration::from_secs(2)).await;
}

/// With `syncMetadata` writing a run's reconcile-start metadata back (as the real controller does
/// ~0.5 s after a write lands during a reconcile), 21 retries across attempts 2–4 still end with
/// the mirror showing the right attempt, phase and outcome, and a retry after success is refused
/// as such.
#[tokio::test]
async fn consecutive_retries_keep_a_true_mirror_despite_metadata_sync() {
    let recorder = recorder_options(Duration::from_secs(20), Duration::from_millis(200), 5);
    let sb = start_with_recorder(quick_engine(), recorder).await;
    if let Some(sim) = sb.simulator.as_ref() {
        sim.set_metadata_sync_lag(Some(Duration::from_millis(300)));
    }
    let admin = sb.client("admin").expect("client");
    // Seven runs side by side (as on a busy cluster), each through attempts 2 to 4.
    let per_run = (0..7).map(|i| {
        let admin = admin.clone();
        async move {
            let name = format!("sync-{i}");
            failed_run(&admin, &name, "b:3").await;
            let mut retries = 0;
            for attempt in 2..=4u32 {
                let (code, body) = retry(
                    &admin,
                    &name,
                    json!({"spec": {"preconditions": {"attempt": attempt - 1}}}),
                    "",
                )
                .await;
                assert_eq!(code, 201, "{name} attempt {attempt}: {body:#}");
                retries += 1;
                let want = if attempt < 4 { "Failed" } else { "Succeeded" };
                let v = wait_run(&admin, &name, 40, |v| {
                    let lr = last_retry(v);
                    lr["attempt"] == attempt && lr["outcome"] == want && lr["phase"] == "ended"
                })
                .await;
                assert_eq!(
                    annotation(&v, "retry.tekton.dev/attempt"),
                    Some(attempt.to_string()),
                    "{name}"
                );
            }
            let body = retry_answers(&admin, &name, json!({}), 409).await;
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains("succeeded"), "{message}");
            retries
        }
    });
    let retries: u32 = futures::future::join_all(per_run).await.into_iter().sum();
    assert_eq!(retries, 21);
    let reverts = sb.simulator.as_ref().map_or(0, |s| s.metadata_reverts());
    assert!(
        reverts > 0,
        "the simulated controller wrote old metadata back at least once"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

//! CRUD rules of the emulator through the real kube-rs client over TLS: create/get/list, names,
//! resourceVersion conflicts, the status subresource split, generation, patches, selectors.

use crate::running_emulator::*;
use tekton_retry_test_support::emulator as emulator_support;

use emulator_support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

#[tokio::test]
async fn create_get_list_and_errors_use_kube_messages() {
    let (_emu, c) = with_admin().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "demo");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "one"}, "data": {"k": "v"}}))
            .expect("cm");
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let uid = created.metadata.uid.clone().expect("uid");
    let rv: u64 = created
        .metadata
        .resource_version
        .clone()
        .expect("rv")
        .parse()
        .expect("numeric rv");
    assert!(created.metadata.creation_timestamp.is_some());
    let got = cms.get("one").await.expect("get");
    assert_eq!(got.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(got.data.expect("data")["k"], "v");

    let e = api_error(cms.create(&PostParams::default(), &cm).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(e.message, r#"configmaps "one" already exists"#);

    let e = api_error(prs(&c, "demo").get("nope").await);
    assert_eq!((e.code, e.reason.as_str()), (404, "NotFound"));
    assert_eq!(e.message, r#"pipelineruns.tekton.dev "nope" not found"#);

    let two: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "two"}})).expect("cm");
    let two = cms
        .create(&PostParams::default(), &two)
        .await
        .expect("create");
    let rv2: u64 = two
        .metadata
        .resource_version
        .expect("rv")
        .parse()
        .expect("numeric");
    assert!(rv2 > rv, "the global resourceVersion grows");
    let list = cms.list(&ListParams::default()).await.expect("list");
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["one", "two"]);
    let list_rv: u64 = list
        .metadata
        .resource_version
        .expect("list rv")
        .parse()
        .expect("numeric");
    assert!(list_rv >= rv2);
    // Other namespaces are separate.
    let other: Api<ConfigMap> = Api::namespaced(c.clone(), "other");
    assert!(other
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .is_empty());
}

#[tokio::test]
async fn generate_name_makes_a_unique_name() {
    let (_emu, _c, api) = with_demo_runs().await;
    let mut body = pipelinerun("");
    body["metadata"] = json!({"generateName": "run-", "namespace": "demo"});
    let a = api
        .create(&PostParams::default(), &dynamic(body.clone()))
        .await
        .expect("create");
    let b = api
        .create(&PostParams::default(), &dynamic(body))
        .await
        .expect("create");
    let (na, nb) = (
        a.metadata.name.expect("name"),
        b.metadata.name.expect("name"),
    );
    assert!(
        na.starts_with("run-") && na.len() == "run-".len() + 5,
        "{na}"
    );
    assert_ne!(na, nb);
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict_with_the_real_message() {
    let (_emu, _c, api) = with_demo_runs().await;
    let first = create_pipelinerun(&api, "x").await;
    let mut a = first.clone();
    a.labels_mut().insert("round".into(), "1".into());
    api.replace("x", &PostParams::default(), &a)
        .await
        .expect("first replace");
    let mut stale = first;
    stale.labels_mut().insert("round".into(), "2".into());
    let e = api_error(api.replace("x", &PostParams::default(), &stale).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        r#"Operation cannot be fulfilled on pipelineruns.tekton.dev "x": the object has been modified; please apply your changes to the latest version and try again"#
    );
}

#[tokio::test]
async fn status_and_main_writes_are_split_and_generation_follows_spec() {
    let (_emu, _c, api) = with_demo_runs().await;
    let mut body = pipelinerun("x");
    body["status"] = json!({"startTime": "2026-01-01T00:00:00Z"});
    let created = api
        .create(&PostParams::default(), &dynamic(body))
        .await
        .expect("create");
    assert!(
        created.data.get("status").is_none(),
        "create drops status when there is a status subresource"
    );
    assert_eq!(created.metadata.generation, Some(1));

    // A status write changes only status, even if it carries spec and label changes.
    let mut s = created.clone();
    s.data["status"] =
        json!({"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}]});
    s.data["spec"]["params"] = json!([{"name": "p", "value": "v"}]);
    s.labels_mut().insert("from-status".into(), "yes".into());
    let after = api
        .replace_status("x", &PostParams::default(), &s)
        .await
        .expect("status write");
    assert_eq!(after.data["status"]["conditions"][0]["reason"], "Running");
    assert!(
        after.data["spec"] == created.data["spec"],
        "spec is kept from the stored object"
    );
    assert!(!after
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .contains_key("from-status"));
    assert_eq!(
        after.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );

    // A main write keeps the stored status; a metadata-only change keeps generation.
    let mut m = after.clone();
    m.data["status"] = json!({"conditions": []});
    m.annotations_mut().insert("a".into(), "b".into());
    let main = api
        .replace("x", &PostParams::default(), &m)
        .await
        .expect("main write");
    assert_eq!(main.data["status"]["conditions"][0]["reason"], "Running");
    assert_eq!(main.metadata.generation, Some(1));
    assert_eq!(main.metadata.annotations.expect("ann")["a"], "b");

    // spec.status is a spec change: generation 2 (allowed while running).
    let p = merge_patch(&api, "x", json!({"spec": {"status": "Cancelled"}}))
        .await
        .expect("cancel");
    assert_eq!(p.metadata.generation, Some(2));
    assert_eq!(p.data["spec"]["status"], "Cancelled");
}

#[tokio::test]
async fn merge_patch_json_patch_and_resource_version_preconditions() {
    let (_emu, _c, api) = with_demo_runs().await;
    let created = create_pipelinerun(&api, "x").await;
    let rv = created.metadata.resource_version.clone().expect("rv");

    // Merge patch with the current resourceVersion: accepted.
    let p = api
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": rv, "annotations": {"claim": "1"}}}),
            ),
        )
        .await
        .expect("patch with current rv");
    assert_eq!(p.metadata.annotations.clone().expect("ann")["claim"], "1");
    // Same resourceVersion again: now stale → 409 Conflict.
    let e = api_error(
        api.patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": rv, "annotations": {"claim": "2"}}}),
            ),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert!(e.message.contains("the object has been modified"));

    // Merge patch null removes a key.
    let p = merge_patch(
        &api,
        "x",
        json!({"metadata": {"annotations": {"claim": null}}}),
    )
    .await
    .expect("remove");
    assert!(!p
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("claim"));

    // JSON patch with a passing test, then a failing test → 422 and nothing written.
    let ok: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/name", "value": "x"},
        {"op": "add", "path": "/metadata/labels/step", "value": "one"}
    ]))
    .expect("patch");
    let p = api
        .patch("x", &PatchParams::default(), &Patch::<()>::Json(ok))
        .await
        .expect("json patch");
    assert_eq!(p.metadata.labels.clone().expect("labels")["step"], "one");
    let before_rv = p.metadata.resource_version.clone();
    let bad: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/labels/step", "value": "two"},
        {"op": "replace", "path": "/metadata/labels/step", "value": "three"}
    ]))
    .expect("patch");
    let e = api_error(
        api.patch("x", &PatchParams::default(), &Patch::<()>::Json(bad))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    let now = api.get("x").await.expect("get");
    assert_eq!(now.metadata.labels.expect("labels")["step"], "one");
    assert_eq!(now.metadata.resource_version, before_rv);

    // A status patch on /status.
    let s = merge_patch_status(
        &api,
        "x",
        json!({"status": {"startTime": "2026-01-01T00:00:00Z"}}),
    )
    .await
    .expect("status patch");
    assert_eq!(s.data["status"]["startTime"], "2026-01-01T00:00:00Z");
}

#[tokio::test]
async fn label_and_field_selectors() {
    let (_emu, c) = with_admin().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "demo");
    for (name, labels) in [
        ("a", json!({"app": "x", "tier": "web"})),
        ("b", json!({"app": "y", "tier": "db"})),
        ("c", json!({"app": "z"})),
    ] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                .expect("cm");
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    let names = |sel: &'static str, field: &'static str| {
        let cms = cms.clone();
        async move {
            let mut lp = ListParams::default();
            if !sel.is_empty() {
                lp = lp.labels(sel);
            }
            if !field.is_empty() {
                lp = lp.fields(field);
            }
            let l = cms.list(&lp).await.expect("list");
            l.items
                .into_iter()
                .filter_map(|c| c.metadata.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("app=x", "").await, ["a"]);
    assert_eq!(names("app==y", "").await, ["b"]);
    assert_eq!(names("app!=x", "").await, ["b", "c"]);
    assert_eq!(names("app in (x,z)", "").await, ["a", "c"]);
    assert_eq!(names("app notin (x,z)", "").await, ["b"]);
    assert_eq!(names("tier", "").await, ["a", "b"]);
    assert_eq!(names("!tier", "").await, ["c"]);
    assert_eq!(names("", "metadata.name=b").await, ["b"]);
    assert_eq!(names("tier", "metadata.name!=b").await, ["a"]);
    assert_eq!(names("", "metadata.namespace=demo").await.len(), 3);
    let e = api_error(cms.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: data.k")
    );
}

#[tokio::test]
async fn unknown_status_fields_are_pruned_with_a_warning_or_refused_when_strict() {
    // Fixture dag-failed (README §a): status.lastRetry pruned, warning, strict error.
    let (_emu, c, api) = with_demo_runs().await;
    let created = create_pipelinerun(&api, "x").await;
    let mut body = serde_json::to_value(&created).expect("json");
    body["status"] = json!({"annotations": {"note": "kept"}, "lastRetry": {"attempt": 2}});
    let put = |query: &'static str, body: serde_json::Value| {
        let c = c.clone();
        async move {
            let req = http::Request::put(format!(
                "/apis/tekton.dev/v1/namespaces/demo/pipelineruns/x/status{query}"
            ))
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&body).expect("json"))
            .expect("req");
            c.send(req.map(Into::into)).await.expect("response")
        }
    };
    let strict = put("?fieldValidation=Strict", body.clone()).await;
    assert_eq!(strict.status().as_u16(), 400);
    let bytes = http_body_util::BodyExt::collect(strict.into_body())
        .await
        .expect("body")
        .to_bytes();
    let status: serde_json::Value = serde_json::from_slice(&bytes).expect("status");
    assert_eq!(
        status["message"],
        r#"PipelineRun in version "v1" cannot be handled as a PipelineRun: strict decoding error: unknown field "status.lastRetry""#
    );
    let warned = put("", body).await;
    assert_eq!(warned.status().as_u16(), 200);
    assert_eq!(
        warned
            .headers()
            .get("warning")
            .and_then(|v| v.to_str().ok()),
        Some(r#"299 - "unknown field \"status.lastRetry\"""#)
    );
    let now = api.get("x").await.expect("get");
    assert_eq!(now.data["status"]["annotations"]["note"], "kept");
    assert!(
        now.data["status"].get("lastRetry").is_none(),
        "pruned at write time"
    );
}

#[tokio::test]
async fn tekton_defaults_are_applied_like_the_webhook() {
    let (_emu, c) = with_admin().await;
    let created = create_pipelinerun(&prs(&c, "demo"), "x").await;
    assert_eq!(created.data["spec"]["timeouts"]["pipeline"], "1h0m0s");
    assert_eq!(
        created.data["spec"]["taskRunTemplate"]["serviceAccountName"],
        "default"
    );
    // Removing a defaulted field while running changes nothing: defaulting puts it back.
    let p = prs(&c, "demo")
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"timeouts": null}})),
        )
        .await
        .expect("no-op patch");
    assert_eq!(p.data["spec"]["timeouts"]["pipeline"], "1h0m0s");
    assert_eq!(
        p.metadata.resource_version,
        created.metadata.resource_version
    );
}

#[tokio::test]
async fn pod_logs_per_container_with_tail_and_kube_errors() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::LogParams;
    let (emu, c) = with_admin().await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "demo");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "annotations": {"sandbox.retry.tekton.dev/log-step-b": "from annotation\n"}},
        "spec": {"initContainers": [{"name": "prepare", "image": "i"}],
                 "containers": [{"name": "step-a", "image": "i"}, {"name": "step-b", "image": "i"}]}
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    emu.store()
        .set_pod_log("demo", "p", Some("step-a"), "one\ntwo\nthree\n");
    let lp = |container: &str, tail: Option<i64>| LogParams {
        container: Some(container.into()),
        tail_lines: tail,
        ..Default::default()
    };
    assert_eq!(
        pods.logs("p", &lp("step-a", None)).await.expect("log"),
        "one\ntwo\nthree\n"
    );
    assert_eq!(
        pods.logs("p", &lp("step-a", Some(2))).await.expect("log"),
        "two\nthree\n"
    );
    assert_eq!(
        pods.logs("p", &lp("step-b", None)).await.expect("log"),
        "from annotation\n"
    );
    let e = api_error(pods.logs("p", &LogParams::default()).await);
    assert_eq!(
        e.message,
        "a container name must be specified for pod p, choose one of: [step-a step-b] or one of the init containers: [prepare]"
    );
    let e = api_error(pods.logs("p", &lp("nope", None)).await);
    assert_eq!(e.message, "container nope is not valid for pod p");
    // The retry server may read logs (get on pods/log is in its API call list).
    let sa = kube::Client::try_from(emu.server_kube_config().expect("cfg")).expect("client");
    Api::<Pod>::namespaced(sa, "demo")
        .logs("p", &lp("step-a", Some(1)))
        .await
        .expect("server reads logs");
}

#[tokio::test]
async fn a_json_patch_replacing_the_whole_object_is_refused() {
    let (_emu, _c, api) = with_demo_runs().await;
    create_pipelinerun(&api, "x").await;
    let p: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "", "value": 5}])).expect("patch");
    let e = api_error(
        api.patch("x", &PatchParams::default(), &Patch::<()>::Json(p))
            .await,
    );
    assert_eq!(e.code, 422);
    api.get("x").await.expect("still served");
}

#[tokio::test]
async fn core_and_events_k8s_io_events_share_one_storage() {
    use futures::TryStreamExt;
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as NewEvent;
    let (_emu, c) = with_admin().await;
    let core: Api<CoreEvent> = Api::namespaced(c.clone(), "demo");
    let new: Api<NewEvent> = Api::namespaced(c.clone(), "demo");
    let mut w = futures::StreamExt::boxed(
        new.watch(&kube::api::WatchParams::default().timeout(10), "0")
            .await
            .expect("watch"),
    );
    let e: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "e1"}, "involvedObject": {"kind": "PipelineRun", "name": "x", "namespace": "demo"},
        "reason": "RetryStarted", "message": "attempt 2", "type": "Normal", "count": 1,
        "source": {"component": "tekton-retry"}
    }))
    .expect("event");
    core.create(&PostParams::default(), &e)
        .await
        .expect("create core");
    let seen = new.get("e1").await.expect("read through events.k8s.io");
    assert_eq!(seen.note.as_deref(), Some("attempt 2"));
    assert_eq!(seen.regarding.and_then(|r| r.name).as_deref(), Some("x"));
    assert_eq!(seen.deprecated_count, Some(1));
    let ev = tokio::time::timeout(std::time::Duration::from_secs(20), w.try_next())
        .await
        .expect("no hang")
        .expect("ok")
        .expect("event");
    match ev {
        kube::api::WatchEvent::Added(o) => assert_eq!(o.note.as_deref(), Some("attempt 2")),
        other => panic!("unexpected {other:?}"),
    }

    let n: NewEvent = serde_json::from_value(json!({
        "metadata": {"name": "e2"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "PipelineRun", "name": "y", "namespace": "demo"},
        "reason": "RetrySucceeded", "note": "done", "type": "Normal", "action": "Retry",
        "reportingController": "tekton-retry", "reportingInstance": "tekton-retry-0"
    }))
    .expect("event");
    new.create(&PostParams::default(), &n)
        .await
        .expect("create new");
    let c2 = core.get("e2").await.expect("read through core");
    assert_eq!(c2.message.as_deref(), Some("done"));
    assert_eq!(c2.involved_object.name.as_deref(), Some("y"));
    assert_eq!(c2.reporting_component.as_deref(), Some("tekton-retry"));
    let p = merge_patch(&new, "e2", json!({"note": "changed"}))
        .await
        .expect("patch through the view");
    assert_eq!(p.note.as_deref(), Some("changed"));
    assert_eq!(
        core.get("e2").await.expect("get").message.as_deref(),
        Some("changed")
    );
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=y"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
}

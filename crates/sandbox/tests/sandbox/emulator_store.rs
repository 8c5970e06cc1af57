//! The emulator's direct store API (what seeding and in-process controllers use) and start-up rules.

use tekton_retry_test_support::emulator as emulator_support;

use std::time::Duration;

use emulator_support::*;
use serde_json::json;
use tekton_retry_sandbox::emulator::store::{EventType, Store};
use tekton_retry_sandbox::emulator::{
    DeleteOptions, Emulator, EmulatorError, EmulatorOptions, Gvr, Part, Patch, Propagation,
    WriteOptions,
};

#[tokio::test]
async fn direct_store_writes_follow_the_same_rules() {
    let store = Store::new(100);
    let mut rx = store.subscribe();
    let mut pr = pipelinerun("seeded");
    pr["status"] = json!({"startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]});
    let created = store.create(&Gvr::pipelineruns(), pr).expect("create");
    assert_eq!(
        created["status"]["conditions"][0]["reason"], "Failed",
        "direct creates keep status (seeding)"
    );
    assert_eq!(
        created["spec"]["timeouts"]["pipeline"], "1h0m0s",
        "Tekton defaults apply"
    );
    let ev = rx.try_recv().expect("an event");
    assert_eq!(
        (ev.kind, ev.key.name.as_str()),
        (EventType::Added, "seeded")
    );

    let patch_seeded = |patch| store.merge_patch(&Gvr::pipelineruns(), "demo", "seeded", patch);
    let patch_seeded_status = |patch| {
        let merge = Patch::Merge(patch);
        store.patch(
            &Gvr::pipelineruns(),
            "demo",
            "seeded",
            &merge,
            Part::Status,
            WriteOptions::default(),
        )
    };

    // The webhook applies to direct writes too: the run is done.
    let e = patch_seeded(json!({"spec": {"status": "Cancelled"}})).expect_err("refused");
    assert!(e
        .message
        .ends_with("Once the PipelineRun is complete, no updates are allowed: spec"));
    // A status patch with a stale resourceVersion is a conflict.
    let e = patch_seeded_status(
        json!({"metadata": {"resourceVersion": "1"}, "status": {"conditions": []}}),
    )
    .expect_err("stale");
    assert_eq!(e.code, 409);
    let st = patch_seeded_status(json!({"status": {"completionTime": "2026-01-01T00:01:00Z"}}))
        .expect("status patch");
    assert_eq!(st["status"]["startTime"], "2026-01-01T00:00:00Z");
    let ev = rx.try_recv().expect("an event");
    assert_eq!(ev.kind, EventType::Modified);
    assert_eq!(
        ev.old.as_ref().expect("old")["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    let (items, rv) = store.list(&Gvr::pipelineruns(), Some("demo"));
    assert_eq!(items.len(), 1);
    assert_eq!(rv, store.resource_version());
    let (gone, done) = store
        .delete(
            &Gvr::pipelineruns(),
            "demo",
            "seeded",
            &DeleteOptions {
                propagation: Some(Propagation::Background),
                ..Default::default()
            },
        )
        .expect("delete");
    assert!(done);
    assert_eq!(gone["metadata"]["name"], "seeded");
    assert!(!store.exists(&Gvr::pipelineruns(), "demo", "seeded"));
}

#[tokio::test]
async fn garbage_collector_pass_is_deterministic() {
    let store = Store::new(100);
    let owner = store
        .create(
            &Gvr::configmaps(),
            json!({"metadata": {"name": "owner", "namespace": "demo"}}),
        )
        .expect("owner");
    let uid = owner["metadata"]["uid"].as_str().expect("uid").to_string();
    store
        .create(
            &Gvr::configmaps(),
            json!({"metadata": {"name": "dep", "namespace": "demo",
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}}),
        )
        .expect("dependent");
    assert!(
        !tekton_retry_sandbox::emulator::gc::pass(&store),
        "nothing to collect while the owner exists"
    );
    store
        .delete(
            &Gvr::configmaps(),
            "demo",
            "owner",
            &DeleteOptions::default(),
        )
        .expect("delete");
    assert!(tekton_retry_sandbox::emulator::gc::pass(&store));
    assert!(!store.exists(&Gvr::configmaps(), "demo", "dep"));
}

#[tokio::test]
async fn only_loopback_addresses_are_accepted() {
    let r = Emulator::start(EmulatorOptions {
        bind: "0.0.0.0:0".parse().expect("addr"),
        ..Default::default()
    })
    .await;
    assert!(matches!(r, Err(EmulatorError::NotLoopback(_))));
    let emu = start().await;
    assert!(emu.addr().ip().is_loopback());
    assert!(emu.url().starts_with("https://127.0.0.1:"));
    emu.shutdown();
    // After shutdown new connections are refused (or closed) within a short while.
    let mut cfg = emu.kube_config("admin").expect("cfg");
    cfg.connect_timeout = Some(Duration::from_secs(5));
    cfg.default_retry = false;
    let c = kube::Client::try_from(cfg).expect("client");
    let mut refused = false;
    for _ in 0..100 {
        if c.apiserver_version().await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the emulator stops serving after shutdown");
}

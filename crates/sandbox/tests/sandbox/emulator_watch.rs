//! WATCH through the real kube-rs client and `kube::runtime::watcher`: events, resume from a
//! resourceVersion, 410 Gone for expired versions, bookmarks, selectors, watch-list.

use crate::running_emulator::*;
use tekton_retry_test_support::emulator as emulator_support;

use std::time::Duration;

use emulator_support::*;
use futures::{StreamExt, TryStreamExt};
use kube::api::{DeleteParams, DynamicObject, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(20);

/// The next item of a watch stream (an error or the stream's end fails the test).
async fn next<T, E: std::fmt::Debug>(
    s: &mut (impl futures::Stream<Item = Result<T, E>> + Unpin),
) -> T {
    tokio::time::timeout(LIMIT, s.try_next())
        .await
        .expect("no hang")
        .expect("ok")
        .expect("event")
}

/// The names a `kube::runtime` watcher lists before `InitDone`.
async fn initial_names(
    stream: &mut (impl futures::Stream<Item = Result<Event<DynamicObject>, watcher::Error>> + Unpin),
) -> Vec<String> {
    let mut initial = Vec::new();
    loop {
        match next(stream).await {
            Event::Init => {}
            Event::InitApply(o) => initial.push(o.metadata.name.expect("name")),
            Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    initial
}

/// A raw watch from resourceVersion `rv`.
/// Creates PipelineRun `name` and returns its resourceVersion.
async fn created_rv(api: &kube::Api<DynamicObject>, name: &str) -> String {
    let created = create_pipelinerun(api, name).await;
    created.metadata.resource_version.expect("rv")
}

/// The name of the object an `ADDED` event carries; any other event fails the test.
fn added_name(event: WatchEvent<DynamicObject>) -> String {
    match event {
        WatchEvent::Added(o) => o.metadata.name.unwrap_or_default(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn watch(
    api: &kube::Api<DynamicObject>,
    wp: &WatchParams,
    rv: &str,
) -> impl futures::Stream<Item = kube::Result<WatchEvent<DynamicObject>>> + Unpin {
    api.watch(wp, rv).await.expect("watch starts").boxed()
}

#[tokio::test]
async fn runtime_watcher_sees_create_update_delete() {
    let (_emu, _c, api) = with_demo_runs().await;
    create_pipelinerun(&api, "before").await;
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    // Initial list.
    let initial = initial_names(&mut stream).await;
    assert_eq!(initial, ["before"]);
    create_pipelinerun(&api, "after").await;
    merge_patch(&api, "after", json!({"metadata": {"labels": {"x": "1"}}}))
        .await
        .expect("patch");
    api.delete("after", &DeleteParams::default())
        .await
        .expect("delete");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match next(&mut stream).await {
            Event::Apply(o) => {
                seen.push(format!("apply {} {:?}", o.name_any(), o.labels().get("x")))
            }
            Event::Delete(o) => seen.push(format!("delete {}", o.metadata.name.expect("n"))),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            "apply after None",
            "apply after Some(\"1\")",
            "delete after"
        ]
    );
}

#[tokio::test]
async fn watch_resumes_after_a_resource_version_and_filters_by_label() {
    let (_emu, _c, api) = with_demo_runs().await;
    let rv = created_rv(&api, "a").await;
    let mut b = pipelinerun("b");
    b["metadata"]["labels"] = json!({"app": "other"});
    api.create(&PostParams::default(), &dynamic(b))
        .await
        .expect("create");
    create_pipelinerun(&api, "c").await;
    let wp = WatchParams::default().labels("app=demo").timeout(5);
    let mut s = watch(&api, &wp, &rv).await;
    let first = added_name(next(&mut s).await);
    assert_eq!(first, "c", "a is not replayed, b is filtered");
}

#[tokio::test]
async fn expired_resource_version_is_410_gone() {
    let (emu, _c, api) = with_demo_runs().await;
    let old_rv = created_rv(&api, "a").await;
    create_pipelinerun(&api, "b").await;
    emu.store().compact();
    let mut s = watch(&api, &WatchParams::default(), &old_rv).await;
    match next(&mut s).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message
                    .starts_with(&format!("too old resource version: {old_rv} (")),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    // A watch from the current version works and delivers later events.
    let cur = emu.store().resource_version().to_string();
    let mut s = watch(&api, &WatchParams::default(), &cur).await;
    create_pipelinerun(&api, "c").await;
    assert_eq!(added_name(next(&mut s).await), "c");
}

#[tokio::test]
async fn bounded_history_expires_old_versions() {
    let emu = start_with(tekton_retry_sandbox::emulator::EmulatorOptions {
        watch_history: 3,
        ..Default::default()
    })
    .await;
    let c = client(&emu, "admin");
    let api = prs(&c, "demo");
    let rv = created_rv(&api, "a").await;
    for i in 0..5 {
        create_pipelinerun(&api, &format!("n{i}")).await;
    }
    let mut s = watch(&api, &WatchParams::default(), &rv).await;
    let ev = next(&mut s).await;
    assert!(
        matches!(ev, WatchEvent::Error(ref e) if e.code == 410),
        "{ev:?}"
    );
}

#[tokio::test]
async fn bookmarks_carry_the_latest_resource_version() {
    let (emu, c, api) = with_demo_runs().await;
    let cur = emu.store().resource_version().to_string();
    // A write elsewhere moves the version on; the bookmark reports it.
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(c.clone(), "demo");
    let cm = serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("cm");
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let mut s = watch(&api, &WatchParams::default().timeout(10), &cur).await;
    let ev = next(&mut s).await;
    match ev {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata.resource_version,
                created.metadata.resource_version.expect("rv")
            );
            assert_eq!(b.types.kind, "PipelineRun");
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_watcher_works() {
    let (_emu, _c, api) = with_demo_runs().await;
    create_pipelinerun(&api, "a").await;
    let mut stream =
        watcher::watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let initial = initial_names(&mut stream).await;
    assert_eq!(initial, ["a"]);
    create_pipelinerun(&api, "b").await;
    match next(&mut stream).await {
        Event::Apply(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn label_changes_move_objects_in_and_out_of_a_selective_watch() {
    let (emu, _c, api) = with_demo_runs().await;
    create_pipelinerun(&api, "x").await;
    let cur = emu.store().resource_version().to_string();
    let mut s = watch(
        &api,
        &WatchParams::default().labels("stage=a").timeout(10),
        &cur,
    )
    .await;
    for stage in ["a", "b"] {
        merge_patch(&api, "x", json!({"metadata": {"labels": {"stage": stage}}}))
            .await
            .expect("patch");
    }
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match next(&mut s).await {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Deleted(o) => {
                assert_eq!(
                    o.labels().get("stage").map(String::as_str),
                    Some("b"),
                    "DELETED carries the new object"
                );
                kinds.push("DELETED")
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, ["ADDED", "DELETED"]);
}

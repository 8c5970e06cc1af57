//! `serve --archive-logs=false` with the rights of `deploy/overlays/no-log-archive` (no
//! `pods/log`): a retry works, the attempt history keeps the replaced runs without logs, and the
//! server never asks for a pod log.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::time::Duration;

use sandbox_support::*;
use serde_json::json;
use tekton_retry_sandbox::policy::{server_user, Policy, Subject, SERVER_BINDING};

#[tokio::test]
async fn without_the_log_archive_no_pod_log_is_read() {
    let mut engine = quick_engine();
    engine.executor.archive_logs = false;
    let sb = start_with_engine(engine).await;
    // The server's rights as the overlay grants them.
    let policy = sb.emulator.policy();
    policy.unbind(SERVER_BINDING);
    policy.bind(
        Subject::User(server_user().username),
        SERVER_BINDING,
        Policy::server_rules(false),
    );
    let admin = sb.client("admin").expect("client");
    let before = get(&runs(&admin), "demo-failed").await;
    let b_before = get(&taskruns(&admin), "demo-failed-b").await;
    set_step_log(&sb, &b_before, "step-compile", "compile error\n");
    sb.emulator.faults().clear_log();

    let body = retry_answers(&admin, "demo-failed", json!({}), 201).await;
    assert_eq!(body["status"]["attempt"], 2);
    wait_run(&admin, "demo-failed", 30, is_succeeded).await;

    let server = server_user().username;
    let log_reads: Vec<_> = sb
        .emulator
        .faults()
        .requests()
        .into_iter()
        .filter(|r| r.user == server && r.resource == "pods" && r.subresource == "log")
        .collect();
    assert!(log_reads.is_empty(), "pod logs read: {log_reads:?}");

    // The history keeps the replaced runs, without logs.
    let uid = before["metadata"]["uid"].as_str().expect("uid");
    let archive = archived_attempt(&admin, uid, 1).await;
    let b = archived_run(&archive, "demo-failed-b");
    assert_eq!(b["object"]["metadata"]["uid"], b_before["metadata"]["uid"]);
    assert!(
        b["logs"].as_object().is_none_or(|m| m.is_empty()),
        "no logs archived: {}",
        b["logs"]
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

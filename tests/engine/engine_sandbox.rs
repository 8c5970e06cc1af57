//! The retry engine against the whole sandbox: real TLS, the front proxy, `serve`, the engine and
//! the Tekton simulator.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::time::Duration;

use futures::future::join_all;
use sandbox_support::*;
use serde_json::{json, Value};
use tekton_retry_sandbox::faults::{FaultAction, FaultRule, Trigger};
use tekton_retry_sandbox::SandboxOptions;
use tekton_retry_test_support::emulator::names_in;

#[tokio::test]
async fn demo_failed_is_retried_in_place() {
    let (sb, admin) = start_as_admin().await;
    let before = get(&runs(&admin), "demo-failed").await;
    let a_before = get(&taskruns(&admin), "demo-failed-a").await;
    let b_before = get(&taskruns(&admin), "demo-failed-b").await;

    // The failed step's log, as the kubelet would serve it: its tail is archived.
    let log = format!(
        "{}compile error: registry unreachable\n",
        "noise\n".repeat(20_000)
    );
    set_step_log(&sb, &b_before, "step-compile", &log);
    let body = retry_answers(
        &admin,
        "demo-failed",
        json!({"spec": {"reason": "flaky registry"}}),
        201,
    )
    .await;
    assert_eq!(body["kind"], "PipelineRunRetry");
    assert_eq!(body["status"]["attempt"], 2);
    assert_eq!(retried_names(&body), ["b", "c", "report"]);
    assert_eq!(body["status"]["preservedTasks"], json!(["a"]));

    let after = wait_run(&admin, "demo-failed", 30, is_succeeded).await;
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "same run, in place"
    );
    assert_eq!(
        after["status"]["startTime"], before["status"]["startTime"],
        "Tekton's startTime is kept"
    );
    assert_eq!(
        after["status"]["pipelineSpec"],
        before["status"]["pipelineSpec"]
    );
    assert_eq!(
        annotation(&after, "example.dev/owner").as_deref(),
        Some("alice"),
        "user annotations survive"
    );

    // The succeeded task's run is untouched.
    assert_untouched(&admin, "demo-failed-a", &a_before).await;
    // The failed one was replaced under the same name.
    let b_after = get(&taskruns(&admin), "demo-failed-b").await;
    assert_ne!(b_after["metadata"]["uid"], b_before["metadata"]["uid"]);
    assert_eq!(succeeded(&b_after).0, "True");

    // Records.
    assert_eq!(
        annotation(&after, "retry.tekton.dev/attempt").as_deref(),
        Some("2")
    );
    assert_eq!(
        annotation(&after, "retry.tekton.dev/original-start-time").as_deref(),
        before["status"]["startTime"].as_str()
    );
    assert_eq!(
        annotation(&after, "retry.tekton.dev/original-completion-time").as_deref(),
        before["status"]["completionTime"].as_str()
    );
    let lr = last_retry(&after);
    assert_eq!(lr["attempt"], 2);
    assert_eq!(lr["by"], "admin");
    assert_eq!(lr["reason"], "flaky registry");
    assert_eq!(lr["start"], body["status"]["startTime"]);

    // The archived runs of attempt 1 are in the history in the server's namespace, named after
    // the run's uid (no tenant can write there), and nothing was written in the run's namespace.
    let uid = before["metadata"]["uid"].as_str().expect("uid");
    let record = server_configmaps(&admin)
        .get(&format!("retry-{uid}"))
        .await
        .expect("record");
    let record: Value =
        serde_json::from_str(&record.data.expect("data")["record.json"]).expect("record json");
    assert_eq!(record["attempt"], 2);
    assert_eq!(record["uid"], uid);
    let tenant_cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(admin.clone(), NS);
    assert!(tenant_cms
        .get_opt("demo-failed-retry-history")
        .await
        .expect("list")
        .is_none());
    let archive = archived_attempt(&admin, uid, 1).await;
    let names: Vec<&str> = names_in(&archive["runs"]);
    assert!(
        names.contains(&"demo-failed-b") && names.contains(&"demo-failed-report"),
        "{names:?}"
    );
    assert!(!names.contains(&"demo-failed-a"));
    let b_archived = archived_run(&archive, "demo-failed-b");
    assert_eq!(
        b_archived["object"]["metadata"]["uid"], b_before["metadata"]["uid"],
        "the full old object is archived"
    );
    let tail = b_archived["logs"]["step-compile"]
        .as_str()
        .expect("log tail archived");
    assert!(
        tail.ends_with("compile error: registry unreachable\n"),
        "the end of the log is kept"
    );
    assert!(
        tail.len() <= 64 * 1024 && tail.len() > 60 * 1024,
        "the last 64 KiB: {}",
        tail.len()
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_dry_run_writes_nothing() {
    let (sb, admin) = start_as_admin().await;
    let before = get(&runs(&admin), "demo-failed").await;
    let (code, body) = retry(&admin, "demo-failed", json!({}), "?dryRun=All").await;
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["status"]["dryRun"], true);
    assert_eq!(body["status"]["attempt"], 2);
    assert!(
        body["status"]["remainingTimeout"]
            .as_str()
            .is_some_and(|s| s.contains('m')),
        "{body:#}"
    );
    // Nothing can write later either: the recorder acts only on runs labelled as retried and on
    // attempt records, and a dry run leaves neither.
    let after = get(&runs(&admin), "demo-failed").await;
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert!(after
        .pointer("/metadata/labels/retry.tekton.dev~1retried")
        .is_none());
    let uid = after["metadata"]["uid"].as_str().expect("uid");
    let records: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(admin.clone(), "tekton-retry");
    assert!(
        records
            .get_opt(&format!("retry-{uid}"))
            .await
            .expect("read")
            .is_none(),
        "a dry run left an attempt record"
    );
    assert!(try_get(&taskruns(&admin), "demo-failed-b").await.is_some());
    let writes: Vec<_> = sb
        .emulator
        .faults()
        .requests()
        .into_iter()
        .filter(|r| {
            r.user.contains("tekton-retry") && !matches!(r.verb.as_str(), "get" | "list" | "watch")
        })
        .filter(|r| r.resource != "subjectaccessreviews" && r.resource != "tokenreviews")
        .collect();
    assert!(writes.is_empty(), "a dry run wrote: {writes:?}");
    let (code, body) = retry(&admin, "demo-failed", json!({}), "?dryRun=Yes").await;
    assert_eq!(code, 400, "{body:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn of_twenty_concurrent_retries_exactly_one_starts_the_attempt() {
    let (sb, admin) = start_as_admin().await;
    let calls = (0..20).map(|_| {
        let c = admin.clone();
        async move { retry(&c, "demo-failed", json!({}), "").await }
    });
    let answers = join_all(calls).await;
    let created = answers.iter().filter(|(c, _)| *c == 201).count();
    let conflicts = answers.iter().filter(|(c, _)| *c == 409).count();
    assert_eq!((created, conflicts), (1, 19), "{answers:#?}");
    for (_, b) in answers.iter().filter(|(c, _)| *c == 409) {
        assert_eq!(b["kind"], "Status");
        assert_eq!(b["reason"], "Conflict");
    }
    wait_run(&admin, "demo-failed", 30, is_succeeded).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_replay_with_the_attempt_precondition_is_refused() {
    let (sb, admin) = start_as_admin().await;
    // b fails twice, so after the retry the run is failed again and retryable: only the
    // precondition stands in the way of the replay.
    failed_run(&admin, "replayed", "b:2").await;
    let body = json!({"spec": {"preconditions": {"attempt": 1}}});
    retry_answers(&admin, "replayed", body.clone(), 201).await;
    // Wait for the recorder too: its outcome record is the last write before the replay.
    let again = wait_run(&admin, "replayed", 30, |v| {
        is_failed(v) && last_retry(v)["outcome"].is_string()
    })
    .await;
    // What a replay could change: the record (a claim), the children (deletes), the status (a
    // reset). The run's metadata may still move: the recorder re-writes the mirror whenever the
    // simulated controller's metadata sync writes an older copy back.
    let records = server_configmaps(&admin);
    let record_name = format!("retry-{}", again["metadata"]["uid"].as_str().expect("uid"));
    let record_before = records.get(&record_name).await.expect("record");
    let children_before = taskruns(&admin)
        .list(&kube::api::ListParams::default().labels("tekton.dev/pipelineRun=replayed"))
        .await
        .expect("list");
    let replay = retry_answers(&admin, "replayed", body, 409).await;
    let message = replay["message"].as_str().unwrap_or_default();
    assert!(message.contains("is at attempt 2, not 1"), "{replay:#}");
    let after = get(&runs(&admin), "replayed").await;
    assert_eq!(after["status"], again["status"], "the replay reset nothing");
    assert_eq!(
        records
            .get(&record_name)
            .await
            .expect("record")
            .metadata
            .resource_version,
        record_before.metadata.resource_version,
        "the replay claimed nothing"
    );
    let children_after = taskruns(&admin)
        .list(&kube::api::ListParams::default().labels("tekton.dev/pipelineRun=replayed"))
        .await
        .expect("list");
    let uids = |l: &kube::api::ObjectList<kube::api::DynamicObject>| {
        let mut u: Vec<_> = l.items.iter().map(|o| o.metadata.uid.clone()).collect();
        u.sort();
        u
    };
    assert_eq!(
        uids(&children_after),
        uids(&children_before),
        "the replay deleted nothing"
    );
    let uid = get(&runs(&admin), "demo-failed").await["metadata"]["uid"].clone();
    let wrong_uid = retry_answers(
        &admin,
        "demo-cancelled",
        json!({"spec": {"preconditions": {"uid": uid}}}),
        409,
    )
    .await;
    assert!(
        wrong_uid["message"]
            .as_str()
            .unwrap_or_default()
            .contains("replaced"),
        "{wrong_uid:#}"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_second_failure_can_be_retried_again_with_the_next_attempt() {
    let (sb, admin) = start_as_admin().await;
    failed_run(&admin, "twice", "b:2").await;
    retry_answers(
        &admin,
        "twice",
        json!({"spec": {"preconditions": {"attempt": 1}}}),
        201,
    )
    .await;
    wait_run(&admin, "twice", 30, |v| {
        is_failed(v) && annotation(v, "retry.tekton.dev/attempt").as_deref() == Some("2")
    })
    .await;
    let b = retry_answers(
        &admin,
        "twice",
        json!({"spec": {"preconditions": {"attempt": 2}}}),
        201,
    )
    .await;
    assert_eq!(b["status"]["attempt"], 3);
    let done = wait_run(&admin, "twice", 30, is_succeeded).await;
    assert_eq!(
        annotation(&done, "retry.tekton.dev/attempt").as_deref(),
        Some("3")
    );
    // The history holds the archive of both earlier attempts.
    let uid = done["metadata"]["uid"].as_str().expect("uid");
    for attempt in [1, 2] {
        let archive = archived_attempt(&admin, uid, attempt).await;
        assert!(archive["runs"].is_array(), "attempt {attempt}: {archive:#}");
    }
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_cancelled_run_is_resumed_despite_stale_controller_writes() {
    let (sb, admin) = start_as_admin().await;
    // Race 2 of fixtures/cancelled: the controller reconciles from a lagging copy and writes its
    // stale False/Cancelled after our writes.
    sb.simulator
        .as_ref()
        .expect("simulator")
        .set_stale_read_lag(Some(Duration::from_millis(150)));
    retry_answers(&admin, "demo-cancelled", json!({}), 201).await;
    let run = wait_run(&admin, "demo-cancelled", 40, is_succeeded).await;
    assert!(
        run.pointer("/spec/status")
            .is_none_or(|s| s.as_str().unwrap_or_default().is_empty()),
        "{run:#}"
    );
    // The race happened: the simulated controller wrote a status computed before our writes
    // over them at least once, and the run still ended Succeeded.
    assert!(
        sb.simulator
            .as_ref()
            .expect("simulator")
            .stale_status_writes()
            >= 1,
        "no stale controller write happened: the test showed nothing"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_leftover_pod_blocks_the_reset_until_it_is_gone_then_the_attempt_completes() {
    let (sb, admin) = start_waiting_gone(Duration::from_secs(3), "orphan").await;
    // A pod of the failed TaskRun that the garbage collector will not remove (no owner): the
    // re-created TaskRun would adopt it and fail at once (fixture orphan-pod).
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(admin.clone(), NS);
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan-b-pod-leftover", "labels": {"tekton.dev/taskRun": "orphan-b"}},
        "spec": {"containers": [{"name": "step-compile", "image": "x"}]},
    }))
    .expect("pod");
    pods.create(&Default::default(), &pod)
        .await
        .expect("leftover pod");
    let body = retry_answers(&admin, "orphan", json!({}), 504).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("orphan-b-pod-leftover"),
        "{body:#}"
    );
    let run = get(&runs(&admin), "orphan").await;
    assert!(is_failed(&run), "not reset while the pod is there");
    pods.delete("orphan-b-pod-leftover", &Default::default())
        .await
        .expect("delete");
    let body = retry_answers(&admin, "orphan", json!({}), 201).await;
    assert!(
        body["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{body:#}"
    );
    wait_run(&admin, "orphan", 30, is_succeeded).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

/// Injects `rule` (on the run `name`'s API calls by the server, firing once), expects the first
/// retry to fail with a 4xx/5xx, the second to start (or complete) the attempt, and the run to
/// succeed with the succeeded task's run untouched and no run deleted twice. The client does not
/// replay requests, so each answer is seen; absorbed faults (429, 504) are retried by the
/// engine's own kube-rs client and the first request may already succeed.
async fn fault_then_recovery(name: &str, rule: FaultRule) {
    let (sb, admin) = start_no_replay("admin").await;
    failed_run(&admin, name, "b").await;
    let a_before = get(&taskruns(&admin), &format!("{name}-a")).await;
    let absorbed = matches!(
        rule.action,
        FaultAction::Error { code: 429, .. } | FaultAction::Timeout(_)
    );
    let id = sb.emulator.faults().add(rule.trigger(Trigger::Nth(1)));
    let (code, first) = retry(&admin, name, json!({}), "").await;
    assert!(sb.emulator.faults().matched(id) >= 1, "the fault fired");
    sb.emulator.faults().remove(id);
    if absorbed && code == 201 {
        assert_eq!(first["status"]["attempt"], 2, "{first:#}");
    } else {
        assert!(code >= 429, "the injected fault surfaces: {code} {first:#}");
        assert_eq!(first["kind"], "Status", "{first:#}");
        let (code, second) = retry(&admin, name, json!({}), "").await;
        assert_eq!(
            code, 201,
            "the next request completes the attempt: {second:#}"
        );
        assert_eq!(second["status"]["attempt"], 2);
    }
    let run = wait_run(&admin, name, 30, is_succeeded).await;
    assert_eq!(
        annotation(&run, "retry.tekton.dev/attempt").as_deref(),
        Some("2")
    );
    assert_untouched(&admin, &format!("{name}-a"), &a_before).await;
    let faults = sb.emulator.faults();
    assert_eq!(
        faults.count_named("delete", "taskruns", NS, &format!("{name}-a")),
        0
    );
    assert!(
        faults.count_named("delete", "taskruns", NS, &format!("{name}-b")) <= 2,
        "b is deleted once (plus the failed call)"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn fault_at_the_claim() {
    fault_then_recovery("f-claim", on_run("f-claim", "patch", "", api_failure(500))).await;
}

#[tokio::test]
async fn fault_at_the_archive() {
    let first_create = FaultRule::new("create", "configmaps", api_failure(500));
    fault_then_recovery("f-archive", first_create).await;
}

#[tokio::test]
async fn fault_at_the_delete_dropped_connection() {
    let drop_b = FaultRule::new("delete", "taskruns", FaultAction::Drop).named(NS, "f-delete-b");
    fault_then_recovery("f-delete", drop_b).await;
}

#[tokio::test]
async fn fault_at_the_status_write_429() {
    fault_then_recovery(
        "f-status",
        on_run("f-status", "patch", "status", api_failure(429)),
    )
    .await;
}

#[tokio::test]
async fn fault_at_the_status_write_timeout() {
    let timeout = FaultAction::Timeout(Duration::from_secs(20));
    fault_then_recovery("f-timeout", on_run("f-timeout", "patch", "status", timeout)).await;
}

#[tokio::test]
async fn fault_at_the_final_record() {
    // The first update of a ConfigMap in the server's namespace is the record's `started` phase,
    // after the reset (the record is created at the claim, the history created when archiving).
    let first_update =
        FaultRule::new("update", "configmaps", api_failure(500)).in_namespace("tekton-retry");
    fault_then_recovery("f-record", first_update).await;
}

/// Retries of `a` and `b` with `a`'s first read of its run held for 2 s, at most `limit` worked
/// on at once; returns the server's requests about each run, as positions in the emulator's log.
async fn overlapping_retries(limit: usize) -> (Vec<usize>, Vec<usize>) {
    let mut engine = quick_engine();
    engine.max_concurrent = limit;
    let sb = start_with(SandboxOptions {
        engine,
        recorder_enabled: false,
        ..Default::default()
    })
    .await;
    let admin = sb.client("admin").expect("client");
    failed_run(&admin, "lim-a", "b").await;
    failed_run(&admin, "lim-b", "b").await;
    let faults = sb.emulator.faults();
    let held_2s = FaultAction::Latency(Duration::from_secs(2));
    let hold = faults.add(on_run("lim-a", "get", "", held_2s).trigger(Trigger::Nth(1)));
    faults.clear_log();
    let first = tokio::spawn({
        let c = admin.clone();
        async move { retry(&c, "lim-a", json!({}), "").await }
    });
    // `a` holds its turn (its first read is being answered) before `b` asks.
    for _ in 0..200 {
        if faults.matched(hold) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(faults.matched(hold), 1, "a's retry reached the API");
    let (code_b, body_b) = retry(&admin, "lim-b", json!({}), "").await;
    let (code_a, body_a) = first.await.expect("a's request");
    assert_eq!((code_a, code_b), (201, 201), "{body_a:#}\n{body_b:#}");
    let server = tekton_retry_sandbox::policy::server_user().username;
    let log = faults.requests();
    let about = |run: &str| -> Vec<usize> {
        log.iter()
            .enumerate()
            .filter(|(_, r)| r.user == server && r.name.starts_with(run))
            .map(|(i, _)| i)
            .collect()
    };
    let out = (about("lim-a"), about("lim-b"));
    sb.shutdown(Duration::from_secs(2)).await;
    out
}

#[tokio::test]
async fn retries_beyond_the_concurrency_limit_wait_their_turn() {
    // One at a time: every request about b comes after the last about a.
    let (a, b) = overlapping_retries(1).await;
    assert!(!a.is_empty() && !b.is_empty(), "{a:?} {b:?}");
    assert!(
        b[0] > a[a.len() - 1],
        "b started before a was done: a {a:?}, b {b:?}"
    );
    // Two at a time: b runs while a waits for its first read (the check above can fail).
    let (a, b) = overlapping_retries(2).await;
    assert!(
        b[0] < a[a.len() - 1],
        "b waited although a turn was free: a {a:?}, b {b:?}"
    );
}

/// What one retry of a `demo-failed`-shaped run (two TaskRuns replaced, three tasks re-run) costs
/// kube-apiserver: requests and watches by the server's identity, the recorder off. Waits are
/// watches, so the count does not grow with how long Tekton or the garbage collector take.
#[tokio::test]
async fn a_retry_costs_at_most_twenty_requests_and_three_watches() {
    let sb = start_without_recorder().await;
    let admin = sb.client("admin").expect("client");
    failed_run(&admin, "counted", "b").await;
    sb.emulator.faults().clear_log();
    let body = retry_answers(&admin, "counted", json!({}), 201).await;
    assert_eq!(
        body["status"]["retriedTasks"].as_array().map(Vec::len),
        Some(3),
        "{body:#}"
    );
    let mine = server_requests(&sb);
    let watches = mine.iter().filter(|(verb, _)| verb == "watch").count();
    let requests = mine.len() - watches;
    let shown: Vec<&String> = mine.iter().map(|(_, line)| line).collect();
    println!("one retry: {requests} requests, {watches} watches: {shown:#?}");
    assert!(requests <= 20, "{requests} requests: {shown:#?}");
    assert!(watches <= 3, "{watches} watches: {shown:#?}");
    wait_run(&admin, "counted", 30, is_succeeded).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

/// Two replicas (two independent engines, so no in-process guard between them) both read the
/// run's record before either claims: the record's fence alone lets exactly one start the
/// attempt, and each replaced TaskRun is deleted once.
#[tokio::test]
async fn two_replicas_planning_from_the_same_state_start_one_attempt() {
    use tekton_retry::api::{RetrySpec, UserInfo};
    use tekton_retry::retry::{Engine, RetryRequest};
    let sb = start_without_recorder().await;
    let admin = sb.client("admin").expect("client");
    failed_run(&admin, "raced", "b").await;
    let server = sb.emulator.server_kube_config().expect("config");
    let replicas = [
        Engine::new(
            kube::Client::try_from(server.clone()).expect("client"),
            quick_engine(),
        ),
        Engine::new(
            kube::Client::try_from(server).expect("client"),
            quick_engine(),
        ),
    ];
    // Hold both replicas' first read of the record, so both plan from "never retried".
    let held = sb.emulator.faults().add(
        FaultRule::new(
            "get",
            "configmaps",
            FaultAction::Latency(Duration::from_millis(400)),
        )
        .in_namespace("tekton-retry")
        .trigger(Trigger::FirstN(2)),
    );
    sb.emulator.faults().clear_log();
    let request = || RetryRequest {
        namespace: NS.into(),
        name: "raced".into(),
        spec: RetrySpec::default(),
        dry_run: false,
        user: UserInfo::new("alice", &[]),
        audit_id: None,
    };
    let (a, b) = tokio::join!(replicas[0].retry(request()), replicas[1].retry(request()));
    assert!(
        sb.emulator.faults().matched(held) >= 2,
        "both first reads were held"
    );
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("exactly one replica must start the attempt: {other:?}"),
    };
    assert_eq!(won.status.as_ref().map(|s| s.attempt), Some(2));
    assert_eq!(
        (lost.code(), lost.refusal),
        (409, Some("AlreadyStarted")),
        "{lost:?}"
    );
    for tr in ["raced-b", "raced-report"] {
        assert_eq!(
            sb.emulator
                .faults()
                .count_named("delete", "taskruns", NS, tr),
            1,
            "{tr} deleted once"
        );
    }
    wait_run(&admin, "raced", 30, is_succeeded).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A dry run of a run whose attempt was interrupted says so and writes nothing: it neither
/// completes the attempt nor touches the record, the children or the status.
#[tokio::test]
async fn a_dry_run_of_an_interrupted_attempt_writes_nothing() {
    let sb = start_without_recorder().await;
    let admin = client_no_replay(&sb, "admin");
    failed_run(&admin, "paused", "b").await;
    let id = sb
        .emulator
        .faults()
        .add(on_run("paused", "patch", "status", api_failure(500)).trigger(Trigger::FirstN(1)));
    retry_answers(&admin, "paused", json!({}), 500).await;
    sb.emulator.faults().remove(id);
    let before = get(&runs(&admin), "paused").await;
    sb.emulator.faults().clear_log();
    let (code, dry) = retry(&admin, "paused", json!({}), "?dryRun=All").await;
    assert_eq!(code, 200, "{dry:#}");
    assert!(
        dry["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{dry:#}"
    );
    let writes: Vec<String> = server_requests(&sb)
        .into_iter()
        .filter(|(verb, _)| !matches!(verb.as_str(), "get" | "list" | "watch"))
        .map(|(_, line)| line)
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "a dry run writes nothing");
    let after = get(&runs(&admin), "paused").await;
    assert_eq!(after["status"], before["status"], "still the old failure");
    // The real retry then completes the attempt.
    retry_answers(&admin, "paused", json!({}), 201).await;
    wait_run(&admin, "paused", 30, is_succeeded).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

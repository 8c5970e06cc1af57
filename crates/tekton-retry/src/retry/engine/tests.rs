//! The engine against the in-memory API holding a run a real Tekton cluster failed (`dag-failed`:
//! tasks a and report succeeded, b failed, c skipped): what a retry reads and writes, the claim and
//! its fence, roll-forwards, repairs and refusals.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::api::{Preconditions, RetrySpec, StatusReason};
use crate::retry::cluster::TASKRUNS;
use crate::retry::fake_api::collection;
use crate::retry::record::store::record_name;
use crate::retry::test_scenario::{bounded, configmaps, options, Scenario, OWN, RUN};

const NS: &str = "dag-failed";
const UID: &str = "679e284d-e47e-4d0c-880e-4f1c5abad32c";

fn refusal(e: &ApiError) -> &str {
    e.refusal.unwrap_or("(not a refusal)")
}

/// Leaves attempt 2 claimed and interrupted: the status reset answered 500.
async fn interrupted(s: &Scenario, engine: &Engine) {
    let api = &s.api;
    api.store().fail_next("patch pipelineruns/status", 500);
    let err = s.retry_with(engine).await.expect_err("500");
    assert_eq!(err.reason, StatusReason::InternalError, "{err:?}");
    assert!(err.message.contains("writing the status reset"), "{err:?}");
    assert_eq!(s.record().phase(), Phase::Claimed);
}

/// The writes of a whole retry of the failed run, in order.
const RETRY_WRITES: [&str; 9] = [
    "create configmaps",           // the claim
    "patch pipelineruns demo-run", // its mirror on the run
    "create configmaps",           // the history: what attempt 1 loses
    "delete taskruns demo-run-b",
    "delete taskruns demo-run-report",
    "patch pipelineruns/status demo-run", // the reset
    "update configmaps retry-679e284d-e47e-4d0c-880e-4f1c5abad32c", // started
    "patch pipelineruns demo-run",        // the mirror, started
    "create events",                      // RetryStarted
];

#[tokio::test]
async fn a_retry_claims_archives_deletes_resets_and_records_that_it_started() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    let answer = s.retry_with(&engine).await.expect("201");
    let status = answer.status.expect("status");
    assert_eq!(status.attempt, 2);
    assert!(!status.dry_run);
    assert_eq!(status.pipeline_run_uid, UID);
    let retried: Vec<&str> = status
        .retried_tasks
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(retried, ["b", "c", "report"]);
    assert_eq!(
        status.message.as_deref(),
        Some("attempt 2 started: re-running b, c, report")
    );
    assert!(status.start_time.is_some());
    let record = s.record();
    assert_eq!(record.phase(), Phase::Started);
    assert_eq!(
        (record.retry.by.as_str(), record.retry.reason.as_deref()),
        ("alice", Some("flaky"))
    );
    assert_eq!(s.names(TASKRUNS), ["demo-run-a"]);
    assert_eq!(api.store().writes(), RETRY_WRITES);
    // Only what the plan needs is read: no PersistentVolumeClaims (the run binds none).
    let reads = api.store().requests_like("list ");
    assert_eq!(reads, ["list taskruns", "list pods"]);
    // The waits are watches: no child run is read again.
    assert!(api.store().requests_like("get taskruns").is_empty());
    let run = s.run();
    assert_eq!(run["status"]["conditions"][0]["status"], "Unknown");
    assert_eq!(
        run["metadata"]["annotations"]["retry.tekton.dev/attempt"], "2",
        "the mirror: {}",
        run["metadata"]["annotations"]
    );
}

#[tokio::test]
async fn the_started_event_says_who_retried_what_and_why() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    s.retry_with(&engine).await.expect("201");
    let events = api
        .store()
        .all(&collection(crate::retry::cluster::EVENTS, NS));
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["reason"], "RetryStarted");
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["involvedObject"]["uid"], UID);
    assert_eq!(
        event["message"],
        "alice started attempt 2: re-running b, c, report (reason: flaky)"
    );
}

/// A dry run's message; asserts that it was one and wrote nothing.
async fn dry_run_writing_nothing(s: &Scenario, engine: &Engine) -> String {
    let before = s.api.store().writes();
    let answer = s.dry_run_with(engine).await.expect("200");
    let status = answer.status.expect("status");
    assert!(status.dry_run);
    assert_eq!(s.api.store().writes(), before, "a dry run writes nothing");
    status.message.unwrap_or_default()
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_leaves_the_run_free_for_the_real_retry() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let message = dry_run_writing_nothing(&s, &engine).await;
    assert_eq!(message, "dry run: attempt 2 would re-run b, c, report");
    // The same engine, the same run: not "already being retried".
    s.retry_with(&engine).await.expect("201");
}

#[tokio::test]
async fn the_uid_precondition_refuses_another_run_of_the_same_name() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    let spec = |uid: &str| RetrySpec {
        preconditions: Some(Preconditions {
            uid: Some(uid.into()),
            attempt: None,
        }),
        ..Default::default()
    };
    let err = bounded(engine.retry(s.request(spec("another-uid"))))
        .await
        .expect_err("409");
    assert_eq!(refusal(&err), "PreconditionFailed");
    assert!(err.message.contains("another-uid"), "{err:?}");
    assert!(api.store().writes().is_empty());
    bounded(engine.retry(s.request(spec(UID))))
        .await
        .expect("201");
}

#[tokio::test]
async fn a_claim_another_replica_made_first_wins_and_nothing_is_deleted() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    // Another replica planned from the same state and claimed between this one's read of the
    // record and its create: the create meets the record (409 AlreadyExists).
    let claim = {
        let record = AttemptRecord {
            namespace: NS.into(),
            name: RUN.into(),
            uid: UID.into(),
            retry: crate::retry::record::LastRetry {
                attempt: 2,
                by: "bob".into(),
                start: crate::tekton::format_time(chrono::Utc::now()),
                ..Default::default()
            },
            ..Default::default()
        };
        RecordStore::new(api.cluster(), OWN).body(&record, None)
    };
    api.store().before_next("create configmaps", move |store| {
        store.insert(&configmaps(), claim);
    });
    let err = s.retry_with(&engine).await.expect_err("409");
    assert_eq!(refusal(&err), "AlreadyStarted", "{err:?}");
    assert!(err.message.contains("bob"), "{err:?}");
    assert_eq!(s.names(TASKRUNS).len(), 3, "nothing deleted");
    assert_eq!(api.store().writes(), ["create configmaps"]);
}

#[tokio::test]
async fn a_claim_the_api_fails_is_a_500_and_nothing_is_deleted() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    api.store().fail_next("create configmaps", 500);
    let err = s.retry_with(&engine).await.expect_err("500");
    assert_eq!(err.reason, StatusReason::InternalError);
    assert!(err.message.contains("claiming the retry"), "{err:?}");
    assert_eq!(s.names(TASKRUNS).len(), 3);
}

#[tokio::test]
async fn a_claim_whose_mirror_admission_refuses_is_taken_back() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    api.store().fail_next("patch pipelineruns demo-run", 422);
    let err = s.retry_with(&engine).await.expect_err("422");
    assert_eq!(err.reason, StatusReason::Invalid, "{err:?}");
    assert!(s.stored_record().is_none(), "the claim was taken back");
    assert_eq!(s.names(TASKRUNS).len(), 3);
    // And the next request can retry.
    s.retry_with(&engine).await.expect("201");
}

#[tokio::test]
async fn a_missing_pipeline_is_planned_from_the_run_and_an_unreadable_one_is_a_500() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    api.store().remove(
        &collection(crate::retry::cluster::PIPELINES, NS),
        "build-and-deploy",
    );
    api.store().fail_next("get pipelines", 500);
    let err = s.retry_with(&engine).await.expect_err("500");
    assert!(err.message.contains("reading the pipeline"), "{err:?}");
    assert!(api.store().writes().is_empty());
    s.retry_with(&engine)
        .await
        .expect("planned from status.pipelineSpec");
}

#[tokio::test]
async fn a_deleted_task_is_refused_up_front_and_an_unreadable_one_is_not() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    let tasks = collection(crate::retry::cluster::TASKS, NS);
    api.store().remove(&tasks, "deploy");
    let err = s.retry_with(&engine).await.expect_err("422");
    assert_eq!(refusal(&err), "TaskGone", "{err:?}");
    assert!(
        err.causes
            .iter()
            .any(|c| c.message.contains("Task \"deploy\"")),
        "{err:?}"
    );
    assert!(api.store().writes().is_empty());
    // A Task that cannot be read (500) is not taken for gone: the retry goes ahead.
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    api.store().fail_next("get tasks deploy", 500);
    s.retry_with(&engine).await.expect("201");
    assert_eq!(s.record().phase(), Phase::Started);
}

#[tokio::test]
async fn a_run_that_does_not_exist_is_a_404() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    api.store().remove(&s.runs(), RUN);
    let err = s.retry_with(&engine).await.expect_err("404");
    assert_eq!(refusal(&err), "NotFound", "{err:?}");
    assert_eq!(err.name.as_deref(), Some(RUN));
}

#[tokio::test]
async fn a_second_request_while_the_first_works_is_refused() {
    let s = Scenario::dag_failed();
    let api = &s.api;
    let mut opts = options();
    // No controller acknowledges: the first request waits out a long verification window.
    opts.executor.verify_window = Duration::from_secs(30);
    let engine = s.engine_with(opts);
    let first = tokio::spawn({
        let (engine, req) = (engine.clone(), s.retry_request());
        async move { engine.retry(req).await }
    });
    bounded(async {
        while api
            .store()
            .requests_like("patch pipelineruns/status")
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let err = s.retry_with(&engine).await.expect_err("409");
    assert_eq!(refusal(&err), "InFlight", "{err:?}");
    first.abort();
}

#[tokio::test]
async fn an_interrupted_attempt_is_completed_by_the_next_request_on_the_same_server() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    interrupted(&s, &engine).await;
    let answer = s.retry_with(&engine).await.expect("completed");
    let status = answer.status.expect("status");
    assert_eq!(status.attempt, 2);
    let retried: Vec<&str> = status
        .retried_tasks
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(retried, ["b", "c", "report"]);
    let message = status.message.unwrap_or_default();
    assert!(
        message.starts_with("completed attempt 2 started by alice at "),
        "{message}"
    );
    assert_eq!(s.record().phase(), Phase::Started);
    assert_eq!(s.run()["status"]["conditions"][0]["status"], "Unknown");
}

#[tokio::test]
async fn a_fresh_claim_of_another_server_is_in_progress_and_an_old_one_is_completed() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    interrupted(&s, &engine).await;
    let other = Engine::new(api.client(), options());
    let err = bounded(other.retry(s.retry_request()))
        .await
        .expect_err("409");
    assert_eq!(refusal(&err), "InProgress", "{err:?}");
    s.change_record(|r| {
        r.retry.start = crate::tekton::format_time(chrono::Utc::now() - chrono::Duration::hours(1));
    });
    bounded(other.retry(s.retry_request()))
        .await
        .expect("completed");
    assert_eq!(s.record().phase(), Phase::Started);
}

#[tokio::test]
async fn completing_an_interrupted_attempt_checks_the_attempt_precondition() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    interrupted(&s, &engine).await;
    let spec = |attempt: u32| RetrySpec {
        preconditions: Some(Preconditions {
            uid: None,
            attempt: Some(attempt),
        }),
        ..Default::default()
    };
    // Attempt 2 was claimed from attempt 1: a replay of that request completes it.
    let err = bounded(engine.retry(s.request(spec(2))))
        .await
        .expect_err("409");
    assert_eq!(refusal(&err), "PreconditionFailed", "{err:?}");
    assert!(err.message.contains("attempt 2, not 2"), "{err:?}");
    bounded(engine.retry(s.request(spec(1))))
        .await
        .expect("completed");
}

#[tokio::test]
async fn a_dry_run_of_an_interrupted_attempt_writes_nothing() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    interrupted(&s, &engine).await;
    let message = dry_run_writing_nothing(&s, &engine).await;
    assert_eq!(message, "attempt 2 was interrupted; a retry completes it");
    assert_eq!(s.record().phase(), Phase::Claimed);
}

#[tokio::test]
async fn the_started_mark_survives_a_concurrent_record_write_and_a_failed_one_is_a_500() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    // The recorder writes the record between the claim and the started mark: read again.
    api.store().before_next("update configmaps", |store| {
        store.modify(&configmaps(), &record_name(UID), |cm| {
            cm["metadata"]["labels"]["touched"] = json!("yes");
        });
    });
    s.retry_with(&engine).await.expect("201");
    assert_eq!(s.record().phase(), Phase::Started);
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    api.store().fail_next("update configmaps", 500);
    let err = s.retry_with(&engine).await.expect_err("500");
    assert!(err.message.contains("recording the retry"), "{err:?}");
}

#[tokio::test]
async fn a_started_mark_another_replica_wrote_first_is_not_written_again() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    api.store().before_next("update configmaps", |store| {
        let name = record_name(UID);
        store.modify(&configmaps(), &name, |cm| {
            let key = crate::retry::record::store::RECORD_KEY;
            let mut record: AttemptRecord =
                serde_json::from_str(cm["data"][key].as_str().unwrap_or_default()).expect("record");
            record.retry.phase = Some(Phase::Started);
            cm["data"][key] = json!(serde_json::to_string(&record).expect("json"));
        });
    });
    s.retry_with(&engine).await.expect("201");
    // The fenced write met the change, the read-again found it started: one update only.
    assert_eq!(api.store().requests_like("update configmaps").len(), 1);
    assert_eq!(s.record().phase(), Phase::Started);
}

#[tokio::test]
async fn repair_resets_again_a_run_a_stale_write_set_back_to_its_old_failure() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    let failed_status = s.run()["status"].clone();
    s.retry_with(&engine).await.expect("201");
    // Not done: nothing to repair.
    assert!(!bounded(engine.repair(NS, RUN, UID)).await.expect("repair"));
    api.store()
        .modify(&s.runs(), RUN, |r| r["status"] = failed_status.clone());
    // Another run's uid: nothing to do.
    assert!(!bounded(engine.repair(NS, RUN, "another-uid"))
        .await
        .expect("repair"));
    assert!(bounded(engine.repair(NS, RUN, UID)).await.expect("repair"));
    assert_eq!(s.run()["status"]["conditions"][0]["status"], "Unknown");
}

#[tokio::test]
async fn repair_leaves_a_run_that_ended_its_attempt_alone() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    s.retry_with(&engine).await.expect("201");
    // The retry failed again, after the claim: its own outcome, not a stale write.
    let ended = crate::tekton::format_time(chrono::Utc::now() + chrono::Duration::seconds(5));
    s.api.store().modify(&s.runs(), RUN, |r| {
        r["status"]["conditions"] = json!([{"type": "Succeeded", "status": "False", "reason": "Failed",
            "message": "Tasks Completed: 4 (Failed: 1, Cancelled 0), Skipped: 0"}]);
        r["status"]["completionTime"] = json!(ended);
    });
    assert!(!bounded(engine.repair(NS, RUN, UID)).await.expect("repair"));
    assert_eq!(s.run()["status"]["conditions"][0]["status"], "False");
}

#[tokio::test]
async fn repair_leaves_a_claimed_attempt_to_the_roll_forward() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    interrupted(&s, &engine).await;
    assert!(!bounded(engine.repair(NS, RUN, UID)).await.expect("repair"));
    assert_eq!(s.run()["status"]["conditions"][0]["status"], "False");
}

#[tokio::test]
async fn the_history_holds_the_attempts_and_the_runs_attempt_1_lost() {
    let s = Scenario::dag_failed();
    let (api, engine) = (&s.api, s.engine());
    api.store().logs.insert(
        "demo-run-b-pod/step-compile".into(),
        "compiling\nerror: boom\n".into(),
    );
    bounded(RetryService::retry(&engine, s.retry_request()))
        .await
        .expect("201");
    let history = bounded(RetryService::history(&engine, NS.into(), RUN.into(), None))
        .await
        .expect("history");
    assert_eq!(history["kind"], crate::api::HISTORY_KIND);
    assert_eq!(history["metadata"]["uid"], UID);
    let index = history["data"]["attempts.json"].as_str().expect("index");
    assert!(index.contains("\"attempt\":2"), "{index}");
    let lost: Value = serde_json::from_str(
        history["data"]["attempt-1.json"]
            .as_str()
            .expect("attempt 1"),
    )
    .expect("json");
    let names: Vec<&str> = lost["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["demo-run-b", "demo-run-report"]);
    assert_eq!(
        lost["runs"][0]["logs"]["step-compile"],
        "compiling\nerror: boom"
    );
}

#[tokio::test]
async fn a_claim_a_rerun_task_mounts_is_checked_against_the_claims_that_exist() {
    let s = Scenario::dag_failed();
    // b mounts the claim `src-pvc` through the pipeline's workspace `src`.
    s.api.store().modify(&s.runs(), RUN, |r| {
        r["spec"]["workspaces"] =
            json!([{"name": "src", "persistentVolumeClaim": {"claimName": "src-pvc"}}]);
        if let Some(tasks) = r["status"]["pipelineSpec"]["tasks"].as_array_mut() {
            for t in tasks.iter_mut().filter(|t| t["name"] == "b") {
                t["workspaces"] = json!([{"name": "src", "workspace": "src"}]);
            }
        }
    });
    let err = s.retry().await.expect_err("422");
    assert_eq!(refusal(&err), "WorkspaceGone", "{err:?}");
    assert_eq!(
        s.api
            .store()
            .requests_like("list persistentvolumeclaims")
            .len(),
        1
    );
    let pvcs = collection(crate::retry::cluster::PVCS, NS);
    let claim = json!({"metadata": {"name": "src-pvc", "namespace": NS}});
    s.api.store().insert(&pvcs, claim);
    s.retry().await.expect("201: the claim is there");
}

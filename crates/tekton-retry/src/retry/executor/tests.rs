//! The executor's pure rules, and whole attempts against the in-memory API.
use super::*;

#[test]
fn attempt_pod_names_plain_and_hashed() {
    assert!(is_attempt_pod_name("demo-run-b-pod"));
    assert!(is_attempt_pod_name("demo-run-b-pod-retry2"));
    // kmeta.ChildName form for a 63-character TaskRun name: 27 characters, md5, suffix.
    assert!(is_attempt_pod_name(
        "a-very-long-pipelinerun-na4b3a6a8d1e0f2c9b7d5e3f1a2b4c6d8-pod"
    ));
    assert!(!is_attempt_pod_name("demo-run-b-pod-leftover"));
    assert!(!is_attempt_pod_name("demo-run-b-pod-retry"));
    assert!(!is_attempt_pod_name("affinity-assistant-9e9e0199da-0"));
}

#[test]
fn every_attempt_pod_is_listed_last_one_unprefixed() {
    let tr = json!({"status": {
        "podName": "r-b-pod-retry1",
        "steps": [{"container": "step-main"}],
        "retriesStatus": [{"podName": "r-b-pod", "steps": [{"container": "step-main"}]}]}});
    let pods = attempt_pods(&tr);
    assert_eq!(
        pods,
        vec![
            ("r-b-pod/".to_string(), "r-b-pod", vec!["step-main"]),
            (String::new(), "r-b-pod-retry1", vec!["step-main"]),
        ]
    );
}

#[test]
fn a_run_level_failure_counts_only_after_a_reset() {
    let run = |reason: &str| {
        json!({"status": {"conditions": [{"type": "Succeeded", "status": "False",
            "reason": reason}]}})
    };
    assert!(refailed_by_tekton(&run("CouldntGetTask"), true));
    assert!(refailed_by_tekton(&run("CreateRunFailed"), true));
    // The old failure, seen before any reset of this call.
    assert!(!refailed_by_tekton(&run("PipelineValidationFailed"), false));
    // A task failure is decided by the runs, never here.
    assert!(!refailed_by_tekton(&run("Failed"), true));
}

// ---- Whole attempts against the in-memory API (recorded runs; see `test_scenario`). ----

use crate::api::StatusReason;
use crate::retry::cluster::{PODS, TASKRUNS as TASKRUN_KIND};
use crate::retry::fake_api::{collection, Store};
use crate::retry::record::Phase;
use crate::retry::test_scenario::{bounded, options, Scenario, RUN};
use crate::retry::Engine;

fn taskruns(s: &Scenario) -> String {
    collection(TASKRUN_KIND, s.ns)
}

fn condition(run: &Value) -> (String, String) {
    let c = &run["status"]["conditions"][0];
    let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"))
}

/// The writes to the run and its children that were made (not those refused, nor those to the
/// records or Events), in order; a patch with the fields it changes.
fn run_writes(s: &Scenario) -> Vec<String> {
    let store = s.api.store();
    let made = store.written.iter().filter(|(_, code)| *code < 300);
    made.map(|(w, _)| w)
        .filter(|w| w.collection.ends_with("/pipelineruns") || w.collection.ends_with("/taskruns"))
        .map(|w| match w.verb {
            "patch" => format!("{} {}", w.line(), w.patched()),
            _ => w.line(),
        })
        .collect()
}

/// How many status resets the executor asked for.
fn resets(s: &Scenario) -> usize {
    let store = s.api.store();
    store.requests_like("patch pipelineruns/status").len()
}

/// Claims attempt 2 of the scenario's run and leaves it interrupted before the reset; the
/// record, for calling the executor directly.
async fn claimed(s: &Scenario, engine: &Engine) -> AttemptRecord {
    s.api.store().fail_next("patch pipelineruns/status", 500);
    s.retry_with(engine).await.expect_err("interrupted");
    s.record()
}

#[tokio::test]
async fn a_cancelled_run_is_reset_then_its_spec_status_cleared() {
    let s = Scenario::load("cancelled", &["02-cancelled"]);
    assert_eq!(s.run()["spec"]["status"], "Cancelled");
    s.retry().await.expect("201");
    let run = s.run();
    assert!(run["spec"].get("status").is_none(), "{}", run["spec"]);
    assert_eq!(condition(&run).0, "Unknown");
    assert_eq!(
        run_writes(&s),
        [
            "patch pipelineruns demo-run metadata", // the claim's mirror
            "delete taskruns demo-run-b",
            "patch pipelineruns/status demo-run status",
            "patch pipelineruns demo-run spec", // spec.status cleared
            "patch pipelineruns demo-run metadata", // the mirror: started
        ]
    );
}

#[tokio::test]
async fn the_finally_runs_of_a_gracefully_cancelled_run_are_deleted_only_after_the_spec_clear() {
    // CancelledRunFinally: while spec.status is set, a re-created finally run would be cancelled
    // again, so the finally TaskRun goes only once the spec is cleared.
    let s = Scenario::load("cancelled-finally-trap", &["01-cancelled"]);
    assert_eq!(s.run()["spec"]["status"], "CancelledRunFinally");
    s.retry().await.expect("201");
    assert_eq!(
        run_writes(&s),
        [
            "patch pipelineruns demo-run metadata",
            "delete taskruns demo-run-b",
            "patch pipelineruns/status demo-run status",
            "patch pipelineruns demo-run spec",
            "delete taskruns demo-run-report",
            "patch pipelineruns demo-run metadata",
        ]
    );
    assert!(!s
        .names(TASKRUN_KIND)
        .contains(&"demo-run-report".to_string()));
    assert!(s.run()["spec"].get("status").is_none());
    assert_eq!(s.record().phase(), Phase::Started);
}

/// A reactor standing in for the Tekton controller: after each status reset of the run, `answer`
/// changes the run.
fn on_reset(s: &Scenario, answer: impl Fn(&mut Value) + Send + 'static) {
    let runs = s.runs();
    s.api
        .store()
        .react(Box::new(move |store: &mut Store, seen, _| {
            if seen.verb == "patch" && seen.sub == "status" && seen.collection == runs {
                store.modify(&runs, RUN, &answer);
            }
        }));
}

/// The run failed again as it was before the reset (a stale controller write).
fn old_failure(run: &Value) -> impl Fn(&mut Value) + Send + 'static {
    let failed = run["status"].clone();
    move |r: &mut Value| r["status"] = failed.clone()
}

#[tokio::test]
async fn a_controller_that_keeps_writing_the_old_outcome_back_gets_a_bounded_number_of_resets() {
    let s = Scenario::dag_failed();
    on_reset(&s, old_failure(&s.run()));
    let mut opts = options();
    opts.executor.max_reset_rounds = 2;
    let err = bounded(s.engine_with(opts).retry(s.retry_request()))
        .await
        .expect_err("504");
    assert_eq!(err.reason, StatusReason::Timeout, "{err:?}");
    assert!(err.message.contains("after 2 status writes"), "{err:?}");
    assert_eq!(resets(&s), 2);
    assert_eq!(s.record().phase(), Phase::Claimed, "resumable");
}

#[tokio::test]
async fn a_run_tekton_fails_at_once_after_the_reset_is_the_attempts_outcome_not_a_reason_to_reset_again(
) {
    let s = Scenario::dag_failed();
    on_reset(&s, |r: &mut Value| {
        r["status"]["conditions"] = json!([{"type": "Succeeded", "status": "False",
            "reason": "CouldntGetTask", "message": "task deploy not found"}]);
        r["status"]["completionTime"] = json!(crate::tekton::format_time(chrono::Utc::now()));
    });
    s.retry().await.expect("201");
    assert_eq!(resets(&s), 1);
    assert_eq!(
        condition(&s.run()),
        ("False".into(), "CouldntGetTask".into())
    );
    assert_eq!(s.record().phase(), Phase::Started);
}

#[tokio::test]
async fn the_executor_waits_within_the_verification_window_for_the_controller_to_take_the_run_up() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let record = claimed(&s, &engine).await;
    // The controller's first reconcile, 100 ms after the reset (the window is 2 s).
    let (api, runs) = (s.api.clone(), s.runs());
    s.api.store().react(Box::new(move |_: &mut Store, seen, _| {
        if seen.sub == "status" {
            let (api, runs) = (api.clone(), runs.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                api.store().modify(&runs, RUN, |r| {
                    r["status"]["conditions"][0]["message"] = json!(
                        "Tasks Completed: 1 (Failed: 0, Cancelled 0), Incomplete: 3, Skipped: 0"
                    );
                });
            });
        }
    }));
    let executor = Executor::new(
        s.api.cluster(),
        engine.store().clone(),
        ExecutorOptions {
            verify_window: Duration::from_secs(2),
            ..options().executor
        },
    );
    let run = bounded(executor.complete(s.ns, &s.run(), &record, None, None))
        .await
        .expect("taken up");
    let message = run["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.starts_with("Tasks Completed: 1"), "{message}");
}

#[tokio::test]
async fn a_run_replaced_under_the_same_name_is_left_alone() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let mut record = claimed(&s, &engine).await;
    record.uid = "another-uid".into();
    let before = s.api.store().written.len();
    let err = complete(&s, &engine, &record).await.expect_err("409");
    assert_eq!(err.reason, StatusReason::Conflict);
    assert!(err.message.contains("deleted and re-created"), "{err:?}");
    assert_eq!(s.api.store().written.len(), before);
}

#[tokio::test]
async fn a_taskrun_held_by_a_finalizer_is_waited_for_and_named() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    s.api.store().modify(&taskruns(&s), "demo-run-b", |t| {
        t["metadata"]["finalizers"] = json!(["chains.tekton.dev/taskrun"]);
    });
    let err = s.retry_with(&engine).await.expect_err("504");
    assert_eq!(err.reason, StatusReason::Timeout, "{err:?}");
    assert!(err.message.contains("chains.tekton.dev/taskrun"), "{err:?}");
    assert!(s
        .api
        .store()
        .requests_like("patch pipelineruns/status")
        .is_empty());
    // Released: the next request completes the attempt.
    s.api.store().modify(&taskruns(&s), "demo-run-b", |t| {
        t["metadata"]["finalizers"] = json!([]);
    });
    s.retry_with(&engine).await.expect("completed");
    assert_eq!(s.record().phase(), Phase::Started);
}

#[tokio::test]
async fn a_leftover_pod_a_new_taskrun_would_adopt_stops_the_reset_and_a_new_runs_pod_does_not() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let pods = collection(PODS, s.ns);
    // Orphaned (`--cascade=orphan`): the TaskRun's deletion leaves it.
    s.api.store().modify(&pods, "demo-run-b-pod", |p| {
        p["metadata"]["ownerReferences"] = json!([]);
    });
    let err = s.retry_with(&engine).await.expect_err("504");
    assert!(err.message.contains("demo-run-b-pod"), "{err:?}");
    assert!(err.message.contains("still there"), "{err:?}");
    assert!(s
        .api
        .store()
        .requests_like("patch pipelineruns/status")
        .is_empty());
    // Owned by another TaskRun (Tekton's re-created one): not in the way.
    s.api.store().modify(&pods, "demo-run-b-pod", |p| {
        p["metadata"]["ownerReferences"] = json!([{"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "name": "demo-run-b", "uid": "the-new-taskrun", "controller": true}]);
    });
    s.retry_with(&engine).await.expect("completed");
}

#[tokio::test]
async fn a_run_someone_else_deleted_first_is_fine_and_a_failed_delete_is_a_500() {
    let s = Scenario::dag_failed();
    let trs = taskruns(&s);
    s.api
        .store()
        .before_next("delete taskruns demo-run-b", move |store| {
            store.remove(&trs, "demo-run-b");
        });
    s.retry().await.expect("201");
    let s = Scenario::dag_failed();
    s.api.store().fail_next("delete taskruns demo-run-b", 500);
    let err = s.retry().await.expect_err("500");
    assert!(err.message.contains("deleting TaskRun"), "{err:?}");
}

#[tokio::test]
async fn a_reset_admission_refuses_is_a_422_and_a_reset_that_lost_a_race_is_written_again() {
    let s = Scenario::dag_failed();
    s.api.store().fail_next("patch pipelineruns/status", 422);
    let err = s.retry().await.expect_err("422");
    assert_eq!(err.reason, StatusReason::Invalid, "{err:?}");
    assert!(err.message.contains("status reset"), "{err:?}");
    let s = Scenario::dag_failed();
    // The controller writes the run between the executor's read and its reset.
    let runs = s.runs();
    s.api
        .store()
        .before_next("patch pipelineruns/status", move |store| {
            store.modify(&runs, RUN, |r| {
                r["metadata"]["labels"]["seen"] = json!("yes")
            });
        });
    s.retry().await.expect("201");
    let answers: Vec<u16> = {
        let store = s.api.store();
        let resets = store.written.iter().filter(|(w, _)| w.sub == "status");
        resets.map(|(_, code)| *code).collect()
    };
    assert_eq!(answers, [409, 200]);
    assert_eq!(condition(&s.run()).0, "Unknown");
}

#[tokio::test]
async fn a_run_tekton_completes_again_before_the_spec_clear_is_reset_again_then_cleared() {
    // Cancelled/StoppedRunFinally: while spec.status is set a reconcile completes the reset run
    // again within milliseconds; the clear fenced at the reset is refused (400) and the run is
    // reset once more.
    let s = Scenario::load("cancelled", &["02-cancelled"]);
    let cancelled = s.run()["status"].clone();
    let (runs, mut once) = (s.runs(), true);
    s.api
        .store()
        .react(Box::new(move |store: &mut Store, seen, _| {
            if seen.sub == "status" && std::mem::take(&mut once) {
                store.modify(&runs, RUN, |r| r["status"] = cancelled.clone());
            }
        }));
    s.retry().await.expect("201");
    assert_eq!(resets(&s), 2);
    assert!(s.run()["spec"].get("status").is_none());
    assert_eq!(condition(&s.run()).0, "Unknown");
}

#[tokio::test]
async fn an_expired_watch_starts_over_from_a_list_and_another_watch_error_is_a_500() {
    let s = Scenario::dag_failed();
    s.api.store().before_next("watch taskruns", Store::compact);
    s.retry().await.expect("201");
    assert_eq!(
        s.api.store().requests_like("list taskruns").len(),
        2,
        "listed again"
    );
    let s = Scenario::dag_failed();
    s.api.store().fail_next_watch(500);
    let err = s.retry().await.expect_err("500");
    assert!(err.message.contains("watching the child runs"), "{err:?}");
}

#[tokio::test]
async fn chains_annotations_go_once_the_run_runs_again() {
    let s = Scenario::dag_failed();
    s.api.store().modify(&s.runs(), RUN, |r| {
        r["metadata"]["annotations"]["chains.tekton.dev/signed"] = json!("true");
        r["metadata"]["annotations"]["team.example/owner"] = json!("web");
    });
    s.retry().await.expect("201");
    let annotations = &s.run()["metadata"]["annotations"];
    assert!(
        annotations.get("chains.tekton.dev/signed").is_none(),
        "{annotations}"
    );
    assert_eq!(annotations["team.example/owner"], "web");
}

#[tokio::test]
async fn logs_are_archived_only_when_asked_and_only_for_taskruns() {
    let s = Scenario::dag_failed();
    s.api
        .store()
        .logs
        .insert("demo-run-b-pod/step-compile".into(), "error: boom".into());
    let mut opts = options();
    opts.executor.archive_logs = false;
    bounded(s.engine_with(opts).retry(s.retry_request()))
        .await
        .expect("201");
    assert!(s.api.store().requests_like("get pods/log").is_empty());
    let history = bounded(s.engine().history(s.ns, RUN, None))
        .await
        .expect("history");
    let lost: Value =
        serde_json::from_str(history["data"]["attempt-1.json"].as_str().expect("1")).expect("json");
    assert_eq!(lost["runs"][0]["name"], "demo-run-b");
    assert!(
        lost["runs"][0]["logs"]
            .as_object()
            .is_none_or(|l| l.is_empty()),
        "{lost}"
    );
}

#[tokio::test]
async fn a_taskrun_labelled_for_the_run_but_owned_by_another_is_neither_archived_nor_deleted() {
    let s = Scenario::dag_failed();
    let mut stranger = s.api.store().get(&taskruns(&s), "demo-run-b").expect("b");
    stranger["metadata"]["name"] = json!("demo-run-b-copy");
    stranger["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    if let Some(meta) = stranger["metadata"].as_object_mut() {
        meta.remove("uid");
    }
    s.api.store().insert(&taskruns(&s), stranger);
    s.retry().await.expect("201");
    assert!(s
        .names(TASKRUN_KIND)
        .contains(&"demo-run-b-copy".to_string()));
    let history = bounded(s.engine().history(s.ns, RUN, None))
        .await
        .expect("history");
    let lost = history["data"]["attempt-1.json"].as_str().expect("1");
    assert!(!lost.contains("demo-run-b-copy"), "{lost}");
}

#[test]
fn custom_tasks_and_pipelines_in_pipelines_add_their_child_resources() {
    let plural = |run: Value| -> Vec<&'static str> {
        child_run_resources(&run).iter().map(|r| r.plural).collect()
    };
    let with_task = |task: Value| json!({"status": {"pipelineSpec": {"tasks": [task]}}});
    let custom = json!({"apiVersion": "example.dev/v1", "kind": "Wait"});
    assert_eq!(plural(json!({})), ["taskruns"]);
    assert_eq!(
        plural(with_task(json!({"name": "a", "taskRef": {"name": "t"}}))),
        ["taskruns"]
    );
    assert_eq!(
        plural(with_task(json!({"name": "a", "taskRef": custom}))),
        ["taskruns", "customruns"]
    );
    assert_eq!(
        plural(with_task(json!({"name": "a", "taskSpec": custom}))),
        ["taskruns", "customruns"]
    );
    // Both apiVersion and kind make a custom task (TaskRef.IsCustomTask).
    let half = json!({"name": "a", "taskRef": {"apiVersion": "example.dev/v1", "kind": ""}});
    assert_eq!(plural(with_task(half)), ["taskruns"]);
    let half = json!({"name": "a", "taskRef": {"apiVersion": "", "kind": "Wait"}});
    assert_eq!(plural(with_task(half)), ["taskruns"]);
    assert_eq!(
        plural(with_task(
            json!({"name": "a", "pipelineRef": {"name": "p"}})
        )),
        ["taskruns", "pipelineruns"]
    );
    assert_eq!(
        plural(with_task(
            json!({"name": "a", "pipelineSpec": {"tasks": []}})
        )),
        ["taskruns", "pipelineruns"]
    );
    // The inline spec counts as well as the resolved one.
    let inline = json!({"spec": {"pipelineSpec": {"finally": [{"name": "f", "taskRef": custom}]}}});
    assert_eq!(plural(inline), ["taskruns", "customruns"]);
    let referenced = |kind: &str| json!({"status": {"childReferences": [{"kind": kind, "name": "x", "pipelineTaskName": "a"}]}});
    assert_eq!(plural(referenced("CustomRun")), ["taskruns", "customruns"]);
    assert_eq!(
        plural(referenced("PipelineRun")),
        ["taskruns", "pipelineruns"]
    );
    assert_eq!(plural(referenced("TaskRun")), ["taskruns"]);
}

#[test]
fn the_controller_took_the_run_up_when_it_made_a_child_ended_it_or_rewrote_the_message() {
    let run = |status: &str, message: &str| json!({"status": {"conditions": [{"type": "Succeeded", "status": status, "message": message}]}});
    let reset = "retry attempt 2 started";
    assert!(acknowledged(&run("Unknown", reset), true, reset));
    assert!(!acknowledged(&run("Unknown", reset), false, reset));
    assert!(acknowledged(
        &run("Unknown", "Tasks Completed: 1"),
        false,
        reset
    ));
    assert!(acknowledged(&run("False", reset), false, reset));
    assert!(!acknowledged(&json!({"status": {}}), false, reset));
}

#[test]
fn a_pod_is_left_over_when_named_for_a_deleted_taskrun_and_owned_by_it_or_by_nothing() {
    let deleted = RunRef::new("TaskRun", "r-b", "uid-b");
    let refs = [&deleted];
    let pod = |name: &str, owner: Option<&str>| {
        let owners: Vec<Value> = owner.into_iter().map(|u| json!({"uid": u})).collect();
        json!({"metadata": {"name": name, "ownerReferences": owners}})
    };
    assert!(leftover_pod(&pod("r-b-pod", None), &refs));
    assert!(leftover_pod(&pod("r-b-pod", Some("uid-b")), &refs));
    assert!(leftover_pod(&pod("r-b-pod-retry1", Some("uid-b")), &refs));
    // Tekton's re-created TaskRun owns it now.
    assert!(!leftover_pod(&pod("r-b-pod", Some("uid-new")), &refs));
    // Not a TaskRun attempt's pod.
    assert!(!leftover_pod(&pod("r-b-helper", None), &refs));
    // A hashed attempt pod name (listed by the TaskRun's label) counts.
    assert!(leftover_pod(
        &pod("r-b0123456789abcdef0123456789abcdef-pod", None),
        &refs
    ));
}

/// The runs attempt 1 lost, as the history keeps them.
async fn lost_runs(s: &Scenario) -> Vec<Value> {
    let history = bounded(s.engine().history(s.ns, RUN, None))
        .await
        .expect("history");
    let text = history["data"]["attempt-1.json"].as_str().unwrap_or("{}");
    let lost: Value = serde_json::from_str(text).expect("json");
    lost["runs"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_long_log_is_archived_as_its_last_64_kib_from_a_line_start() {
    let s = Scenario::dag_failed();
    let lines: Vec<String> = (0..2_000)
        .map(|i| format!("{i:05} {}", "x".repeat(94)))
        .collect();
    s.api
        .store()
        .logs
        .insert("demo-run-b-pod/step-compile".into(), lines.join("\n"));
    s.retry().await.expect("201");
    let lost = lost_runs(&s).await;
    let tail = lost[0]["logs"]["step-compile"]
        .as_str()
        .expect("archived log");
    assert!(
        tail.len() <= 64 * 1024 && tail.len() > 64 * 1024 - 100,
        "{}",
        tail.len()
    );
    assert!(tail.ends_with(lines[1_999].as_str()));
    assert!(
        tail.starts_with(|c: char| c.is_ascii_digit()),
        "from a line start"
    );
}

#[tokio::test]
async fn runs_being_deleted_are_archived_only_when_they_ended() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    // Interrupted before the archive (its create answered 500): nothing deleted yet.
    s.api
        .store()
        .before_next("patch pipelineruns demo-run", |store| {
            store.fail_next("create configmaps", 500);
        });
    s.retry_with(&engine).await.expect_err("500");
    assert!(s.api.store().requests_like("delete").is_empty());
    // Meanwhile b, which ended, and report, which runs again, are being deleted by someone else.
    let trs = taskruns(&s);
    let deleting = |t: &mut Value| {
        t["metadata"]["deletionTimestamp"] = json!("2026-12-06T00:00:00Z");
        t["metadata"]["finalizers"] = json!(["example.dev/hold"]);
    };
    s.api.store().modify(&trs, "demo-run-b", deleting);
    s.api.store().modify(&trs, "demo-run-report", |t| {
        deleting(t);
        t["status"]["conditions"][0]["status"] = json!("Unknown");
        t["status"]["conditions"][0]["reason"] = json!("Running");
    });
    // Their finalizers are released while the executor waits for them to go.
    let released = trs.clone();
    s.api.store().before_next("list pods", move |store| {
        for name in ["demo-run-b", "demo-run-report"] {
            store.modify(&released, name, |t| t["metadata"]["finalizers"] = json!([]));
        }
    });
    s.retry_with(&engine).await.expect("completed");
    let names: Vec<Value> = lost_runs(&s)
        .await
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names, [json!("demo-run-b")]);
    // Neither was deleted again: both were already going.
    assert!(s.api.store().requests_like("delete").is_empty());
}

/// Attempt 2 of `dag-failed` claimed (b and report already deleted), now also replacing a failed
/// CustomRun `demo-run-w` of the run: the run references it and it is stored, owned by the run.
async fn with_custom_run(
    s: &Scenario,
    engine: &Engine,
    change: impl FnOnce(&mut Value),
) -> AttemptRecord {
    let mut record = claimed(s, engine).await;
    let customruns = collection(crate::retry::cluster::CUSTOMRUNS, s.ns);
    let uid = s.uid.clone();
    let mut w = json!({"apiVersion": "tekton.dev/v1beta1", "kind": "CustomRun",
        "metadata": {"name": "demo-run-w", "namespace": s.ns,
            "labels": {"tekton.dev/pipelineRun": RUN, "tekton.dev/pipelineTask": "w"},
            "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "name": RUN,
                "uid": uid, "controller": true}]},
        "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]}});
    change(&mut w);
    let w = s.api.store().insert(&customruns, w);
    s.api.store().modify(&s.runs(), RUN, |r| {
        if let Some(refs) = r["status"]["childReferences"].as_array_mut() {
            refs.push(
                json!({"apiVersion": "tekton.dev/v1beta1", "kind": "CustomRun",
                "name": "demo-run-w", "pipelineTaskName": "w"}),
            );
        }
    });
    let w_uid = w["metadata"]["uid"].as_str().unwrap_or_default();
    record
        .replace_now
        .push(RunRef::new("CustomRun", "demo-run-w", w_uid));
    record
}

/// Held by a finalizer of its controller.
fn held(w: &mut Value) {
    w["metadata"]["finalizers"] = json!(["example.dev/hold"]);
}

/// The executor completing `record` on the scenario's run as it is now.
async fn complete(
    s: &Scenario,
    engine: &Engine,
    record: &AttemptRecord,
) -> Result<Value, ApiError> {
    bounded(
        engine
            .executor()
            .complete(s.ns, &s.run(), record, None, None),
    )
    .await
}

#[tokio::test]
async fn a_custom_run_the_attempt_replaces_is_deleted_and_waited_for_by_reading() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let record = with_custom_run(&s, &engine, |_| {}).await;
    complete(&s, &engine, &record).await.expect("reset");
    assert!(s.names(crate::retry::cluster::CUSTOMRUNS).is_empty());
    assert_eq!(
        s.api.store().requests_like("delete customruns"),
        ["delete customruns demo-run-w"]
    );
    assert!(
        !s.api.store().requests_like("get customruns").is_empty(),
        "read until gone"
    );
    assert_eq!(condition(&s.run()).0, "Unknown");
}

#[tokio::test]
async fn a_custom_run_held_by_a_finalizer_is_named_and_one_that_cannot_be_read_is_a_500() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let record = with_custom_run(&s, &engine, |w| {
        w["metadata"]["finalizers"] = json!(["results.tekton.dev/customrun"]);
    })
    .await;
    let err = complete(&s, &engine, &record).await.expect_err("504");
    assert_eq!(err.reason, StatusReason::Timeout);
    assert!(
        err.message.contains("results.tekton.dev/customrun"),
        "{err:?}"
    );
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let record = with_custom_run(&s, &engine, |_| {}).await;
    s.api.store().fail_next("get customruns", 500);
    let err = complete(&s, &engine, &record).await.expect_err("500");
    assert!(err.message.contains("waiting for CustomRun"), "{err:?}");
}

#[tokio::test]
async fn a_custom_run_tekton_created_again_under_the_same_name_is_not_waited_for() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let record = with_custom_run(&s, &engine, held).await;
    // Deleted and created again at once (a new uid): the replaced one is gone.
    let customruns = collection(crate::retry::cluster::CUSTOMRUNS, s.ns);
    s.api
        .store()
        .before_next("delete customruns", move |store| {
            let mut again = store.get(&customruns, "demo-run-w").expect("w");
            store.modify(&customruns, "demo-run-w", |w| {
                w["metadata"]["finalizers"] = json!([])
            });
            if let Some(meta) = again["metadata"].as_object_mut() {
                meta.remove("uid");
                meta.remove("finalizers");
            }
            store.insert(&customruns, again);
        });
    complete(&s, &engine, &record).await.expect("reset");
    assert_eq!(s.names(crate::retry::cluster::CUSTOMRUNS), ["demo-run-w"]);
}

/// Runs `change` before the next spec clear of the run.
fn before_spec_clear(s: &Scenario, change: impl FnOnce(&mut Store) + Send + 'static) {
    let mut change = Some(change);
    s.api.store().hook(Box::new(move |store: &mut Store, seen| {
        if seen.patched() == "spec" {
            if let Some(change) = change.take() {
                change(store);
            }
        }
        None
    }));
}

#[tokio::test]
async fn a_spec_clear_that_lost_a_race_is_made_again_and_a_failed_one_is_a_500() {
    let s = Scenario::load("cancelled", &["02-cancelled"]);
    let runs = s.runs();
    before_spec_clear(&s, move |store| {
        store.modify(&runs, RUN, |r| {
            r["metadata"]["labels"]["seen"] = json!("yes")
        });
    });
    s.retry().await.expect("201");
    let answers: Vec<u16> = {
        let store = s.api.store();
        let clears = store.written.iter().filter(|(w, _)| w.patched() == "spec");
        clears.map(|(_, code)| *code).collect()
    };
    // Refused at the raced version (and at the versions the watch then replays), made once.
    assert_eq!(
        (answers.first(), answers.last()),
        (Some(&409), Some(&200)),
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|c| **c == 200).count(),
        1,
        "{answers:?}"
    );
    assert!(s.run()["spec"].get("status").is_none());
    let s = Scenario::load("cancelled", &["02-cancelled"]);
    before_spec_clear(&s, |store| {
        store.fail_next("patch pipelineruns demo-run", 500)
    });
    let err = s.retry().await.expect_err("500");
    assert!(err.message.contains("clearing spec.status"), "{err:?}");
}

#[tokio::test]
async fn a_custom_run_its_controller_releases_a_little_later_is_waited_for() {
    let s = Scenario::dag_failed();
    let engine = s.engine();
    let record = with_custom_run(&s, &engine, held).await;
    // Its controller lets it go 100 ms after the delete (the wait allows 500 ms).
    let (api, customruns) = (
        s.api.clone(),
        collection(crate::retry::cluster::CUSTOMRUNS, s.ns),
    );
    s.api.store().react(Box::new(move |_: &mut Store, seen, _| {
        if seen.verb == "delete" && seen.collection == customruns {
            let (api, customruns) = (api.clone(), customruns.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                api.store().modify(&customruns, "demo-run-w", |w| {
                    w["metadata"]["finalizers"] = json!([]);
                });
            });
        }
    }));
    complete(&s, &engine, &record)
        .await
        .expect("reset once it was gone");
    assert!(s.names(crate::retry::cluster::CUSTOMRUNS).is_empty());
}

//! Shapes where the real Tekton controller disagrees with a naive reset, against the whole
//! sandbox (the simulator models each rule from Tekton's source): matrix combinations by
//! position, failed finally runs under `finally: Keep`, result references in an embedded
//! taskSpec, the tasks timeout of a finally-only retry, runs managed by another controller, the
//! affinity assistant of tasks without PVC workspaces.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::time::Duration;

use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use sandbox_support::*;
use serde_json::{json, Value};
use tekton_retry_sandbox::faults::{FaultAction, FaultRule};
use tekton_retry_test_support::async_test_cases;

/// `base` with the fields of the JSON object `extra` set (replaced) on it.
fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(o), Value::Object(e)) = (base.as_object_mut(), extra) {
        o.extend(e);
    }
    base
}

/// The sandbox annotation that fails the given tasks (`b`, `b,report`, `b:2`, …).
fn fail(tasks: &str) -> Value {
    json!({"sandbox.retry.tekton.dev/fail": tasks})
}

/// Creates a PipelineRun with an inline pipeline spec and the given annotations and extra spec
/// fields; returns it as created.
async fn create_inline_run(
    client: &kube::Client,
    name: &str,
    pipeline_spec: Value,
    annotations: Value,
    extra_spec: Value,
) -> Value {
    let spec = with(
        json!({"pipelineSpec": pipeline_spec, "timeouts": {"pipeline": "1h0m0s"}}),
        extra_spec,
    );
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": NS, "annotations": annotations},
        "spec": spec,
    }))
    .expect("object");
    let created = runs(client)
        .create(&PostParams::default(), &obj)
        .await
        .expect("create run");
    serde_json::to_value(created).expect("json")
}

/// [`create_inline_run`], then waits until the run is done and asserts it failed; returns it.
async fn failed_inline_run(
    client: &kube::Client,
    name: &str,
    pipeline_spec: Value,
    annotations: Value,
    extra_spec: Value,
) -> Value {
    create_inline_run(client, name, pipeline_spec, annotations, extra_spec).await;
    let run = wait_done(client, name).await;
    assert!(is_failed(&run), "{run:#}");
    run
}

/// A task with an inline spec of one step, with the given fields set on it.
fn task(name: &str, extra: Value) -> Value {
    with(
        json!({"name": name, "taskSpec": {"steps": [{"name": "main", "image": "busybox", "script": "true"}]}}),
        extra,
    )
}

/// The run's TaskRuns by name.
async fn taskruns_of(client: &kube::Client, run: &str) -> Vec<Value> {
    let lp = ListParams::default().labels(&format!("tekton.dev/pipelineRun={run}"));
    let mut out: Vec<Value> = taskruns(client)
        .list(&lp)
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("json"))
        .collect();
    out.sort_by_key(|t| {
        t["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    out
}

fn uid(v: &Value) -> String {
    v["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The retry of `run` with `body` answers 504 and its message names each of `holders` (what the
/// server waited for).
async fn retry_waits_for(client: &kube::Client, run: &str, body: Value, holders: &[&str]) {
    let answer = retry_answers(client, run, body, 504).await;
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        holders.iter().all(|h| message.contains(h)),
        "{holders:?}: {answer:#}"
    );
}

async fn wait_gone(client: &kube::Client, name: &str) {
    let api = taskruns(client);
    eventually(20, &format!("{name} not deleted"), || async {
        try_get(&api, name).await.is_none()
    })
    .await;
}

/// A matrix task with one failed combination and one deleted by hand: every combination runs
/// again with its own parameters. Tekton gives the i-th name left in `childReferences` the i-th
/// combination, so a dangling reference left by the reset would re-create one TaskRun with
/// combination 0's parameters and the run would end `Succeeded` with two combinations never run.
#[tokio::test]
async fn matrix_with_a_failed_and_a_deleted_combination_reruns_every_combination() {
    let (sb, admin) = start_as_admin().await;
    let spec = json!({"tasks": [task("m", json!({
        "taskSpec": {"params": [{"name": "os", "type": "string"}],
            "steps": [{"name": "main", "image": "busybox", "script": "echo $(params.os)"}]},
        "matrix": {"params": [{"name": "os", "value": ["linux", "mac", "windows"]}]},
    }))]});
    failed_inline_run(&admin, "mx", spec, fail("mx-m-1"), json!({})).await;
    taskruns(&admin)
        .delete("mx-m-2", &DeleteParams::default())
        .await
        .expect("delete a combination by hand");
    wait_gone(&admin, "mx-m-2").await;

    retry_to_success(&admin, "mx", json!({})).await;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let got: Vec<(String, String)> = taskruns_of(&admin, "mx")
        .await
        .iter()
        .map(|t| {
            (
                text(&t["metadata"]["name"]),
                text(&t["spec"]["params"][0]["value"]),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("mx-m-0".to_string(), "linux".to_string()),
            ("mx-m-1".to_string(), "mac".to_string()),
            ("mx-m-2".to_string(), "windows".to_string()),
        ],
        "every combination, each with its own parameters"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// `finally: Keep` with a failed finally run: the failed finally run runs again (Tekton counts a
/// kept failed finally run into the new outcome), the succeeded one is kept, the run succeeds.
#[tokio::test]
async fn keep_finally_reruns_a_failed_finally_run_and_keeps_the_succeeded_one() {
    let (sb, admin) = start_as_admin().await;
    let spec = json!({
        "tasks": [task("a", json!({})), task("b", json!({"runAfter": ["a"]}))],
        "finally": [task("report", json!({})), task("notify", json!({}))],
    });
    failed_inline_run(&admin, "fk", spec, fail("b,report"), json!({})).await;
    let notify = taskrun(&admin, "fk-notify").await;
    let report = taskrun(&admin, "fk-report").await;

    let keep = json!({"spec": {"finally": "Keep"}});
    let (body, _) = retry_to_success(&admin, "fk", keep).await;
    assert_eq!(retried_names(&body), ["b", "report"], "{body:#}");
    assert_eq!(
        uid(&taskrun(&admin, "fk-notify").await),
        uid(&notify),
        "the succeeded finally run is kept"
    );
    assert_ne!(
        uid(&taskrun(&admin, "fk-report").await),
        uid(&report),
        "the failed finally run ran again"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A task whose embedded step script uses `$(tasks.a.results.x)` depends on `a` (Tekton scans the
/// steps and sidecars of an embedded taskSpec): restarting `a` re-runs it with the new value.
#[tokio::test]
async fn result_reference_in_an_embedded_step_script_is_a_dependency() {
    let (sb, admin) = start_as_admin().await;
    let spec = json!({"tasks": [
        task("a", json!({"taskSpec": {"results": [{"name": "x"}],
            "steps": [{"name": "main", "image": "busybox", "script": "echo v > $(results.x.path)"}]}})),
        task("c", json!({"taskSpec": {
            "steps": [{"name": "main", "image": "busybox", "script": "echo $(tasks.a.results.x)"}]}})),
        task("b", json!({"runAfter": ["c"]})),
    ]});
    let annotations = with(
        fail("b"),
        json!({"sandbox.retry.tekton.dev/results": "attempt"}),
    );
    failed_inline_run(&admin, "sr", spec, annotations, json!({})).await;
    let script = |tr: &Value| {
        tr["spec"]["taskSpec"]["steps"][0]["script"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let a_value = |tr: &Value| {
        tr["status"]["results"][0]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let c_before = taskrun(&admin, "sr-c").await;
    let a_before = taskrun(&admin, "sr-a").await;
    assert_eq!(
        script(&c_before),
        format!("echo {}", a_value(&a_before)),
        "c waited for a and got its value"
    );

    let restart_a = json!({"spec": {"restartTasks": ["a"]}});
    let (body, _) = retry_to_success(&admin, "sr", restart_a).await;
    assert_eq!(retried_names(&body), ["a", "c", "b"], "{body:#}");
    let a_after = taskrun(&admin, "sr-a").await;
    let c_after = taskrun(&admin, "sr-c").await;
    assert_ne!(
        a_value(&a_after),
        a_value(&a_before),
        "a produced a new value"
    );
    assert_eq!(
        script(&c_after),
        format!("echo {}", a_value(&a_after)),
        "c ran again with a's new value"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// The DAG succeeded, a finally task failed, and `timeouts.tasks` (here `pipeline − finally`) has
/// passed: Tekton would end a finally-only retry `PipelineRunTimeout`, so it is refused up front
/// and the run is left as it was.
#[tokio::test]
async fn a_finally_only_retry_after_the_tasks_timeout_is_refused() {
    let (sb, admin) = start_no_replay("admin").await;
    let spec = json!({
        "tasks": [task("a", json!({}))],
        "finally": [task("report", json!({}))],
    });
    let timeouts = json!({"timeouts": {"pipeline": "1h0m0s", "finally": "59m52s"}});
    let run = failed_inline_run(&admin, "tt", spec, fail("report"), timeouts).await;
    assert_eq!(succeeded(&run).1, "Failed", "{run:#}");
    // Let the 8 s tasks budget (pipeline − finally) pass, counted from the run's start.
    let started =
        chrono::DateTime::parse_from_rfc3339(run["status"]["startTime"].as_str().expect("start"))
            .expect("time");
    let until = started + chrono::TimeDelta::seconds(9);
    let wait = (until.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait).await;
    let body = retry_answers(&admin, "tt", json!({}), 422).await;
    assert_eq!(body["reason"], "Invalid", "{body:#}");
    assert_eq!(
        body["details"]["causes"][0]["field"], "spec.timeouts.tasks",
        "{body:#}"
    );
    let same = get(&runs(&admin), "tt").await;
    assert_eq!(
        same["status"]["completionTime"], run["status"]["completionTime"],
        "not reset"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// `spec.managedBy` names another controller: Tekton never reconciles the run, so a reset would
/// leave it running forever with nothing scheduled. Refused.
#[tokio::test]
async fn a_run_managed_by_another_controller_is_refused() {
    let (sb, admin) = start_no_replay("admin").await;
    let spec = json!({"tasks": [task("a", json!({}))]});
    let managed_by = json!({"managedBy": "example.dev/other-controller"});
    let sim = sb
        .simulator
        .as_ref()
        .expect("the sandbox runs the simulator");
    let before = sim.passes();
    create_inline_run(&admin, "mb", spec.clone(), json!({}), managed_by).await;
    // The other controller ran it and failed it (Tekton never touches it): a whole pass of the
    // simulator that began after the run was created left it as it was.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sim.passes() < before + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the simulator passes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let untouched = get(&runs(&admin), "mb").await;
    assert!(
        untouched
            .get("status")
            .is_none_or(|s| s.get("conditions").is_none()),
        "the simulator does not reconcile it: {untouched:#}"
    );
    let now = chrono::Utc::now();
    let t = |ago: i64| {
        (now - chrono::TimeDelta::seconds(ago))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let status = json!({"status": {
        "startTime": t(60),
        "completionTime": t(30),
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed",
            "message": "Tasks Completed: 1 (Failed: 1, Cancelled 0), Skipped: 0",
            "lastTransitionTime": t(30)}],
        "pipelineSpec": spec,
    }});
    runs(&admin)
        .patch_status("mb", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status written by the other controller");
    let body = retry_answers(&admin, "mb", json!({}), 422).await;
    assert_eq!(
        body["details"]["causes"][0]["field"], "spec.managedBy",
        "{body:#}"
    );
    assert!(is_failed(&get(&runs(&admin), "mb").await), "not reset");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// The message of the first cause of a refusal.
fn first_cause(answer: &Value) -> &str {
    answer["details"]["causes"][0]["message"]
        .as_str()
        .unwrap_or_default()
}

/// A producer under `onError: continue` failed without its result: Tekton fails the consumer's
/// validation and the run ends `PipelineValidationFailed` ("Failed Validation: 1 (…)"), a runtime
/// outcome. A retry that keeps the producer would fail the same way (422 naming it); one that
/// restarts the producer recovers the run.
#[tokio::test]
async fn a_runtime_validation_failure_is_recovered_by_restarting_the_producer() {
    let (sb, admin) = start_no_replay("admin").await;
    let spec = json!({"tasks": [
        task("a", json!({"onError": "continue", "taskSpec": {"results": [{"name": "x"}],
            "steps": [{"name": "main", "image": "busybox", "script": "echo v > $(results.x.path)"}]}})),
        task("c", json!({"params": [{"name": "p", "value": "$(tasks.a.results.x)"}],
            "taskSpec": {"params": [{"name": "p", "type": "string"}],
                "steps": [{"name": "main", "image": "busybox", "script": "echo $(params.p)"}]}})),
    ]});
    let run = failed_inline_run(&admin, "pv", spec, fail("a"), json!({})).await;
    assert_eq!(succeeded(&run).1, "PipelineValidationFailed", "{run:#}");
    let message = run["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains(", Failed Validation: 1 ("), "{message}");
    assert!(
        try_get(&taskruns(&admin), "pv-c").await.is_none(),
        "c was never created"
    );

    let body = retry_answers(&admin, "pv", json!({}), 422).await;
    let cause = first_cause(&body);
    assert!(
        cause.contains("\"a\"") && cause.contains("restartTasks"),
        "{body:#}"
    );

    let restart_a = json!({"spec": {"restartTasks": ["a"]}});
    let (body, _) = retry_to_success(&admin, "pv", restart_a).await;
    assert_eq!(retried_names(&body), ["a", "c"], "{body:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// Default `coschedule: workspaces`: only tasks binding a PVC workspace are pinned to the affinity
/// assistant Tekton deleted when the run finished. A retry that re-runs only a task without such a
/// workspace (while keeping the one with it) gets no affinity, so it is not refused.
#[tokio::test]
async fn a_rerun_task_without_claim_workspaces_is_not_pinned_to_the_gone_assistant() {
    let (sb, admin) = start_no_replay("admin").await;
    let pvcs: kube::Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        kube::Api::namespaced(admin.clone(), NS);
    let pvc = serde_json::from_value(json!({"metadata": {"name": "shared-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}))
    .expect("pvc");
    pvcs.create(&PostParams::default(), &pvc)
        .await
        .expect("pvc");
    let spec = json!({
        "workspaces": [{"name": "src"}],
        "tasks": [
            task("a", json!({"workspaces": [{"name": "w", "workspace": "src"}],
                "taskSpec": {"workspaces": [{"name": "w"}],
                    "steps": [{"name": "main", "image": "busybox", "script": "true"}]}})),
            task("b", json!({"runAfter": ["a"]})),
        ],
    });
    let binding = json!({"workspaces": [{"name": "src", "persistentVolumeClaim": {"claimName": "shared-data"}}]});
    failed_inline_run(&admin, "aa", spec, fail("b"), binding).await;
    let a = taskrun(&admin, "aa-a").await;
    let b = taskrun(&admin, "aa-b").await;
    assert!(annotation(&a, AA).is_some(), "a binds the PVC: pinned");
    assert!(annotation(&b, AA).is_none(), "b does not: not pinned");
    let (body, _) = retry_to_success(&admin, "aa", json!({})).await;
    assert_eq!(retried_names(&body), ["b"], "{body:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A gracefully stopped run (`StoppedRunFinally`) whose remaining DAG task was only skipped: the
/// retry resumes it (201) and it succeeds. Until `spec.status` is cleared every reconcile
/// completes the reset run again, so the retry must not answer 504 after a few quick rounds.
#[tokio::test]
async fn a_gracefully_stopped_run_is_resumed_without_a_504() {
    let (sb, admin) = start_no_replay("admin").await;
    let spec = json!({
        "tasks": [task("a", json!({})), task("b", json!({"runAfter": ["a"]})),
            task("c", json!({"runAfter": ["b"]}))],
        "finally": [task("report", json!({}))],
    });
    let slow_b = json!({"sandbox.retry.tekton.dev/duration": "b=2s"});
    create_inline_run(&admin, "gs", spec, slow_b, json!({})).await;
    let trs = taskruns(&admin);
    eventually(20, "b never started", || async {
        try_get(&trs, "gs-b").await.is_some()
    })
    .await;
    runs(&admin)
        .patch(
            "gs",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"status": "StoppedRunFinally"}})),
        )
        .await
        .expect("graceful stop");
    let run = wait_done(&admin, "gs").await;
    assert_eq!(
        succeeded(&run),
        ("False".into(), "Cancelled".into()),
        "{run:#}"
    );
    assert!(try_get(&trs, "gs-c").await.is_none(), "c was skipped");

    // The real controller completes the reset run again faster than the server reads it back
    // (six rounds lost in 0.5 s on a real cluster): the server's reads of the run are slowed
    // so that the simulator's reconcile always comes first.
    let slow = FaultRule::new(
        "get",
        "pipelineruns",
        FaultAction::Latency(Duration::from_millis(150)),
    )
    .named(NS, "gs")
    .subresource("")
    .by_user(&tekton_retry_sandbox::policy::server_user().username);
    let id = sb.emulator.faults().add(slow);
    let (code, body) = retry(&admin, "gs", json!({}), "").await;
    assert!(sb.emulator.faults().matched(id) >= 1, "the latency applied");
    sb.emulator.faults().remove(id);
    assert_eq!(code, 201, "{body:#}");
    let after = wait_done(&admin, "gs").await;
    assert!(is_succeeded(&after), "{after:#}");
    assert!(try_get(&trs, "gs-c").await.is_some(), "c ran");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// The Task of the failed task was deleted after the failure: Tekton would fail the reset run
/// `CouldntGetTask` at once and create nothing. Known up front, the retry is refused (422); when
/// the server cannot read the Task, that failure is the attempt's outcome (201, then recorded),
/// not a reason to write the reset again and again until a 504.
#[tokio::test]
async fn a_task_deleted_after_the_failure_is_refused_or_an_outcome_never_a_write_loop() {
    let (sb, admin) = start_no_replay("admin").await;
    failed_run(&admin, "gone-task", "b").await;
    let tasks: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(admin.clone(), NS, &resource("Task", "tasks"));
    tasks
        .delete("build", &DeleteParams::default())
        .await
        .expect("delete the Task of b");

    let body = retry_answers(&admin, "gone-task", json!({}), 422).await;
    let cause = first_cause(&body);
    assert!(
        cause.contains("\"build\"") && cause.contains("CouldntGetTask"),
        "{body:#}"
    );
    assert!(is_failed(&get(&runs(&admin), "gone-task").await));

    // The server cannot read Tasks (here: refused): it cannot know, Tekton decides.
    let server = tekton_retry_sandbox::policy::server_user().username;
    let faults = sb.emulator.faults();
    faults.add(FaultRule::new("get", "tasks", api_failure(403)).by_user(&server));
    faults.clear_log();
    retry_answers(&admin, "gone-task", json!({}), 201).await;
    let run = wait_done(&admin, "gone-task").await;
    assert_eq!(succeeded(&run).1, "CouldntGetTask", "{run:#}");
    let status_writes = faults
        .requests()
        .iter()
        .filter(|q| {
            q.user == server
                && q.verb == "patch"
                && q.resource == "pipelineruns"
                && q.subresource == "status"
                && q.name == "gone-task"
        })
        .count();
    assert_eq!(status_writes, 1, "one reset, no write loop");
    // The recorder records the outcome of attempt 2.
    let run = wait_run(&admin, "gone-task", 20, |v| {
        last_retry(v)["outcome"].as_str().is_some()
    })
    .await;
    assert_eq!(last_retry(&run)["attempt"], 2, "{run:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A finalizer of another controller (here Tekton Chains') holds the failed TaskRun past the
/// wait: the answer names the finalizer, and once it is released the next request completes
/// the attempt.
#[tokio::test]
async fn a_finalizer_holding_a_run_is_named_in_the_answer() {
    let (sb, admin) = start_waiting_gone(Duration::from_secs(2), "fin").await;
    let set_finalizers = |finalizers: Value| {
        let patch = json!({"metadata": {"finalizers": finalizers}});
        let trs = taskruns(&admin);
        async move {
            trs.patch("fin-b", &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    };
    set_finalizers(json!(["chains.tekton.dev/taskrun"]))
        .await
        .expect("Chains' finalizer");
    let holders = ["chains.tekton.dev/taskrun", "fin-b"];
    retry_waits_for(&admin, "fin", json!({}), &holders).await;
    // Chains is done with it.
    set_finalizers(Value::Null)
        .await
        .expect("finalizer released");
    retry_to_success(&admin, "fin", json!({})).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A task with `retries: 1` failed twice: the history keeps the log of both attempts' pods
/// (`-pod` from `status.retriesStatus`, `-pod-retry1` the last), not only the last.
#[tokio::test]
async fn the_logs_of_every_automatic_retry_are_archived() {
    let (sb, admin) = start_as_admin().await;
    let spec = json!({"tasks": [task("a", json!({})), task("b", json!({"runAfter": ["a"], "retries": 1}))]});
    let run = failed_inline_run(&admin, "lg", spec, fail("b:2"), json!({})).await;
    let b = taskrun(&admin, "lg-b").await;
    let first = b["status"]["retriesStatus"][0]["podName"]
        .as_str()
        .expect("first attempt's pod")
        .to_string();
    let last = b["status"]["podName"]
        .as_str()
        .expect("last pod")
        .to_string();
    assert_eq!(
        (first.as_str(), last.as_str()),
        ("lg-b-pod", "lg-b-pod-retry1")
    );
    let store = sb.emulator.store();
    store.set_pod_log(NS, &first, Some("step-main"), "attempt 1: flaky network\n");
    store.set_pod_log(NS, &last, Some("step-main"), "attempt 2: flaky again\n");

    retry_answers(&admin, "lg", json!({}), 201).await;
    let archive = archived_attempt(&admin, &uid(&run), 1).await;
    let archived_b = archived_run(&archive, "lg-b");
    assert_eq!(
        archived_b["logs"]["step-main"], "attempt 2: flaky again\n",
        "{archived_b:#}"
    );
    assert_eq!(
        archived_b["logs"]["lg-b-pod/step-main"], "attempt 1: flaky network\n",
        "{archived_b:#}"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A task skipped by a `when` that reads no result of a re-run task is skipped again by Tekton:
/// the answer lists it as kept, not as retried.
#[tokio::test]
async fn a_task_tekton_will_skip_again_is_not_reported_as_retried() {
    let (sb, admin) = start_as_admin().await;
    let spec = json!({"tasks": [
        task("a", json!({})),
        task("w", json!({"when": [{"input": "no", "operator": "in", "values": ["yes"]}]})),
    ]});
    let run = failed_inline_run(&admin, "ws", spec, fail("a"), json!({})).await;
    assert_eq!(run["status"]["skippedTasks"][0]["name"], "w", "{run:#}");
    let (body, after) = retry_to_success(&admin, "ws", json!({})).await;
    assert_eq!(retried_names(&body), ["a"], "{body:#}");
    assert_eq!(body["status"]["preservedTasks"], json!(["w"]), "{body:#}");
    assert_eq!(
        after["status"]["skippedTasks"][0]["name"], "w",
        "skipped again: {after:#}"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// The failed TaskRun was deleted elsewhere with `--cascade=orphan`: its failed pod stays, without
/// an owner. Tekton would re-create the TaskRun under the same name and adopt that pod, failing at
/// once; the server waits for it and says so, and completes the attempt once it is gone.
#[tokio::test]
async fn an_orphaned_pod_of_a_run_deleted_by_hand_blocks_the_reset_until_it_is_gone() {
    let (sb, admin) = start_waiting_gone(Duration::from_secs(2), "op").await;
    taskruns(&admin)
        .delete("op-b", &DeleteParams::orphan())
        .await
        .expect("delete b, orphaning its pod");
    wait_gone(&admin, "op-b").await;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(admin.clone(), NS);
    let pod = pods.get("op-b-pod").await.expect("the orphaned pod stays");
    assert!(pod.metadata.owner_references.unwrap_or_default().is_empty());

    let restart_b = json!({"spec": {"restartTasks": ["b"]}});
    retry_waits_for(&admin, "op", restart_b.clone(), &["op-b-pod"]).await;
    assert!(
        is_failed(&get(&runs(&admin), "op").await),
        "not reset while the pod is there"
    );
    pods.delete("op-b-pod", &DeleteParams::default())
        .await
        .expect("delete the orphan");
    retry_to_success(&admin, "op", restart_b).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A TaskRun name over 59 characters gets a hashed pod name (`kmeta.ChildName`:
/// `<27 characters><md5>-pod`). A leftover pod of that name (its owner reference removed, so the
/// garbage collector leaves it) would be adopted by the re-created TaskRun: the server must
/// recognise it although its name does not start with the TaskRun's.
#[tokio::test]
async fn a_leftover_pod_with_a_hashed_name_is_waited_for() {
    let run = "nightly-release-build-for-the-payments-service-eu-west-1-a";
    let (sb, admin) = start_waiting_gone(Duration::from_secs(2), run).await;
    let b = taskrun(&admin, &format!("{run}-b")).await;
    // md5("nightly-release-build-for-the-payments-service-eu-west-1-a-b"), from Python's hashlib.
    let hashed = "nightly-release-build-for-t63ae731b6ccd2beb9b3b84896bb0eec2-pod";
    assert_eq!(b["status"]["podName"], hashed, "{b:#}");
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(admin.clone(), NS);
    pods.patch(
        hashed,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"ownerReferences": null}})),
    )
    .await
    .expect("the pod loses its owner");

    retry_waits_for(&admin, run, json!({}), &[hashed]).await;
    pods.delete(hashed, &DeleteParams::default())
        .await
        .expect("delete the leftover");
    retry_to_success(&admin, run, json!({})).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

/// The namespaced API of a core or apps resource in the test namespace.
fn api_of(
    client: &kube::Client,
    group: &str,
    kind: &str,
    plural: &str,
) -> kube::Api<DynamicObject> {
    let api_version = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    let ar = kube::api::ApiResource {
        group: group.into(),
        version: "v1".into(),
        api_version,
        kind: kind.into(),
        plural: plural.into(),
    };
    kube::Api::namespaced_with(client.clone(), NS, &ar)
}

fn claims(client: &kube::Client) -> kube::Api<DynamicObject> {
    api_of(
        client,
        "",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
    )
}

fn statefulsets(client: &kube::Client) -> kube::Api<DynamicObject> {
    api_of(client, "apps", "StatefulSet", "statefulsets")
}

/// Sets Tekton's `coschedule` feature flag (ConfigMap `tekton-pipelines/feature-flags`).
async fn set_coschedule(client: &kube::Client, mode: &str) {
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "tekton-pipelines");
    let cm = serde_json::from_value(json!({"metadata": {"name": "feature-flags"},
        "data": {"coschedule": mode}}))
    .expect("configmap");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("feature flags");
}

/// Polls `f` every 50 ms for up to `secs` seconds until it holds.
async fn eventually<F, Fut>(secs: u64, what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pipeline workspace `src` bound to a claim template.
fn template_binding() -> Value {
    json!({"workspaces": [{"name": "src", "volumeClaimTemplate": {"spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}}]})
}

/// A task mounting pipeline workspace `src` as `w`.
fn ws_task(name: &str, extra: Value) -> Value {
    let mounted = task(
        name,
        json!({"workspaces": [{"name": "w", "workspace": "src"}],
            "taskSpec": {"workspaces": [{"name": "w"}],
                "steps": [{"name": "main", "image": "busybox", "script": "ls $(workspaces.w.path)"}]}}),
    );
    with(mounted, extra)
}

/// Pipeline tasks `a` then `b`, both mounting pipeline workspace `src` (bound to a claim template
/// by [`template_binding`]).
fn two_ws_tasks() -> Value {
    json!({"workspaces": [{"name": "src"}],
        "tasks": [ws_task("a", json!({})), ws_task("b", json!({"runAfter": ["a"]}))]})
}

/// The claim a TaskRun's first workspace binds.
fn claim_of(tr: &Value) -> String {
    tr["spec"]["workspaces"][0]["persistentVolumeClaim"]["claimName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

const AA: &str = "pipeline.tekton.dev/affinity-assistant";

/// The retry of `run` is refused (422) for the gone affinity assistant and leaves it failed.
async fn refused_for_the_assistant(client: &kube::Client, run: &str, body: Value) {
    let answer = retry_answers(client, run, body, 422).await;
    assert!(
        answer.to_string().contains("affinity assistant"),
        "{answer:#}"
    );
    assert!(is_failed(&get(&runs(client), run).await), "not reset");
}

/// A `volumeClaimTemplate` workspace: Tekton creates the claim once per run (named from the
/// workspace and the run's uid, owned by the run) and the affinity assistant next to it, and
/// deletes only the assistant when the run is done. A retry that keeps no child run starts over:
/// Tekton finds the same claim (its data kept) and creates the assistant again, so the re-run
/// pods can be scheduled.
#[tokio::test]
async fn a_retry_that_starts_over_keeps_the_template_claim_and_gets_a_new_assistant() {
    let (sb, admin) = start_no_replay("admin").await;
    let run = failed_inline_run(&admin, "tp", two_ws_tasks(), fail("a"), template_binding()).await;
    let a = taskrun(&admin, "tp-a").await;
    let claim = claim_of(&a);
    assert!(claim.starts_with("pvc-"), "{a:#}");
    let pvc = get(&claims(&admin), &claim).await;
    assert_eq!(
        pvc["metadata"]["ownerReferences"][0]["uid"], run["metadata"]["uid"],
        "the claim belongs to the run: {pvc:#}"
    );
    let assistant = annotation(&a, AA).expect("a is pinned to the assistant");
    let sets = statefulsets(&admin);
    eventually(10, "the assistant is deleted with the done run", || async {
        try_get(&sets, &assistant).await.is_none()
    })
    .await;

    retry_to_success(&admin, "tp", json!({})).await;
    assert_eq!(
        uid(&get(&claims(&admin), &claim).await),
        uid(&pvc),
        "the same claim, its data kept"
    );
    let pods = api_of(&admin, "", "Pod", "pods");
    for name in ["tp-a", "tp-b"] {
        let tr = taskrun(&admin, name).await;
        assert_eq!(claim_of(&tr), claim, "{tr:#}");
        assert_eq!(annotation(&tr, AA).as_deref(), Some(assistant.as_str()));
        // The pod mounts the claim and must run next to the (new) assistant.
        let pod = get(&pods, &format!("{name}-pod")).await;
        let volumes = pod["spec"]["volumes"].to_string();
        assert!(volumes.contains(&claim), "{pod:#}");
        assert_eq!(
            pod["spec"]["affinity"]["podAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]
                ["matchLabels"]["app.kubernetes.io/instance"],
            assistant.as_str(),
            "{pod:#}"
        );
    }
    sb.shutdown(Duration::from_secs(2)).await;
}

/// With `tekton.dev/auto-cleanup-pvc: "true"` Tekton deletes the template claim with the done run.
/// A retry that starts over is still accepted: Tekton creates the claim again under the same name
/// (a new, empty volume; nothing kept needed the old data).
#[tokio::test]
async fn an_auto_cleaned_template_claim_is_created_again_when_the_retry_starts_over() {
    let (sb, admin) = start_no_replay("admin").await;
    let annotations = with(fail("a"), json!({"tekton.dev/auto-cleanup-pvc": "true"}));
    failed_inline_run(
        &admin,
        "tc",
        two_ws_tasks(),
        annotations,
        template_binding(),
    )
    .await;
    let claim = claim_of(&taskrun(&admin, "tc-a").await);
    let pvcs = claims(&admin);
    eventually(10, "the claim is deleted with the done run", || async {
        try_get(&pvcs, &claim).await.is_none()
    })
    .await;

    retry_to_success(&admin, "tc", json!({})).await;
    for name in ["tc-a", "tc-b"] {
        assert_eq!(claim_of(&taskrun(&admin, name).await), claim);
    }
    sb.shutdown(Duration::from_secs(2)).await;
}

/// `coschedule: disabled`: no assistant, no annotation, the template claim is never deleted. A
/// retry that keeps the task that wrote to the claim re-runs the failed one on the same claim.
#[tokio::test]
async fn without_coscheduling_a_rerun_task_gets_the_same_template_claim() {
    let (sb, admin) = start_no_replay("admin").await;
    set_coschedule(&admin, "disabled").await;
    failed_inline_run(&admin, "td", two_ws_tasks(), fail("b"), template_binding()).await;
    let a = taskrun(&admin, "td-a").await;
    assert_eq!(annotation(&a, AA), None, "{a:#}");
    let claim = claim_of(&a);
    let pvc = get(&claims(&admin), &claim).await;
    let sets = statefulsets(&admin)
        .list(&ListParams::default())
        .await
        .expect("list");
    assert!(sets.items.is_empty(), "no assistant when disabled");

    let (body, _) = retry_to_success(&admin, "td", json!({})).await;
    assert_eq!(retried_names(&body), ["b"], "{body:#}");
    assert_eq!(uid(&taskrun(&admin, "td-a").await), uid(&a), "a kept");
    assert_eq!(claim_of(&taskrun(&admin, "td-b").await), claim);
    assert_eq!(
        uid(&get(&claims(&admin), &claim).await),
        uid(&pvc),
        "the same claim, with what a wrote"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// Default `coschedule: workspaces`: a re-run task that binds the claim workspace would be pinned
/// to the assistant Tekton deleted with the done run and does not create again while a child is
/// kept. Refused (422). Doing that reset by hand shows why: the re-created TaskRun's pod stays
/// `Pending`, unschedulable.
#[tokio::test]
async fn a_rerun_task_pinned_to_the_gone_assistant_is_refused_and_would_never_be_scheduled() {
    let (sb, admin) = start_no_replay("admin").await;
    failed_inline_run(&admin, "tw", two_ws_tasks(), fail("b"), template_binding()).await;
    refused_for_the_assistant(&admin, "tw", json!({})).await;

    // The same reset by hand: delete b, drop its reference, flip the run back to running.
    taskruns(&admin)
        .delete("tw-b", &DeleteParams::default())
        .await
        .expect("delete b");
    wait_gone(&admin, "tw-b").await;
    let current = get(&runs(&admin), "tw").await;
    let keep: Vec<Value> = current["status"]["childReferences"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|c| c["pipelineTaskName"] == "a")
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let patch = json!({"status": {"completionTime": null, "childReferences": keep,
        "conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "reset by hand"}]}});
    runs(&admin)
        .patch_status("tw", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("reset");
    let api = taskruns(&admin);
    eventually(15, "b is re-created and left unschedulable", || async {
        try_get(&api, "tw-b").await.is_some_and(|b| {
            b["status"]["conditions"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("didn't match pod affinity rules"))
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = get(&api, "tw-b").await;
    assert_eq!(succeeded(&b), ("Unknown".into(), "Pending".into()), "{b:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// `coschedule: pipelineruns` / `isolate-pipelinerun`: one assistant per run, and every TaskRun
/// is pinned to it, a task without workspaces too. A retry that keeps a child is refused even for
/// such a task; one that starts over is accepted and Tekton creates the assistant (and the claim,
/// which these modes always delete with the run) again.
async fn per_pipelinerun_assistant_case(mode: &str, run_name: &str) {
    let (sb, admin) = start_no_replay("admin").await;
    set_coschedule(&admin, mode).await;
    let spec = json!({"workspaces": [{"name": "src"}],
        "tasks": [ws_task("a", json!({})), task("b", json!({"runAfter": ["a"]}))]});
    failed_inline_run(&admin, run_name, spec, fail("b"), template_binding()).await;
    let a = taskrun(&admin, &format!("{run_name}-a")).await;
    let b = taskrun(&admin, &format!("{run_name}-b")).await;
    let assistant = annotation(&a, AA).expect("a pinned");
    assert_eq!(
        annotation(&b, AA).as_deref(),
        Some(assistant.as_str()),
        "b is pinned although it binds no claim"
    );
    let claim = claim_of(&a);
    assert!(
        claim.ends_with(&format!("-{assistant}-0")),
        "the StatefulSet's claim: {claim}"
    );
    let pvcs = claims(&admin);
    eventually(
        10,
        "the assistant's claim is deleted with the run",
        || async { try_get(&pvcs, &claim).await.is_none() },
    )
    .await;

    refused_for_the_assistant(&admin, run_name, json!({})).await;
    let restart_a = json!({"spec": {"restartTasks": ["a"]}});
    retry_to_success(&admin, run_name, restart_a).await;
    sb.shutdown(Duration::from_secs(2)).await;
}

// Each case: (the coschedule mode, run name).
async_test_cases! { per_pipelinerun_assistant_case:
    per_pipelinerun_coscheduling_refuses_a_partial_retry_and_accepts_starting_over(
        "pipelineruns",
        "tr",
    );
    isolated_pipelinerun_coscheduling_refuses_a_partial_retry_and_accepts_starting_over(
        "isolate-pipelinerun",
        "ti",
    );
}

/// A pipeline with a child pipeline task (`pipelineSpec`, pipelines in pipelines): Tekton runs it
/// as a child PipelineRun owned by the run, referenced with kind PipelineRun.
fn pipeline_in_pipeline() -> Value {
    json!({"tasks": [
        task("a", json!({})),
        {"name": "sub", "runAfter": ["a"], "pipelineSpec": {"tasks": [task("x", json!({}))]}},
    ]})
}

/// Retrying a parent whose child PipelineRun failed re-runs it: the child is replaced by a new
/// one (Tekton re-creates it under the same name), the kept task stays, the run succeeds.
#[tokio::test]
async fn retrying_a_parent_whose_child_pipelinerun_failed_reruns_the_child() {
    let (sb, admin) = start_no_replay("admin").await;
    let run = failed_inline_run(&admin, "pp", pipeline_in_pipeline(), fail("x"), json!({})).await;
    let refs = run["status"]["childReferences"].clone();
    assert!(
        refs.as_array().is_some_and(|r| r
            .iter()
            .any(|c| c["kind"] == "PipelineRun" && c["name"] == "pp-sub")),
        "{run:#}"
    );
    let child = get(&runs(&admin), "pp-sub").await;
    assert!(is_failed(&child), "{child:#}");
    let a = taskrun(&admin, "pp-a").await;
    // The next child succeeds: the rule is copied from the parent at creation.
    runs(&admin)
        .patch(
            "pp",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"annotations": {"sandbox.retry.tekton.dev/fail": null}}}),
            ),
        )
        .await
        .expect("annotation removed");

    let (body, _) = retry_to_success(&admin, "pp", json!({})).await;
    assert_eq!(retried_names(&body), ["sub"], "{body:#}");
    let again = get(&runs(&admin), "pp-sub").await;
    assert_ne!(uid(&again), uid(&child), "a new child PipelineRun");
    assert!(is_succeeded(&again), "{again:#}");
    assert_eq!(uid(&taskrun(&admin, "pp-a").await), uid(&a), "a kept");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// The re-created child PipelineRun fails again at once, in the second the attempt started: only a
/// child re-created for the attempt tells that outcome from the old one (times have one-second
/// precision), and a child PipelineRun must count as one. The answer is 201 and the failure is
/// the attempt's outcome, not a loop of status writes ending in a 504.
#[tokio::test]
async fn a_child_pipelinerun_that_fails_again_at_once_is_the_attempts_outcome() {
    let (sb, admin) = start_no_replay("admin").await;
    let annotations = with(
        fail("x:100"),
        json!({"sandbox.retry.tekton.dev/duration": "1ms"}),
    );
    failed_inline_run(&admin, "pf", pipeline_in_pipeline(), annotations, json!({})).await;
    // Start the attempt early in a second, so that the re-failure lands in the same second.
    let ms = chrono::Utc::now().timestamp_subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1000 - ms) + 20)).await;
    retry_answers(&admin, "pf", json!({}), 201).await;
    let after = wait_run(&admin, "pf", 30, |v| {
        last_retry(v)["outcome"]
            .as_str()
            .is_some_and(|o| !o.is_empty())
    })
    .await;
    assert!(is_failed(&after), "{after:#}");
    assert_eq!(last_retry(&after)["attempt"], 2, "{after:#}");
    sb.shutdown(Duration::from_secs(2)).await;
}

/// A task guarded by `when` that runs after a failed task: skipped "PipelineRun was stopping"
/// (which overrides its `when`), so only its expression tells whether Tekton will skip it again.
async fn when_guarded_after_a_failure(name: &str, when: Value) {
    let (sb, admin) = start_no_replay("admin").await;
    let spec = json!({
        "params": [{"name": "deploy", "type": "string"}, {"name": "env", "type": "string", "default": "prod"}],
        "tasks": [task("a", json!({})), task("w", json!({"runAfter": ["a"], "when": when}))],
    });
    let params = json!({"params": [{"name": "deploy", "value": "no"}]});
    let run = failed_inline_run(&admin, name, spec, fail("a"), params).await;
    assert_eq!(
        run["status"]["skippedTasks"][0],
        json!({"name": "w", "reason": "PipelineRun was stopping", "whenExpressions": run["status"]["pipelineSpec"]["tasks"][1]["when"]}),
        "{run:#}"
    );
    let (body, after) = retry_to_success(&admin, name, json!({})).await;
    assert_eq!(retried_names(&body), ["a"], "{body:#}");
    assert_eq!(body["status"]["preservedTasks"], json!(["w"]), "{body:#}");
    assert_eq!(
        after["status"]["skippedTasks"][0]["reason"], "When Expressions evaluated to false",
        "skipped again, now by its when: {after:#}"
    );
    assert!(
        try_get(&taskruns(&admin), &format!("{name}-w"))
            .await
            .is_none(),
        "w never ran"
    );
    sb.shutdown(Duration::from_secs(2)).await;
}

/// `when: [{input: "$(params.deploy)", operator: in, values: ["yes"]}]` with `deploy: no`:
/// Tekton applies the parameter and skips `w` again; the answer lists it as kept.
#[tokio::test]
async fn a_params_driven_when_that_stays_false_is_not_reported_as_retried() {
    when_guarded_after_a_failure(
        "wp",
        json!([{"input": "$(params.deploy)", "operator": "in", "values": ["yes"]}]),
    )
    .await;
}

/// The same with a CEL `when` (`'$(params.deploy)' == 'yes' && '$(params.env)' in [...]`):
/// Tekton evaluates the substituted expression to false and skips `w` again.
#[tokio::test]
async fn a_cel_when_that_stays_false_is_not_reported_as_retried() {
    when_guarded_after_a_failure(
        "wc",
        json!([{"cel": "'$(params.deploy)' == 'yes' && '$(params.env)' in ['prod', 'staging']"}]),
    )
    .await;
}

//! The simulator driver through a real `kube::Client`, against a small fake API (an in-process
//! tower service over `MemoryCluster` storage: list/get/create/PUT status/merge PATCH/DELETE with
//! resourceVersion conflicts and `metav1.Status` errors). Covers a full run to completion and
//! race 2 with the `stale_read_lag` knob.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use tekton_retry_sandbox::simulator::memory::{Kind, MemoryCluster, MemoryError, Propagation};
use tekton_retry_sandbox::simulator::{util, Simulator, SimulatorOptions};
use tekton_retry_test_support::server::json_request;
use tokio::sync::Notify;

const FIX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/tekton/yaml"
);

struct Fake {
    store: Mutex<MemoryCluster>,
    pipelinerun_lists: Notify,
    /// Injected faults: (method, path suffix, remaining count) → 500.
    faults: Mutex<Vec<(Method, String, u32)>>,
}

fn kind_of(plural: &str) -> Option<Kind> {
    Some(match plural {
        "pipelines" => Kind::Pipeline,
        "tasks" => Kind::Task,
        "pipelineruns" => Kind::PipelineRun,
        "taskruns" => Kind::TaskRun,
        "pods" => Kind::Pod,
        _ => return None,
    })
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn from_err(e: MemoryError) -> (u16, Value) {
    match e {
        MemoryError::NotFound(..) => status(404, "NotFound", &e.to_string()),
        MemoryError::AlreadyExists(..) => status(409, "AlreadyExists", &e.to_string()),
        MemoryError::Conflict(..) => status(409, "Conflict", &e.to_string()),
        MemoryError::Invalid(_) => status(400, "BadRequest", &e.to_string()),
    }
}

fn handle(fake: &Fake, method: &Method, path: &str, body: Value) -> (u16, Value) {
    if let Ok(mut faults) = fake.faults.lock() {
        if let Some(f) = faults
            .iter_mut()
            .find(|f| f.0 == method && path.ends_with(&f.1) && f.2 > 0)
        {
            f.2 -= 1;
            return status(500, "InternalError", "injected fault");
        }
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/... or /apis/tekton.dev/v1/...
    let rest = match parts.as_slice() {
        ["api", "v1", rest @ ..] => rest,
        ["apis", "tekton.dev", "v1", rest @ ..] => rest,
        _ => return status(404, "NotFound", "unknown path"),
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, rest @ ..] => (Some(*ns), rest),
        rest => (None, rest),
    };
    let Some(kind) = rest.first().and_then(|p| kind_of(p)) else {
        return status(404, "NotFound", "unknown resource");
    };
    let name = rest.get(1).copied();
    let sub = rest.get(2).copied();
    let mut store = fake.store.lock().expect("store");
    store.set_now(Utc::now());
    let ok = |v: Value| (200, v);
    match (method.clone(), ns, name, sub) {
        (Method::GET, ns, None, None) => {
            let items = match ns {
                Some(ns) => store.list(kind, ns),
                None => store.list_all(kind),
            };
            if kind == Kind::PipelineRun {
                fake.pipelinerun_lists.notify_waiters();
            }
            ok(
                json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
            )
        }
        (Method::GET, Some(ns), Some(n), None) => match store.get(kind, ns, n) {
            Some(v) => ok(v),
            None => from_err(MemoryError::NotFound(kind, n.into())),
        },
        (Method::POST, Some(ns), None, None) => match store.create(ns, body) {
            Ok(v) => (201, v),
            Err(e) => from_err(e),
        },
        (Method::PUT, Some(_), Some(_), Some("status")) => store
            .replace_status(kind, &body)
            .map(ok)
            .unwrap_or_else(from_err),
        (Method::PATCH, Some(ns), Some(n), Some("status")) => store
            .patch_status(kind, ns, n, &body)
            .map(ok)
            .unwrap_or_else(from_err),
        (Method::PATCH, Some(ns), Some(n), None) => store
            .patch(kind, ns, n, &body, None)
            .map(ok)
            .unwrap_or_else(from_err),
        (Method::DELETE, Some(ns), Some(n), None) => {
            match store.delete(kind, ns, n, Propagation::Cascade) {
                Ok(()) => ok(json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
                Err(e) => from_err(e),
            }
        }
        _ => status(405, "MethodNotAllowed", "unsupported"),
    }
}

fn client(fake: Arc<Fake>) -> kube::Client {
    let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
        let fake = fake.clone();
        async move {
            let (parts, body) = json_request(req).await;
            let (code, v) = handle(&fake, &parts.method, parts.uri.path(), body);
            let resp = Response::builder()
                .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(v.to_string())))
                .expect("response");
            Ok::<_, Infallible>(resp)
        }
    });
    kube::Client::new(svc, "default")
}

fn yaml(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(std::path::Path::new(FIX).join(file)).expect("yaml");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).expect("doc");
            serde_json::to_value(v).expect("json")
        })
        .collect()
}

fn fake_with_run(ns: &str, annotations: Value) -> Arc<Fake> {
    let mut store = MemoryCluster::new(Utc::now());
    for obj in yaml("tasks.yaml").into_iter().chain(yaml("pipeline.yaml")) {
        store.create(ns, obj).expect("setup");
    }
    let mut pr = yaml("pipelinerun.yaml").remove(0);
    json_patch::merge(&mut pr["metadata"]["annotations"], &annotations);
    store.create(ns, pr).expect("run");
    Arc::new(Fake {
        store: Mutex::new(store),
        pipelinerun_lists: Notify::new(),
        faults: Mutex::new(Vec::new()),
    })
}

fn run(fake: &Fake, ns: &str) -> Value {
    fake.store
        .lock()
        .expect("store")
        .get(Kind::PipelineRun, ns, "demo-run")
        .expect("run")
}

async fn passes_until(sim: &mut Simulator, fake: &Fake, ns: &str, pred: &dyn Fn(&Value) -> bool) {
    for _ in 0..3000 {
        sim.pass().await.expect("pass");
        if pred(&run(fake, ns)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached: {}", run(fake, ns)["status"]);
}

fn message(v: &Value) -> String {
    util::succeeded_parts(v)
        .map(|(s, r, m)| format!("{s}/{r} {m}"))
        .unwrap_or_default()
}

/// Merge-patch the main resource of the PipelineRun `demo-run` in the fake's store.
fn patch_demo_run(fake: &Fake, ns: &str, patch: Value, what: &str) {
    fake.store
        .lock()
        .expect("store")
        .patch(Kind::PipelineRun, ns, "demo-run", &patch, None)
        .expect(what);
}

#[tokio::test]
async fn a_run_fails_as_recorded_through_the_api() {
    let ns = "drv";
    let fake = fake_with_run(
        ns,
        json!({"sandbox.retry.tekton.dev/fail": "b", "sandbox.retry.tekton.dev/duration": "20ms"}),
    );
    let mut sim = Simulator::new(client(fake.clone()), SimulatorOptions::default());
    passes_until(&mut sim, &fake, ns, &util::is_done).await;
    let pr = run(&fake, ns);
    assert_eq!(
        message(&pr),
        "False/Failed Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 1"
    );
    assert_eq!(
        pr["metadata"]["labels"]["tekton.dev/pipeline"],
        "build-and-deploy"
    );
    let store = fake.store.lock().expect("store");
    let mut trs = store.names(Kind::TaskRun, ns);
    trs.sort();
    assert_eq!(trs, ["demo-run-a", "demo-run-b", "demo-run-report"]);
    let b = store.get(Kind::TaskRun, ns, "demo-run-b").expect("b");
    assert_eq!(
        message(&b),
        "False/StepFailed \"step-compile\" exited with code 1: Error"
    );
    let report = store
        .get(Kind::TaskRun, ns, "demo-run-report")
        .expect("report");
    assert_eq!(report["spec"]["params"][0]["value"], "Failed");
}

#[tokio::test]
async fn stale_read_lag_reproduces_race_two() {
    let ns = "race";
    let fake = fake_with_run(ns, json!({"sandbox.retry.tekton.dev/hang": "b"}));
    let mut sim = Simulator::new(client(fake.clone()), SimulatorOptions::default());
    passes_until(&mut sim, &fake, ns, &|pr| {
        util::array(pr, &["status", "childReferences"]).len() == 2
    })
    .await;
    patch_demo_run(
        &fake,
        ns,
        json!({"spec": {"status": "Cancelled"}}),
        "cancel",
    );
    passes_until(&mut sim, &fake, ns, &util::is_done).await;
    assert_eq!(
        message(&run(&fake, ns)),
        "False/Cancelled PipelineRun \"demo-run\" was cancelled"
    );

    // Status reset while spec.status is still Cancelled; the controller reads, then the spec is
    // cleared inside the lag window; the controller's stale status lands anyway.
    {
        let mut store = fake.store.lock().expect("store");
        store
            .delete(Kind::TaskRun, ns, "demo-run-b", Propagation::Cascade)
            .expect("delete b");
        let mut pr = store.get(Kind::PipelineRun, ns, "demo-run").expect("run");
        let st = pr["status"].as_object_mut().expect("status");
        st.remove("completionTime");
        st.insert("childReferences".into(), json!([{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": "demo-run-a", "pipelineTaskName": "a"}]));
        st.insert("conditions".into(), json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "resume"}]));
        store.replace_status(Kind::PipelineRun, &pr).expect("reset");
    }
    let mut lagging = Simulator::new(
        client(fake.clone()),
        SimulatorOptions {
            stale_read_lag: Some(Duration::from_millis(300)),
            kubelet: false,
            ..Default::default()
        },
    );
    let listed = fake.pipelinerun_lists.notified();
    let pass = tokio::spawn(async move { lagging.pass().await.map(|_| ()) });
    listed.await;
    patch_demo_run(&fake, ns, json!({"spec": {"status": null}}), "clear spec");
    pass.await.expect("join").expect("pass");
    let pr = run(&fake, ns);
    assert!(pr["spec"].get("status").is_none(), "spec cleared");
    assert_eq!(
        message(&pr),
        "False/Cancelled PipelineRun \"demo-run\" was cancelled",
        "stale status written after the 409"
    );
}

#[tokio::test]
async fn started_loop_runs_and_shuts_down() {
    let ns = "loop";
    let fake = fake_with_run(ns, json!({"sandbox.retry.tekton.dev/duration": "10ms"}));
    let handle = Simulator::start(
        client(fake.clone()),
        SimulatorOptions {
            resync: Duration::from_millis(20),
            // The fake API answers lists only.
            watch: false,
            ..Default::default()
        },
    );
    let mut done = false;
    for _ in 0..3000 {
        if util::is_done(&run(&fake, ns)) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.shutdown().await;
    assert!(done, "run finished: {}", run(&fake, ns)["status"]);
    assert_eq!(
        message(&run(&fake, ns)),
        "True/Succeeded Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0"
    );
    assert_eq!(
        run(&fake, ns)["status"]["results"][0]["value"],
        "image-from-demo-run-b-pod"
    );
}

#[tokio::test]
async fn failed_writes_are_retried_by_later_passes() {
    let ns = "faults";
    let fake = fake_with_run(ns, json!({"sandbox.retry.tekton.dev/duration": "10ms"}));
    *fake.faults.lock().expect("faults") = vec![
        (Method::POST, "/taskruns".into(), 1),
        (Method::POST, "/pods".into(), 1),
        (Method::PATCH, "/status".into(), 3),
        (Method::PUT, "/pipelineruns/demo-run/status".into(), 1),
    ];
    let mut sim = Simulator::new(client(fake.clone()), SimulatorOptions::default());
    passes_until(&mut sim, &fake, ns, &util::is_done).await;
    assert!(
        fake.faults.lock().expect("faults").iter().all(|f| f.2 == 0),
        "every fault was hit"
    );
    assert_eq!(
        message(&run(&fake, ns)),
        "True/Succeeded Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0"
    );
}

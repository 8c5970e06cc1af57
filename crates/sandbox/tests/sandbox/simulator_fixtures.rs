//! Simulator fidelity: every recorded real-Tekton scenario (`tests/fixtures/tekton/`) is replayed in
//! the in-memory cluster with the same Pipeline, Tasks, outcomes and resets, and the resulting
//! objects are compared with the recorded ones: conditions (type/status/reason/message),
//! childReferences, skippedTasks (name, reason, whenExpressions present), results, `spec.status`,
//! which TaskRuns exist and their conditions/params/podName/results/retries. Uids, resourceVersions
//! and timestamps are ignored.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use tekton_retry_sandbox::simulator::memory::{Kind, MemoryCluster, MemoryError, Propagation};
use tekton_retry_sandbox::simulator::util;

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/tekton");

fn t0() -> DateTime<Utc> {
    util::parse_time("2026-11-26T19:00:00Z").expect("t0")
}

fn yaml(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(Path::new(FIX).join("yaml").join(file)).expect("yaml");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).expect("doc");
            serde_json::to_value(v).expect("json")
        })
        .collect()
}

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(FIX).join(path)).expect(path);
    serde_json::from_str(&text).expect("fixture json")
}

fn fixture_files(scenario: &str, prefix: &str, kind: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(Path::new(FIX).join(scenario))
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| n.starts_with(&format!("{prefix}-{kind}-")) && n.ends_with(".json"))
        .map(|n| format!("{scenario}/{n}"))
        .collect();
    out.sort();
    out
}

/// A cluster with the shared Tasks and Pipeline in `ns`.
fn cluster(ns: &str) -> MemoryCluster {
    let mut c = MemoryCluster::new(t0());
    for obj in yaml("tasks.yaml").into_iter().chain(yaml("pipeline.yaml")) {
        c.create(ns, obj).expect("setup");
    }
    c
}

fn submit(c: &mut MemoryCluster, ns: &str, file: &str, annotations: Value) -> String {
    let mut pr = yaml(file).remove(0);
    let ann = pr["metadata"]
        .as_object_mut()
        .expect("meta")
        .entry("annotations")
        .or_insert_with(|| json!({}));
    json_patch::merge(ann, &annotations);
    let name = util::name(&pr).to_string();
    c.create(ns, pr).expect("create run");
    name
}

fn pr(c: &MemoryCluster, ns: &str, name: &str) -> Value {
    c.get(Kind::PipelineRun, ns, name).expect("run exists")
}

fn project_run(v: &Value) -> Value {
    let conds: Vec<Value> = util::array(v, &["status", "conditions"])
        .iter()
        .map(|c| json!([c["type"], c["status"], c["reason"], c["message"]]))
        .collect();
    let refs: Vec<Value> = util::array(v, &["status", "childReferences"])
        .iter()
        .map(|r| json!([r["kind"], r["name"], r["pipelineTaskName"]]))
        .collect();
    let skipped: Vec<Value> = util::array(v, &["status", "skippedTasks"])
        .iter()
        .map(|s| json!([s["name"], s["reason"], s.get("whenExpressions").is_some()]))
        .collect();
    json!({
        "conditions": conds,
        "childReferences": refs,
        "skippedTasks": skipped,
        "results": v["status"].get("results").cloned().unwrap_or(Value::Null),
        "specStatus": v["spec"].get("status").cloned().unwrap_or(Value::Null),
        "finallyStartTime": v["status"].get("finallyStartTime").is_some(),
        "completionTime": v["status"].get("completionTime").is_some(),
        "pipelineSpec": v["status"].get("pipelineSpec").cloned().unwrap_or(Value::Null),
        "provenance": v["status"].get("provenance").cloned().unwrap_or(Value::Null),
    })
}

fn project_tr(v: &Value) -> Value {
    let conds: Vec<Value> = util::array(v, &["status", "conditions"])
        .iter()
        .map(|c| json!([c["status"], c["reason"], c["message"]]))
        .collect();
    json!({
        "name": v["metadata"]["name"],
        "conditions": conds,
        "params": v["spec"]["params"],
        "specStatus": v["spec"].get("status").cloned().unwrap_or(Value::Null),
        "statusMessage": v["spec"].get("statusMessage").cloned().unwrap_or(Value::Null),
        "podName": v["status"].get("podName").cloned().unwrap_or(Value::Null),
        "results": v["status"].get("results").cloned().unwrap_or(Value::Null),
        "retries": util::array(v, &["status", "retriesStatus"]).len(),
        "spec": spec_without_volume_sources(&v["spec"]),
        "taskSpec": v["status"].get("taskSpec").cloned().unwrap_or(Value::Null),
        "pipelineTask": util::label(v, "tekton.dev/pipelineTask"),
        "memberOf": util::label(v, "tekton.dev/memberOf"),
        "owner": util::array(v, &["metadata", "ownerReferences"]).first().map(|o| json!([o["kind"], o["name"], o["controller"]])),
    })
}

/// A TaskRun spec with workspace bindings reduced to their names: the claim Tekton generates for a
/// `volumeClaimTemplate` is named from the run's uid, which differs between the fixture and the
/// in-memory cluster (the name itself is checked in `simulator::volumeclaim`'s tests).
fn spec_without_volume_sources(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(ws) = s.get_mut("workspaces").and_then(Value::as_array_mut) {
        for w in ws.iter_mut() {
            *w = json!({"name": w["name"]});
        }
    }
    s
}

/// Compares the run and every TaskRun with the fixture files of moment `prefix`.
fn assert_moment(c: &MemoryCluster, ns: &str, scenario: &str, prefix: &str) {
    for f in fixture_files(scenario, prefix, "pipelinerun") {
        let want = fixture(&f);
        let got = pr(c, ns, util::name(&want));
        assert_eq!(project_run(&got), project_run(&want), "{f}");
    }
    let pod_files = fixture_files(scenario, prefix, "pod");
    if !pod_files.is_empty() {
        let want: Vec<(String, String)> = pod_files
            .iter()
            .map(|f| {
                let p = fixture(f);
                (
                    util::name(&p).to_string(),
                    util::str_or_empty(&p, &["status", "phase"]).to_string(),
                )
            })
            .collect();
        let got: Vec<(String, String)> = c
            .list(Kind::Pod, ns)
            .iter()
            .map(|p| {
                (
                    util::name(p).to_string(),
                    util::str_or_empty(p, &["status", "phase"]).to_string(),
                )
            })
            .collect();
        let (mut got, mut want) = (got, want);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{scenario}/{prefix}: pods and phases");
    }
    let tr_files = fixture_files(scenario, prefix, "taskrun");
    if tr_files.is_empty() {
        return;
    }
    let want_names: Vec<String> = tr_files
        .iter()
        .map(|f| util::name(&fixture(f)).to_string())
        .collect();
    let mut got_names = c.names(Kind::TaskRun, ns);
    got_names.sort();
    let mut want_sorted = want_names.clone();
    want_sorted.sort();
    assert_eq!(got_names, want_sorted, "{scenario}/{prefix}: TaskRuns");
    for f in tr_files {
        let want = fixture(&f);
        let got = c
            .get(Kind::TaskRun, ns, util::name(&want))
            .expect("taskrun");
        assert_eq!(project_tr(&got), project_tr(&want), "{f}");
    }
}

/// The run's `Succeeded` transitions recorded in `timeline.txt` up to its first completion:
/// `(status, reason, message)`, consecutive duplicates and condition-less events dropped.
fn recorded_transitions(
    scenario: &str,
    run: &str,
    after: Option<&str>,
) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(Path::new(FIX).join(scenario).join("timeline.txt"))
        .expect("timeline");
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut started = after.is_none();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 || f[1] != "PipelineRun" || !f[3].ends_with(&format!("/{run}")) {
            continue;
        }
        let Some((st, reason)) = f[6].split_once('/') else {
            continue;
        };
        if st == "-" {
            continue;
        }
        let msg = line
            .split_once(" msg='")
            .map(|(_, m)| m.trim_end_matches('\''))
            .unwrap_or("");
        if !started {
            started = Some(msg) == after;
            continue;
        }
        let e = (st.to_string(), reason.to_string(), msg.to_string());
        if out.last() != Some(&e) {
            out.push(e);
        }
        if st != "Unknown" {
            break;
        }
    }
    out
}

/// The simulator's transitions of the run up to its first completion, in the same shape.
fn simulated_transitions(
    c: &MemoryCluster,
    ns: &str,
    run: &str,
    after: Option<&str>,
) -> Vec<(String, String, String)> {
    let key = format!("{ns}/{run}");
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut started = after.is_none();
    for (k, st, reason, msg) in &c.condition_history {
        if *k != key {
            continue;
        }
        if !started {
            started = Some(msg.as_str()) == after;
            continue;
        }
        let e = (st.clone(), reason.clone(), msg.clone());
        if out.last() != Some(&e) {
            out.push(e);
        }
        if st != "Unknown" {
            break;
        }
    }
    out
}

fn assert_transitions(c: &MemoryCluster, ns: &str, scenario: &str, run: &str) {
    assert_transitions_after(c, ns, scenario, run, None, 3);
}

/// Compares the condition sequence after the status write whose message is `after` (a reset)
/// up to the next completion.
fn assert_transitions_after(
    c: &MemoryCluster,
    ns: &str,
    scenario: &str,
    run: &str,
    after: Option<&str>,
    min: usize,
) {
    let recorded = recorded_transitions(scenario, run, after);
    assert!(
        recorded.len() >= min.max(1),
        "{scenario}: timeline parsed: {recorded:?}"
    );
    assert_ne!(
        recorded.last().map(|e| e.0.as_str()),
        Some("Unknown"),
        "{scenario}: ends done"
    );
    assert_eq!(
        simulated_transitions(c, ns, run, after),
        recorded,
        "{scenario}: condition sequence after {after:?}"
    );
}

/// Every `Succeeded` transition of TaskRun `name` in `timeline.txt` (all incarnations, consecutive
/// duplicates and condition-less events dropped). The timeline shows newlines as `\\n` and cuts
/// long messages, so messages are compared by prefix.
fn recorded_taskrun_transitions(scenario: &str, name: &str) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(Path::new(FIX).join(scenario).join("timeline.txt"))
        .expect("timeline");
    let mut out: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7
            || f[1] != "TaskRun"
            || f[2] == "DELETED"
            || !f[3].ends_with(&format!("/{name}"))
        {
            continue;
        }
        let Some((st, reason)) = f[6].split_once('/') else {
            continue;
        };
        if st == "-" {
            continue;
        }
        let msg = line.split_once(" msg=").map(|(_, m)| m).unwrap_or("");
        let msg = msg.strip_prefix(['\'', '"']).unwrap_or(msg);
        let msg = msg.strip_suffix(['\'', '"']).unwrap_or(msg);
        let e = (st.to_string(), reason.to_string(), msg.to_string());
        if out.last() != Some(&e) {
            out.push(e);
        }
    }
    out
}

fn assert_taskrun_transitions(c: &MemoryCluster, ns: &str, scenario: &str, names: &[&str]) {
    for name in names {
        let key = format!("{ns}/{name}");
        let mut got: Vec<(String, String, String)> = Vec::new();
        for (k, st, reason, msg) in &c.taskrun_condition_history {
            let e = (st.clone(), reason.clone(), msg.replace('\n', "\\n"));
            if *k == key && got.last() != Some(&e) {
                got.push(e);
            }
        }
        let want = recorded_taskrun_transitions(scenario, name);
        assert!(want.len() >= 2, "{scenario}/{name}: timeline parsed");
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.0 == w.0 && g.1 == w.1 && g.2.starts_with(&w.2));
        assert!(
            same,
            "{scenario}/{name}: TaskRun condition sequence\n got: {got:#?}\nwant: {want:#?}"
        );
    }
}

/// The README's reset: Succeeded → Unknown/Running `msg`; completionTime, finallyStartTime,
/// skippedTasks, results removed; childReferences filtered to `keep`; PUT with the read rv.
fn reset(
    c: &mut MemoryCluster,
    ns: &str,
    name: &str,
    keep: &[&str],
    msg: &str,
    start_now: bool,
) -> Value {
    let mut run = pr(c, ns, name);
    let now = util::fmt_time(c.now());
    let st = run["status"].as_object_mut().expect("status");
    for k in [
        "completionTime",
        "finallyStartTime",
        "skippedTasks",
        "results",
    ] {
        st.remove(k);
    }
    if let Some(refs) = st.get_mut("childReferences").and_then(Value::as_array_mut) {
        refs.retain(|r| keep.contains(&util::str_or_empty(r, &["name"])));
    }
    if start_now {
        st.insert("startTime".into(), now.clone().into());
    }
    st.insert(
        "conditions".into(),
        json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": msg, "lastTransitionTime": now}]),
    );
    c.replace_status(Kind::PipelineRun, &run).expect("reset")
}

fn delete_tr(c: &mut MemoryCluster, ns: &str, name: &str) {
    c.delete(Kind::TaskRun, ns, name, Propagation::Cascade)
        .expect("delete");
}

fn done(c: &mut MemoryCluster, ns: &str, name: &str) {
    assert!(
        c.run_until_done(ns, name, TimeDelta::seconds(120)),
        "{name} finishes"
    );
}

fn tr_reason(c: &MemoryCluster, ns: &str, name: &str) -> Option<String> {
    c.get(Kind::TaskRun, ns, name)
        .and_then(|t| util::succeeded_parts(&t).map(|(_, r, _)| r.to_string()))
}

const FAIL_B: &str =
    r#"{"sandbox.retry.tekton.dev/fail": "b", "sandbox.retry.tekton.dev/duration": "2s"}"#;

fn ann(s: &str) -> Value {
    serde_json::from_str(s).expect("ann")
}

fn failed_demo(ns: &str) -> MemoryCluster {
    let mut c = cluster(ns);
    submit(&mut c, ns, "pipelinerun.yaml", ann(FAIL_B));
    done(&mut c, ns, "demo-run");
    assert_transitions(&c, ns, ns, "demo-run");
    c
}

#[test]
fn dag_failed_then_recommended_reset() {
    let ns = "dag-failed";
    let mut c = failed_demo(ns);
    assert_moment(&c, ns, ns, "01-failed");
    // While done: annotate, nothing happens.
    let writes = c.controller_writes.len();
    c.patch(
        Kind::PipelineRun,
        ns,
        "demo-run",
        &json!({"metadata": {"annotations": {"retry.example.dev/retry-count": "1"}}}),
        None,
    )
    .expect("annotate");
    // Edit Task `build` (the recorded run did): re-created TaskRuns must re-resolve it.
    let script = "echo building v2 $(params.commit)\necho -n registry.example/app:$(params.commit)-v2 > $(results.image.path)\n";
    c.patch(Kind::Task, ns, "build", &json!({"spec": {"steps": [{"name": "compile", "image": "example.invalid/golang:1", "script": script}]}}), None)
        .expect("edit task");
    delete_tr(&mut c, ns, "demo-run-b");
    delete_tr(&mut c, ns, "demo-run-report");
    c.advance(TimeDelta::seconds(30));
    c.step();
    assert_eq!(
        c.controller_writes.len(),
        writes,
        "no controller writes while done"
    );
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "Retry 1 requested by alice: re-running b, c, report",
        false,
    );
    c.settle();
    let run = pr(&c, ns, "demo-run");
    assert_eq!(
        util::succeeded_parts(&run)
            .map(|(_, _, m)| m.to_string())
            .as_deref(),
        Some("Tasks Completed: 1 (Failed: 0, Cancelled 0), Incomplete: 3, Skipped: 0")
    );
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "06-final");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "demo-run",
        Some("Retry 1 requested by alice: re-running b, c, report"),
        3,
    );
    // startTime kept; annotations copied onto re-created TaskRuns.
    let run = pr(&c, ns, "demo-run");
    assert_eq!(run["status"]["startTime"], util::fmt_time(t0()).as_str());
    let b = c.get(Kind::TaskRun, ns, "demo-run-b").expect("b");
    assert_eq!(
        b["metadata"]["annotations"]["retry.example.dev/retry-count"],
        "1"
    );
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &["demo-run-a", "demo-run-b", "demo-run-c", "demo-run-report"],
    );
}

#[test]
fn flip_only_refails_and_reruns_only_deleted_finally() {
    let ns = "flip-only";
    let mut c = failed_demo(ns);
    assert_moment(&c, ns, ns, "01-failed");
    let mut run = pr(&c, ns, "demo-run");
    run["status"]["conditions"] = json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "flip only"}]);
    c.advance(TimeDelta::seconds(10));
    c.replace_status(Kind::PipelineRun, &run).expect("flip");
    let trs = c.names(Kind::TaskRun, ns);
    c.settle();
    assert_eq!(c.names(Kind::TaskRun, ns), trs, "no TaskRun created");
    assert_moment(&c, ns, ns, "03-after-flip");
    assert_eq!(
        pr(&c, ns, "demo-run")["status"]["completionTime"],
        util::fmt_time(c.now()).as_str()
    );
    delete_tr(&mut c, ns, "demo-run-report");
    let mut run = pr(&c, ns, "demo-run");
    run["status"]["conditions"] = json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running", "message": "flip + finally deleted"}]);
    c.replace_status(Kind::PipelineRun, &run).expect("flip2");
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "05-after-flip2");
    assert_taskrun_transitions(&c, ns, ns, &["demo-run-a", "demo-run-b", "demo-run-report"]);
}

#[test]
fn cancelled_and_both_races() {
    let ns = "cancelled";
    let mut c = cluster(ns);
    submit(
        &mut c,
        ns,
        "pipelinerun.yaml",
        ann(
            r#"{"sandbox.retry.tekton.dev/hang": "b:1", "sandbox.retry.tekton.dev/duration": "2s"}"#,
        ),
    );
    assert!(c.run_until(TimeDelta::seconds(30), &|c| tr_reason(
        c,
        "cancelled",
        "demo-run-b"
    )
    .as_deref()
        == Some("Running")));
    assert_moment(&c, ns, ns, "01-running");
    c.patch(
        Kind::PipelineRun,
        ns,
        "demo-run",
        &json!({"spec": {"status": "Cancelled"}}),
        None,
    )
    .expect("cancel");
    c.settle();
    assert_moment(&c, ns, ns, "02-cancelled");
    assert_transitions(&c, ns, ns, "demo-run");
    assert!(
        c.get(Kind::Pod, ns, "demo-run-b-pod").is_none(),
        "cancelled pod deleted"
    );

    // Resume 1 (race 1): status first, then spec with a resourceVersion precondition.
    delete_tr(&mut c, ns, "demo-run-b");
    let written = reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "resume 1 (status first, kubectl)",
        false,
    );
    c.settle();
    assert_moment(&c, ns, ns, "06-after-resume1");
    let rv = util::str_or_empty(&written, &["metadata", "resourceVersion"]).to_string();
    let err = c
        .patch(
            Kind::PipelineRun,
            ns,
            "demo-run",
            &json!({"spec": {"status": null}}),
            Some(&rv),
        )
        .expect_err("stale spec write");
    assert!(matches!(err, MemoryError::Conflict(..)));

    // Resume 2 (race 2): the controller read the run between the status and the spec write.
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "resume 2 (status then spec, back to back)",
        false,
    );
    let staged = c
        .begin_pipelinerun_reconcile(ns, "demo-run")
        .expect("staged");
    c.patch(
        Kind::PipelineRun,
        ns,
        "demo-run",
        &json!({"spec": {"status": null}}),
        None,
    )
    .expect("spec");
    let (_, conflict) = c.commit_status(staged);
    assert!(
        conflict,
        "the stale status write hit a conflict and was retried"
    );
    assert_moment(&c, ns, ns, "09-after-resume2");

    // Resume 3: status again.
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "resume 3 (status again, spec already cleared)",
        false,
    );
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "11-final");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "demo-run",
        Some("resume 3 (status again, spec already cleared)"),
        3,
    );
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &["demo-run-a", "demo-run-b", "demo-run-c", "demo-run-report"],
    );
}

#[test]
fn cancelled_taskrun_cannot_be_reset_in_place() {
    let ns = "cancelled-inplace";
    let mut c = cluster(ns);
    submit(
        &mut c,
        ns,
        "pipelinerun.yaml",
        ann(r#"{"sandbox.retry.tekton.dev/hang": "b"}"#),
    );
    assert!(c.run_until(TimeDelta::seconds(30), &|c| tr_reason(
        c,
        "cancelled-inplace",
        "demo-run-b"
    )
    .as_deref()
        == Some("Running")));
    c.patch(
        Kind::PipelineRun,
        ns,
        "demo-run",
        &json!({"spec": {"status": "Cancelled"}}),
        None,
    )
    .expect("cancel");
    c.settle();
    assert_moment(&c, ns, ns, "01-cancelled");
    let mut b = c.get(Kind::TaskRun, ns, "demo-run-b").expect("b");
    let archived = b["status"].clone();
    let msg = util::succeeded_parts(&b)
        .map(|(_, _, m)| m.to_string())
        .unwrap_or_default();
    let st = b["status"].as_object_mut().expect("status");
    for k in ["startTime", "completionTime", "results"] {
        st.remove(k);
    }
    st.insert("podName".into(), "".into());
    st.insert("retriesStatus".into(), json!([archived]));
    st.insert("conditions".into(), json!([{"type": "Succeeded", "status": "Unknown", "reason": "ToBeRetried", "message": msg}]));
    c.replace_status(Kind::TaskRun, &b).expect("in-place reset");
    c.settle();
    let want = fixture("cancelled-inplace/03-after-inplace-reset-taskrun-demo-run-b.json");
    let got = c.get(Kind::TaskRun, ns, "demo-run-b").expect("b");
    assert_eq!(
        project_tr(&got)["conditions"],
        project_tr(&want)["conditions"]
    );
    assert_eq!(project_tr(&got)["retries"], project_tr(&want)["retries"]);
    assert_taskrun_transitions(&c, ns, ns, &["demo-run-a", "demo-run-b"]);
}

fn graceful_cancel(ns: &str) -> MemoryCluster {
    let mut c = cluster(ns);
    submit(
        &mut c,
        ns,
        "pipelinerun.yaml",
        ann(
            r#"{"sandbox.retry.tekton.dev/hang": "b:1", "sandbox.retry.tekton.dev/duration": "2s"}"#,
        ),
    );
    let n = ns.to_string();
    assert!(
        c.run_until(TimeDelta::seconds(30), &|c| tr_reason(c, &n, "demo-run-b")
            .as_deref()
            == Some("Running"))
    );
    c.patch(
        Kind::PipelineRun,
        ns,
        "demo-run",
        &json!({"spec": {"status": "CancelledRunFinally"}}),
        None,
    )
    .expect("cancel");
    c
}

#[test]
fn cancelled_finally_and_resume() {
    let ns = "cancelled-finally";
    let mut c = graceful_cancel(ns);
    assert!(c.run_until(TimeDelta::seconds(5), &|c| c
        .get(Kind::TaskRun, "cancelled-finally", "demo-run-report")
        .is_some()));
    assert_moment(&c, ns, ns, "02-cancelling-finally-running");
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "03-cancelled");
    assert_transitions(&c, ns, ns, "demo-run");

    delete_tr(&mut c, ns, "demo-run-b");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a", "demo-run-report"],
        "resume graceful cancel: keep old finally run for now",
        false,
    );
    let staged = c
        .begin_pipelinerun_reconcile(ns, "demo-run")
        .expect("staged");
    c.patch(
        Kind::PipelineRun,
        ns,
        "demo-run",
        &json!({"spec": {"status": null}}),
        None,
    )
    .expect("spec");
    c.commit_status(staged);
    assert_moment(&c, ns, ns, "06-after-race2");

    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a", "demo-run-report"],
        "resume graceful cancel: status again (spec already cleared)",
        false,
    );
    assert!(c.run_until(TimeDelta::seconds(10), &|c| tr_reason(
        c,
        "cancelled-finally",
        "demo-run-b"
    )
    .as_deref()
        == Some("Running")));
    delete_tr(&mut c, ns, "demo-run-report");
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "08-final");
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &["demo-run-a", "demo-run-b", "demo-run-c", "demo-run-report"],
    );
}

#[test]
fn cancelled_finally_trap_runs_finally_in_the_window() {
    let ns = "cancelled-finally-trap";
    let mut c = graceful_cancel(ns);
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "01-cancelled");
    assert_transitions(&c, ns, ns, "demo-run");
    delete_tr(&mut c, ns, "demo-run-b");
    delete_tr(&mut c, ns, "demo-run-report");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "resume graceful cancel with finally already deleted",
        false,
    );
    let staged = c
        .begin_pipelinerun_reconcile(ns, "demo-run")
        .expect("staged");
    assert!(
        c.get(Kind::TaskRun, ns, "demo-run-report").is_some(),
        "finally scheduled in the window"
    );
    c.patch(
        Kind::PipelineRun,
        ns,
        "demo-run",
        &json!({"spec": {"status": null}}),
        None,
    )
    .expect("spec");
    c.commit_status(staged);
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "05-final");
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &["demo-run-a", "demo-run-b", "demo-run-c", "demo-run-report"],
    );
}

fn timeout_run(ns: &str) -> MemoryCluster {
    let mut c = cluster(ns);
    submit(&mut c, ns, "pipelinerun-timeout.yaml", ann(FAIL_B));
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "01-failed");
    assert_transitions(&c, ns, ns, "demo-run");
    c
}

#[test]
fn timeout_between_one_and_two_budgets() {
    let ns = "timeout";
    let mut c = timeout_run(ns);
    c.advance(t0() + TimeDelta::seconds(66) - c.now());
    delete_tr(&mut c, ns, "demo-run-b");
    delete_tr(&mut c, ns, "demo-run-report");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "retry after pipeline timeout elapsed (1m < elapsed < 2m)",
        false,
    );
    c.settle();
    assert_moment(&c, ns, ns, "03-after-reset");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "demo-run",
        Some("retry after pipeline timeout elapsed (1m < elapsed < 2m)"),
        1,
    );
    assert_eq!(c.names(Kind::TaskRun, ns), vec!["demo-run-a".to_string()]);
}

#[test]
fn timeout_long_takes_the_early_return() {
    let ns = "timeout-long";
    let mut c = timeout_run(ns);
    c.advance(t0() + TimeDelta::seconds(122) - c.now());
    delete_tr(&mut c, ns, "demo-run-b");
    delete_tr(&mut c, ns, "demo-run-report");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "retry after 2x pipeline timeout elapsed",
        false,
    );
    c.settle();
    assert_moment(&c, ns, ns, "03-after-reset");
}

#[test]
fn timeout_within_budget_with_start_time_reset() {
    let ns = "timeout-within";
    let mut c = timeout_run(ns);
    c.advance(t0() + TimeDelta::seconds(14) - c.now());
    delete_tr(&mut c, ns, "demo-run-b");
    delete_tr(&mut c, ns, "demo-run-report");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "retry within budget, startTime reset to now",
        true,
    );
    c.settle();
    let a = c.get(Kind::TaskRun, ns, "demo-run-a").expect("a");
    assert_eq!(
        pr(&c, ns, "demo-run")["status"]["startTime"],
        a["metadata"]["creationTimestamp"],
        "AdjustStartTime"
    );
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "03-final");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "demo-run",
        Some("retry within budget, startTime reset to now"),
        3,
    );
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &["demo-run-a", "demo-run-b", "demo-run-c", "demo-run-report"],
    );
}

#[test]
fn timeout_start_reset_is_undone() {
    let ns = "timeout-startreset";
    let mut c = timeout_run(ns);
    c.patch(Kind::PipelineRun, ns, "demo-run", &json!({"metadata": {"annotations": {"sandbox.retry.tekton.dev/fail": null, "sandbox.retry.tekton.dev/hang": "b"}}}), None)
        .expect("rules");
    c.advance(t0() + TimeDelta::seconds(58) - c.now());
    delete_tr(&mut c, ns, "demo-run-b");
    delete_tr(&mut c, ns, "demo-run-report");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "retry after timeout elapsed, startTime reset to now",
        true,
    );
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "03-after-reset");
    let a = c.get(Kind::TaskRun, ns, "demo-run-a").expect("a");
    assert_eq!(
        pr(&c, ns, "demo-run")["status"]["startTime"],
        a["metadata"]["creationTimestamp"]
    );
    let completed =
        util::time_at(&pr(&c, ns, "demo-run"), &["status", "completionTime"]).expect("completion");
    let created = util::time_at(&a, &["metadata", "creationTimestamp"]).expect("created");
    assert!(
        completed - created >= TimeDelta::seconds(60)
            && completed - created <= TimeDelta::seconds(61),
        "timed out at start + 1m"
    );

    c.advance(t0() + TimeDelta::seconds(74) - c.now());
    delete_tr(&mut c, ns, "demo-run-b");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "second retry, >1m elapsed, startTime reset to now",
        true,
    );
    c.settle();
    assert_moment(&c, ns, ns, "05-after-reset2");
    assert_taskrun_transitions(&c, ns, ns, &["demo-run-a", "demo-run-b"]);
}

#[test]
fn retries_and_in_place_taskrun_reset() {
    let ns = "retries";
    let mut c = cluster(ns);
    submit(
        &mut c,
        ns,
        "retries.yaml",
        ann(
            r#"{"sandbox.retry.tekton.dev/fail": "b:2", "sandbox.retry.tekton.dev/duration": "2s"}"#,
        ),
    );
    done(&mut c, ns, "retry-run");
    assert_moment(&c, ns, ns, "01-failed");
    assert_transitions(&c, ns, ns, "retry-run");
    let mut pods = c.names(Kind::Pod, ns);
    pods.sort();
    assert_eq!(
        pods,
        [
            "retry-run-a-pod",
            "retry-run-b-pod",
            "retry-run-b-pod-retry1"
        ]
    );

    let mut b = c.get(Kind::TaskRun, ns, "retry-run-b").expect("b");
    let failure = util::succeeded_parts(&b)
        .map(|(_, _, m)| m.to_string())
        .unwrap_or_default();
    let mut archived = b["status"].clone();
    archived
        .as_object_mut()
        .expect("obj")
        .remove("retriesStatus");
    let st = b["status"].as_object_mut().expect("status");
    st.get_mut("retriesStatus")
        .and_then(Value::as_array_mut)
        .expect("retries")
        .push(archived);
    for k in ["startTime", "completionTime", "results"] {
        st.remove(k);
    }
    st.insert("podName".into(), "".into());
    st.insert("conditions".into(), json!([{"type": "Succeeded", "status": "Unknown", "reason": "ToBeRetried", "message": failure}]));
    c.replace_status(Kind::TaskRun, &b).expect("in-place reset");
    assert!(c.run_until(TimeDelta::seconds(10), &|c| tr_reason(
        c,
        "retries",
        "retry-run-b"
    )
    .as_deref()
        == Some("Succeeded")));
    assert_moment(&c, ns, ns, "03-after-inplace-taskrun-reset");

    reset(
        &mut c,
        ns,
        "retry-run",
        &["retry-run-a", "retry-run-b"],
        "retry after in-place TaskRun reset of b",
        false,
    );
    done(&mut c, ns, "retry-run");
    assert_moment(&c, ns, ns, "05-final");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "retry-run",
        Some("retry after in-place TaskRun reset of b"),
        1,
    );
    assert_taskrun_transitions(&c, ns, ns, &["retry-run-a", "retry-run-b", "retry-run-c"]);
}

fn matrix_run(ns: &str) -> MemoryCluster {
    let mut c = cluster(ns);
    submit(
        &mut c,
        ns,
        "matrix.yaml",
        ann(
            r#"{"sandbox.retry.tekton.dev/fail": "matrix-run-m-1", "sandbox.retry.tekton.dev/duration": "2s"}"#,
        ),
    );
    done(&mut c, ns, "matrix-run");
    assert_moment(&c, ns, ns, "01-failed");
    assert_transitions(&c, ns, ns, "matrix-run");
    c
}

#[test]
fn matrix_partial_reset_never_recreates_the_deleted_combination() {
    let ns = "matrix";
    let mut c = matrix_run(ns);
    delete_tr(&mut c, ns, "matrix-run-m-1");
    delete_tr(&mut c, ns, "matrix-run-report");
    reset(
        &mut c,
        ns,
        "matrix-run",
        &["matrix-run-a", "matrix-run-m-0", "matrix-run-m-2"],
        "retry: only failed matrix combination m-1 deleted",
        false,
    );
    done(&mut c, ns, "matrix-run");
    assert_moment(&c, ns, ns, "03-after-partial-reset");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "matrix-run",
        Some("retry: only failed matrix combination m-1 deleted"),
        1,
    );
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &[
            "matrix-run-a",
            "matrix-run-m-0",
            "matrix-run-m-1",
            "matrix-run-m-2",
            "matrix-run-after-m",
            "matrix-run-report",
        ],
    );
}

#[test]
fn matrix_full_reset_recreates_every_combination() {
    let ns = "matrix-full";
    let mut c = matrix_run(ns);
    for n in [
        "matrix-run-m-0",
        "matrix-run-m-1",
        "matrix-run-m-2",
        "matrix-run-report",
    ] {
        delete_tr(&mut c, ns, n);
    }
    reset(
        &mut c,
        ns,
        "matrix-run",
        &["matrix-run-a"],
        "retry: all matrix combinations of m deleted",
        false,
    );
    done(&mut c, ns, "matrix-run");
    assert_moment(&c, ns, ns, "03-final");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "matrix-run",
        Some("retry: all matrix combinations of m deleted"),
        2,
    );
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &[
            "matrix-run-a",
            "matrix-run-m-0",
            "matrix-run-m-1",
            "matrix-run-m-2",
            "matrix-run-after-m",
            "matrix-run-report",
        ],
    );
}

#[test]
fn keep_finally_is_not_rerun() {
    let ns = "keep-finally";
    let mut c = failed_demo(ns);
    assert_moment(&c, ns, ns, "01-failed");
    delete_tr(&mut c, ns, "demo-run-b");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a", "demo-run-report"],
        "retry b,c; keep finally run",
        false,
    );
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "03-after-reset");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "demo-run",
        Some("retry b,c; keep finally run"),
        2,
    );
    assert!(pr(&c, ns, "demo-run")["status"]
        .get("finallyStartTime")
        .is_some());
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &["demo-run-a", "demo-run-b", "demo-run-c", "demo-run-report"],
    );
}

#[test]
fn childrefs_readoption_and_dangling_refs() {
    let ns = "childrefs";
    let mut c = failed_demo(ns);
    assert_moment(&c, ns, ns, "01-failed");
    delete_tr(&mut c, ns, "demo-run-report");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "drop b childRef, b NOT deleted",
        false,
    );
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "03-v1-refailed");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "demo-run",
        Some("drop b childRef, b NOT deleted"),
        1,
    );

    delete_tr(&mut c, ns, "demo-run-b");
    delete_tr(&mut c, ns, "demo-run-report");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a", "demo-run-b", "demo-run-report"],
        "b, report deleted; dangling childRefs kept",
        false,
    );
    c.settle();
    let refs: Vec<String> = util::array(&pr(&c, ns, "demo-run"), &["status", "childReferences"])
        .iter()
        .map(|r| util::str_or_empty(r, &["name"]).to_string())
        .collect();
    assert_eq!(
        refs,
        ["demo-run-a", "demo-run-b"],
        "dangling report reference dropped, b re-created"
    );
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "05-v2-final");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "demo-run",
        Some("b, report deleted; dangling childRefs kept"),
        3,
    );
    assert_taskrun_transitions(
        &c,
        ns,
        ns,
        &["demo-run-a", "demo-run-b", "demo-run-c", "demo-run-report"],
    );
}

#[test]
fn orphan_pod_is_adopted_and_fails_the_new_taskrun() {
    let ns = "orphan-pod";
    let mut c = failed_demo(ns);
    assert_moment(&c, ns, ns, "01-failed");
    c.delete(Kind::TaskRun, ns, "demo-run-b", Propagation::Orphan)
        .expect("orphan delete");
    let orphan = c.get(Kind::Pod, ns, "demo-run-b-pod").expect("pod stays");
    assert!(orphan["metadata"].get("ownerReferences").is_none());
    delete_tr(&mut c, ns, "demo-run-report");
    reset(
        &mut c,
        ns,
        "demo-run",
        &["demo-run-a"],
        "retry with old pod orphaned",
        false,
    );
    done(&mut c, ns, "demo-run");
    assert_moment(&c, ns, ns, "03-after-reset");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "demo-run",
        Some("retry with old pod orphaned"),
        0,
    );
    let pod = c.get(Kind::Pod, ns, "demo-run-b-pod").expect("pod");
    assert_eq!(
        pod["metadata"]["uid"], orphan["metadata"]["uid"],
        "the stale pod was adopted, not replaced"
    );
    assert_taskrun_transitions(&c, ns, ns, &["demo-run-a", "demo-run-b", "demo-run-report"]);
}

#[test]
fn affinity_workspace_run_retries() {
    let ns = "affinity";
    let mut c = MemoryCluster::new(t0());
    submit(&mut c, ns, "affinity.yaml", ann(FAIL_B));
    done(&mut c, ns, "ws-run");
    assert_moment(&c, ns, ns, "01-failed");
    assert_transitions(&c, ns, ns, "ws-run");
    delete_tr(&mut c, ns, "ws-run-b");
    reset(
        &mut c,
        ns,
        "ws-run",
        &["ws-run-a"],
        "retry b with volumeClaimTemplate workspace",
        false,
    );
    done(&mut c, ns, "ws-run");
    assert_moment(&c, ns, ns, "03-after-reset");
    assert_transitions_after(
        &c,
        ns,
        ns,
        "ws-run",
        Some("retry b with volumeClaimTemplate workspace"),
        1,
    );
    assert_taskrun_transitions(&c, ns, ns, &["ws-run-a", "ws-run-b"]);
}

#[test]
fn informer_lag_fast_resets_work() {
    for ns in ["informer-lag-1", "informer-lag-2", "informer-lag-3"] {
        let mut c = failed_demo(ns);
        assert_moment(&c, ns, ns, "01-failed");
        delete_tr(&mut c, ns, "demo-run-b");
        delete_tr(&mut c, ns, "demo-run-report");
        reset(&mut c, ns, "demo-run", &["demo-run-a"], "fast reset", false);
        done(&mut c, ns, "demo-run");
        assert_moment(&c, ns, ns, "03-final");
        assert_transitions_after(&c, ns, ns, "demo-run", Some("fast reset"), 4);
    }
}

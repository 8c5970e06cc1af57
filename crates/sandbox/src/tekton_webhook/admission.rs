//! Tekton's validating webhook rules for updates of PipelineRuns and TaskRuns, with the real
//! webhook's messages. Upstream: `tektoncd/pipeline` `pkg/apis/pipeline/v1/pipelinerun_validation.go`
//! (`PipelineRun.Validate`, `PipelineRunSpec.ValidateUpdate`) and `taskrun_validation.go`
//! (`TaskRunSpec.ValidateUpdate`). The webhook runs on CREATE and UPDATE of the main resource and
//! of `/status`; kube-apiserver resets the spec of `/status` writes before validating admission, so
//! those only trip the whole-object rule (Pending after start).

use serde_json::{Map, Value};

/// Prefix kube-apiserver puts before a webhook's denial, then knative's `validation failed: `.
const DENIED: &str =
    "admission webhook \"validation.webhook.pipeline.tekton.dev\" denied the request: validation failed: ";

/// A denial by the validating webhook: the whole message kube-apiserver returns. kubectl printed
/// `Error from server (BadRequest): …` for these, so the API server answers 400 BadRequest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    pub message: String,
}

fn denied(message: &str) -> Denied {
    Denied {
        message: format!("{DENIED}{message}"),
    }
}

/// `IsDone`: the `Succeeded` condition exists and is not `Unknown` (knative `Condition.IsUnknown`
/// is true for a missing condition).
pub fn is_done(obj: &Value) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Succeeded"))
        .and_then(|c| c["status"].as_str())
        .is_some_and(|s| s == "True" || s == "False")
}

/// `HasStarted`: `status.startTime` is set.
fn has_started(obj: &Value) -> bool {
    obj.pointer("/status/startTime")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// A spec as Go's `equality.Semantic.DeepEqual` on the decoded struct sees it: null and empty-string
/// fields are the zero value, the same as absent.
fn normalise(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let n = normalise(x);
                let empty = matches!(&n, Value::Null) || n.as_str() == Some("");
                if !empty {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalise).collect()),
        other => other.clone(),
    }
}

fn spec_without(obj: &Value, fields: &[&str]) -> Value {
    let mut spec = obj
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    if let Some(m) = spec.as_object_mut() {
        for f in fields {
            m.remove(*f);
        }
    }
    normalise(&spec)
}

fn set_if_absent(obj: &mut Value, path: &[&str], value: Value) {
    let mut cur = obj;
    for (i, key) in path.iter().enumerate() {
        if !cur.is_object() {
            return;
        }
        let last = i == path.len() - 1;
        let m = cur.as_object_mut().expect("checked above");
        let absent = m
            .get(*key)
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        if last {
            if absent {
                m.insert((*key).to_string(), value);
            }
            return;
        }
        if absent {
            m.insert((*key).to_string(), Value::Object(Map::new()));
        }
        cur = m.get_mut(*key).expect("inserted above");
    }
}

/// Tekton's defaulting webhook (`PipelineRunSpec.SetDefaults`, `TaskRunSpec.SetDefaults` in
/// `pkg/apis/pipeline/v1/*_defaults.go`) with the default `config-defaults` (60-minute timeout,
/// service account `default`): what the fixtures show on every run (`yaml/pipelinerun.yaml` vs
/// `dag-failed/01-failed-pipelinerun-demo-run.json`: `timeouts.pipeline: 1h0m0s`; TaskRuns get
/// `timeout: 1h0m0s`, `serviceAccountName: default`, `taskRef.kind: Task`). Runs on create and update.
pub fn set_defaults(group: &str, resource: &str, obj: &mut Value) {
    if group != "tekton.dev" || !obj.get("spec").is_some_and(Value::is_object) {
        return;
    }
    match resource {
        "pipelineruns" => {
            set_if_absent(
                obj,
                &["spec", "timeouts", "pipeline"],
                Value::from("1h0m0s"),
            );
            set_if_absent(
                obj,
                &["spec", "taskRunTemplate", "serviceAccountName"],
                Value::from("default"),
            );
        }
        "taskruns" => {
            set_if_absent(obj, &["spec", "timeout"], Value::from("1h0m0s"));
            set_if_absent(obj, &["spec", "serviceAccountName"], Value::from("default"));
            let by_name = obj
                .pointer("/spec/taskRef/name")
                .is_some_and(|n| n.as_str().is_some_and(|s| !s.is_empty()));
            let resolver = obj.pointer("/spec/taskRef/resolver").is_some();
            if by_name && !resolver {
                set_if_absent(obj, &["spec", "taskRef", "kind"], Value::from("Task"));
            }
        }
        _ => {}
    }
}

/// Admission of a write of the main resource (`old` = `None` for a create).
pub fn validate(
    group: &str,
    resource: &str,
    old: Option<&Value>,
    new: &Value,
) -> Result<(), Denied> {
    if group != "tekton.dev" {
        return Ok(());
    }
    match resource {
        "pipelineruns" => {
            // `PipelineRun.Validate`: fixture `cancelled-finally/01-pending-on-started.error.txt`.
            if new.pointer("/spec/status").and_then(Value::as_str) == Some("PipelineRunPending")
                && has_started(new)
            {
                return Err(denied(
                    "invalid value: PipelineRun cannot be Pending after it is started: spec.status",
                ));
            }
            if let Some(old) = old {
                if is_done(old) {
                    // Fixture `cancelled/03-clear-spec-while-done.error.txt`.
                    if spec_without(old, &[]) != spec_without(new, &[]) {
                        return Err(denied(
                            "invalid value: Once the PipelineRun is complete, no updates are allowed: spec",
                        ));
                    }
                } else if spec_without(old, &["status"]) != spec_without(new, &["status"]) {
                    // Fixture `cancelled-finally/01-timeouts-on-running.error.txt`. Upstream applies this
                    // to every run that is not done, started or not.
                    return Err(denied(
                        "invalid value: Once the PipelineRun has started, only status updates are allowed: spec",
                    ));
                }
            }
            Ok(())
        }
        "taskruns" => {
            if let Some(old) = old {
                if is_done(old) {
                    // Fixture `cancelled/03-clear-taskrun-spec-while-done.error.txt`.
                    if spec_without(old, &[]) != spec_without(new, &[]) {
                        return Err(denied(
                            "invalid value: Once the TaskRun is complete, no updates are allowed: spec",
                        ));
                    }
                } else if spec_without(old, &["status", "statusMessage"])
                    != spec_without(new, &["status", "statusMessage"])
                {
                    // `TaskRunSpec.ValidateUpdate` (no fixture: the recorded runs never hit it).
                    return Err(denied(
                        "invalid value: Once the TaskRun has started, only status and statusMessage updates are allowed: spec",
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture_error(path: &str) -> String {
        let text = std::fs::read_to_string(format!(
            "{}/../../tests/fixtures/tekton/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        text.trim()
            .strip_prefix("Error from server (BadRequest): ")
            .expect("kubectl prefix")
            .to_string()
    }

    /// Asserts that the webhook refuses the update `old` → `new` of a `resource` with the error
    /// kubectl recorded in fixture `recorded`.
    fn assert_refused(resource: &str, old: &Value, new: &Value, recorded: &str) {
        let e = validate("tekton.dev", resource, Some(old), new).expect_err("refused");
        assert_eq!(e.message, fixture_error(recorded));
    }

    fn run(cond: Option<&str>, spec: Value) -> Value {
        let mut o = json!({"spec": spec, "status": {"startTime": "2026-11-26T19:27:10Z"}});
        if let Some(c) = cond {
            o["status"]["conditions"] = json!([{"type": "Succeeded", "status": c}]);
        }
        o
    }

    #[test]
    fn defaults_match_the_fixtures() {
        let mut pr =
            json!({"spec": {"pipelineRef": {"name": "build-and-deploy"}, "taskRunTemplate": {}}});
        set_defaults("tekton.dev", "pipelineruns", &mut pr);
        let fixture: Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/../../tests/fixtures/tekton/dag-failed/01-failed-pipelinerun-demo-run.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .expect("fixture"),
        )
        .expect("json");
        assert_eq!(pr["spec"]["timeouts"], fixture["spec"]["timeouts"]);
        assert_eq!(
            pr["spec"]["taskRunTemplate"],
            fixture["spec"]["taskRunTemplate"]
        );
        let mut tr = json!({"spec": {"taskRef": {"name": "fetch"}}});
        set_defaults("tekton.dev", "taskruns", &mut tr);
        assert_eq!(
            tr["spec"],
            json!({"taskRef": {"name": "fetch", "kind": "Task"}, "timeout": "1h0m0s", "serviceAccountName": "default"})
        );
        let mut keep = json!({"spec": {"timeouts": {"pipeline": "5m"}}});
        set_defaults("tekton.dev", "pipelineruns", &mut keep);
        assert_eq!(keep["spec"]["timeouts"]["pipeline"], "5m");
    }

    /// `run` with `patch` merged into its spec (a `null` removes a field).
    fn spec_edited(run: &Value, patch: Value) -> Value {
        let mut edited = run.clone();
        json_patch::merge(&mut edited["spec"], &patch);
        edited
    }

    #[test]
    fn done_pipelinerun_refuses_spec_changes() {
        let old = run(
            Some("False"),
            json!({"status": "Cancelled", "pipelineRef": {"name": "p"}}),
        );
        let new = spec_edited(&old, json!({"status": null}));
        assert_refused(
            "pipelineruns",
            &old,
            &new,
            "cancelled/03-clear-spec-while-done.error.txt",
        );
        // Same spec: allowed (metadata-only writes on a done run).
        validate("tekton.dev", "pipelineruns", Some(&old), &old).expect("no spec change");
    }

    #[test]
    fn done_taskrun_refuses_spec_changes() {
        let old = run(Some("True"), json!({"taskRef": {"name": "t"}}));
        let cancel = spec_edited(&old, json!({"status": "TaskRunCancelled"}));
        let recorded = "cancelled/03-clear-taskrun-spec-while-done.error.txt";
        assert_refused("taskruns", &old, &cancel, recorded);
    }

    #[test]
    fn running_pipelinerun_allows_only_spec_status() {
        let old = run(Some("Unknown"), json!({"pipelineRef": {"name": "p"}}));
        let cancel = spec_edited(&old, json!({"status": "Cancelled"}));
        validate("tekton.dev", "pipelineruns", Some(&old), &cancel).expect("cancel allowed");
        for (edit, recorded) in [
            (
                json!({"timeouts": {"pipeline": "2h"}}),
                "cancelled-finally/01-timeouts-on-running.error.txt",
            ),
            (
                json!({"status": "PipelineRunPending"}),
                "cancelled-finally/01-pending-on-started.error.txt",
            ),
        ] {
            assert_refused("pipelineruns", &old, &spec_edited(&old, edit), recorded);
        }
    }

    #[test]
    fn running_taskrun_allows_status_and_message() {
        let old = run(Some("Unknown"), json!({"taskRef": {"name": "t"}}));
        let new = spec_edited(
            &old,
            json!({"status": "TaskRunCancelled", "statusMessage": "m"}),
        );
        validate("tekton.dev", "taskruns", Some(&old), &new).expect("allowed");
        let bad = spec_edited(&old, json!({"taskRef": {"name": "u"}}));
        assert!(validate("tekton.dev", "taskruns", Some(&old), &bad).is_err());
    }
}

//! The run's `retry.tekton.dev/*` annotations: a mirror of its [`AttemptRecord`] for people,
//! dashboards and `kubectl get -o yaml`. Written by the server, re-asserted by the recorder when
//! Tekton's `syncMetadata` or a user changed them, and never read back as input.

use serde_json::{json, Map, Value};

use super::{AttemptRecord, LastRetry};
use crate::api::{annotations, labels};
use crate::tekton::ObjectView;

/// The annotations the mirror of `record` consists of, with their values.
fn expected(record: &AttemptRecord) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (annotations::ATTEMPT, record.retry.attempt.to_string()),
        (
            annotations::LAST_RETRY,
            serde_json::to_string(&record.summary()).unwrap_or_default(),
        ),
    ];
    if let Some(t) = &record.original.start {
        out.push((annotations::ORIGINAL_START_TIME, t.clone()));
    }
    if let Some(t) = &record.original.completion {
        out.push((annotations::ORIGINAL_COMPLETION_TIME, t.clone()));
    }
    out
}

/// Whether the run's annotations and label show `record` as it is.
pub fn matches(run: &Value, record: &AttemptRecord) -> bool {
    let run = ObjectView::new(run);
    let get = |k: &str| run.annotation(k);
    let label_ok = run.label(labels::RETRIED) == Some("true");
    label_ok
        && expected(record).into_iter().all(|(k, v)| match k {
            // Compare the record, not its spelling.
            annotations::LAST_RETRY => get(k)
                .and_then(|s| serde_json::from_str::<LastRetry>(s).ok())
                .is_some_and(|shown| shown == record.summary()),
            _ => get(k) == Some(v.as_str()),
        })
}

/// The metadata merge patch that makes the run show `record`, fenced by `resource_version` when
/// given. It also sets the label `retry.tekton.dev/retried: "true"`, which the recorder's watch
/// selects by (Tekton's `syncMetadata` keeps labels it did not have at reconcile start).
pub fn patch(record: &AttemptRecord, resource_version: Option<&str>) -> Value {
    let mut ann = Map::new();
    for (k, v) in expected(record) {
        ann.insert(k.to_string(), Value::String(v));
    }
    let mut meta = json!({
        "annotations": Value::Object(ann),
        "labels": {labels::RETRIED: "true"},
    });
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = json!(rv);
    }
    json!({ "metadata": meta })
}

/// The fenced patch that removes the other controllers' annotations `record` removes
/// (`chains.tekton.dev/*`), when the run still has any of them. Only meant for a run that is not
/// done: Tekton Chains signs a done run whose `chains.tekton.dev/signed` is missing at once, so
/// removing it earlier would attest the old outcome.
pub fn removal_patch(run: &Value, record: &AttemptRecord) -> Option<Value> {
    let run = ObjectView::new(run);
    let ann = run.annotations()?;
    let present: Map<String, Value> = record
        .remove_annotations
        .iter()
        .filter(|k| ann.contains_key(k.as_str()))
        .map(|k| (k.clone(), Value::Null))
        .collect();
    if present.is_empty() {
        return None;
    }
    let rv = run.resource_version()?;
    Some(json!({"metadata": {"resourceVersion": rv, "annotations": Value::Object(present)}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::record::{OriginalTimes, Phase};

    fn record() -> AttemptRecord {
        AttemptRecord {
            retry: LastRetry {
                attempt: 2,
                phase: Some(Phase::Started),
                start: "2026-11-26T20:00:00Z".into(),
                by: "alice".into(),
                ..Default::default()
            },
            original: OriginalTimes {
                start: Some("T0".into()),
                completion: None,
            },
            remove_annotations: vec!["chains.tekton.dev/signed".into()],
            ..Default::default()
        }
    }

    fn run_with(patch: &Value) -> Value {
        let mut run = json!({"metadata": {"name": "r", "resourceVersion": "9",
            "annotations": {"chains.tekton.dev/signed": "true", "team": "a"}}});
        json_patch::merge(&mut run, patch);
        run
    }

    #[test]
    fn a_run_patched_with_the_mirror_matches_it() {
        let r = record();
        let run = run_with(&patch(&r, None));
        assert!(matches(&run, &r));
        assert_eq!(run["metadata"]["annotations"]["team"], "a", "others kept");
        let mut later = r.clone();
        later.retry.phase = Some(Phase::Ended);
        later.retry.outcome = Some("Succeeded".into());
        assert!(!matches(&run, &later), "an older mirror does not match");
        let mut forged = run.clone();
        forged["metadata"]["annotations"][annotations::ATTEMPT] = json!("7");
        assert!(!matches(&forged, &r));
        let mut unlabelled = run.clone();
        unlabelled["metadata"]["labels"] = json!({});
        assert!(!matches(&unlabelled, &r));
    }

    #[test]
    fn the_last_retry_annotation_is_compared_as_a_record_not_as_text() {
        let r = record();
        let mut run = run_with(&patch(&r, None));
        let shown: Value = serde_json::from_str(
            run["metadata"]["annotations"][annotations::LAST_RETRY]
                .as_str()
                .expect("shown"),
        )
        .expect("json");
        // The same record spelled otherwise (another tool rewrote it pretty-printed).
        run["metadata"]["annotations"][annotations::LAST_RETRY] =
            json!(serde_json::to_string_pretty(&shown).expect("pretty"));
        assert!(matches(&run, &r));
    }

    #[test]
    fn the_patch_is_fenced_when_asked() {
        assert_eq!(
            patch(&record(), Some("42"))["metadata"]["resourceVersion"],
            "42"
        );
        assert!(patch(&record(), None)["metadata"]
            .get("resourceVersion")
            .is_none());
    }

    #[test]
    fn removal_only_of_what_is_there() {
        let r = record();
        let run = run_with(&json!({}));
        let p = removal_patch(&run, &r).expect("a patch");
        assert_eq!(
            p["metadata"]["annotations"]["chains.tekton.dev/signed"],
            Value::Null
        );
        assert_eq!(p["metadata"]["resourceVersion"], "9");
        assert!(p["metadata"]["annotations"].get("team").is_none());
        let gone =
            run_with(&json!({"metadata": {"annotations": {"chains.tekton.dev/signed": null}}}));
        assert!(removal_patch(&gone, &r).is_none());
    }
}

//! The retry request: its path and its `PipelineRunRetry` body.

use crate::cli::RetryArgs;
use tekton_retry::api::{
    PipelineRunRetry, Preconditions, RetryMeta, RetrySpec, API_VERSION, GROUP, HISTORY_SUBRESOURCE,
    KIND, RESOURCE, SUBRESOURCE, VERSION,
};
use tekton_retry::retry::cluster::push_query;

/// Bytes escaped in a path segment: everything but letters, digits, `-`, `.` and `_`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// `text` percent-encoded as one path segment or query value.
fn enc(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, SEGMENT).to_string()
}

/// `/apis/retry.tekton.dev/v1alpha1/namespaces/NS/pipelineruns/NAME/retry`, with `?dryRun=All` for a
/// dry run. The same path kube-apiserver proxies to the aggregated server. Names are DNS labels or
/// subdomains, so they need no escaping; anything else is percent-encoded so it cannot change the path.
pub fn retry_path(namespace: &str, name: &str, dry_run: bool) -> String {
    let mut path = format!(
        "/apis/{GROUP}/{VERSION}/namespaces/{}/{RESOURCE}/{}/{SUBRESOURCE}",
        enc(namespace),
        enc(name)
    );
    if dry_run {
        path.push_str("?dryRun=All");
    }
    path
}

/// `GET` path of a Tekton v1 PipelineRun.
pub fn pipelinerun_path(namespace: &str, name: &str) -> String {
    format!("{}/{}", pipelinerun_collection_path(namespace), enc(name))
}

/// `LIST` path of the TaskRuns of a PipelineRun: Tekton labels every child TaskRun
/// `tekton.dev/pipelineRun=<run>` (fixtures/tekton/dag-failed/01-failed-taskrun-demo-run-b.json).
pub fn taskruns_path(namespace: &str, run: &str) -> String {
    format!(
        "{}?labelSelector={}",
        taskrun_collection_path(namespace),
        enc(&format!("tekton.dev/pipelineRun={run}"))
    )
}

/// `GET` path listing a namespace's PipelineRuns that match a label selector (all when empty).
pub fn pipelineruns_path(namespace: &str, selector: &str) -> String {
    let mut path = pipelinerun_collection_path(namespace);
    if !selector.is_empty() {
        path.push_str("?labelSelector=");
        path.push_str(&enc(selector));
    }
    path
}

/// The PipelineRuns of a namespace (for a watch).
pub fn pipelinerun_collection_path(namespace: &str) -> String {
    format!(
        "/apis/tekton.dev/v1/namespaces/{}/pipelineruns",
        enc(namespace)
    )
}

/// The TaskRuns of a namespace (for a watch).
pub fn taskrun_collection_path(namespace: &str) -> String {
    format!("/apis/tekton.dev/v1/namespaces/{}/taskruns", enc(namespace))
}

/// A watch of `collection` from `resource_version`, ended by the server after five minutes (the
/// plugin opens it again), with bookmarks.
pub fn watch_path(collection: &str, fields: &str, labels: &str, resource_version: &str) -> String {
    let mut path = format!("{collection}?watch=true&allowWatchBookmarks=true&timeoutSeconds=300");
    let params = [
        ("fieldSelector", fields),
        ("labelSelector", labels),
        ("resourceVersion", resource_version),
    ];
    push_query(&mut path, &params, SEGMENT);
    path
}

/// `GET` path of a run's attempt history: the `history` subresource, authorized like the run
/// (`get` on `pipelineruns/history` in its namespace).
pub fn history_path(namespace: &str, run: &str) -> String {
    format!(
        "/apis/{API_VERSION}/namespaces/{}/pipelineruns/{}/{HISTORY_SUBRESOURCE}",
        enc(namespace),
        enc(run)
    )
}

/// The request body for `args` on the run `namespace/name`.
pub fn retry_body(namespace: &str, args: &RetryArgs) -> PipelineRunRetry {
    PipelineRunRetry {
        api_version: Some(API_VERSION.to_string()),
        kind: Some(KIND.to_string()),
        metadata: RetryMeta {
            name: args.name.clone(),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        spec: RetrySpec {
            reason: args.reason.clone(),
            preconditions: args.precondition_attempt.map(|attempt| Preconditions {
                uid: None,
                attempt: Some(attempt),
            }),
            finally: args.finally.map(Into::into),
            restart_tasks: args.restart_tasks.clone(),
            acknowledge_non_idempotent: args.acknowledge.clone(),
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FinallyArg;

    fn args(name: &str) -> RetryArgs {
        RetryArgs {
            name: Some(name.into()),
            selector: None,
            last_failed: false,
            reason: None,
            finally: None,
            restart_tasks: vec![],
            acknowledge: vec![],
            precondition_attempt: None,
            dry_run: false,
            output: None,
            follow: false,
            timeout: None,
        }
    }

    #[test]
    fn path_is_the_aggregated_subresource() {
        assert_eq!(
            retry_path("demo", "demo-failed", false),
            "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/demo-failed/retry"
        );
        assert_eq!(
            retry_path("demo", "a.b", true),
            "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/a.b/retry?dryRun=All"
        );
        assert_eq!(
            retry_path("demo", "x/../y?z", false),
            "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/x%2F..%2Fy%3Fz/retry"
        );
    }

    #[test]
    fn watch_paths_leave_out_what_they_do_not_select() {
        assert_eq!(
            watch_path(&taskrun_collection_path("demo"), "", "tekton.dev/pipelineRun=r-1", ""),
            "/apis/tekton.dev/v1/namespaces/demo/taskruns?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&labelSelector=tekton.dev%2FpipelineRun%3Dr-1"
        );
        assert_eq!(
            watch_path(&pipelinerun_collection_path("demo"), "metadata.name=r-1", "", "7"),
            "/apis/tekton.dev/v1/namespaces/demo/pipelineruns?watch=true&allowWatchBookmarks=true&timeoutSeconds=300&fieldSelector=metadata.name%3Dr-1&resourceVersion=7"
        );
    }

    #[test]
    fn read_paths() {
        assert_eq!(
            pipelinerun_path("demo", "demo-failed"),
            "/apis/tekton.dev/v1/namespaces/demo/pipelineruns/demo-failed"
        );
        assert_eq!(
            taskruns_path("demo", "demo-failed"),
            "/apis/tekton.dev/v1/namespaces/demo/taskruns?labelSelector=tekton.dev%2FpipelineRun%3Ddemo-failed"
        );
        assert_eq!(
            history_path("demo", "demo-failed"),
            "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/demo-failed/history"
        );
    }

    #[test]
    fn minimal_body_has_only_identity() {
        let body = serde_json::to_value(retry_body("demo", &args("r"))).expect("serialises");
        assert_eq!(
            body,
            serde_json::json!({
                "apiVersion": "retry.tekton.dev/v1alpha1",
                "kind": "PipelineRunRetry",
                "metadata": {"name": "r", "namespace": "demo"},
                "spec": {},
            })
        );
    }

    #[test]
    fn flags_map_to_spec_fields() {
        let mut a = args("r");
        a.reason = Some("registry back".into());
        a.finally = Some(FinallyArg::Keep);
        a.restart_tasks = vec!["train".into()];
        a.acknowledge = vec!["deploy".into()];
        a.precondition_attempt = Some(1);
        let body = serde_json::to_value(retry_body("demo", &a)).expect("serialises");
        assert_eq!(
            body["spec"],
            serde_json::json!({
                "reason": "registry back",
                "preconditions": {"attempt": 1},
                "finally": "Keep",
                "restartTasks": ["train"],
                "acknowledgeNonIdempotent": ["deploy"],
            })
        );
        // The server parses it with deny_unknown_fields: the body must round-trip.
        let back: PipelineRunRetry = serde_json::from_value(body).expect("server accepts it");
        assert_eq!(
            back.spec.finally,
            Some(tekton_retry::api::FinallyPolicy::Keep)
        );
    }
}

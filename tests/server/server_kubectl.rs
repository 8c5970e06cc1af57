//! Error shapes as real kubectl renders them: kubectl talks straight to the server with a client-CA
//! certificate. Fails without kubectl unless `TEKTON_RETRY_SKIP_KUBECTL=1`.

use tekton_retry_test_support::kubectl as kubectl_support;
use tekton_retry_test_support::server as server_support;

use std::path::Path;

use server_support::*;
use tekton_retry::api::{ApiError, Cause};

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
    let bin = kubectl_support::kubectl().unwrap_or_else(|| "kubectl".into());
    let out = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("run kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl create --raw <retry path of demo/name> -f body`.
async fn create_retry(kubeconfig: &Path, name: &str, body: &str) -> (bool, String, String) {
    let path = retry_path("demo", name);
    kubectl(kubeconfig, &["create", "--raw", &path, "-f", body]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_renders_the_error_shapes() {
    if kubectl_support::kubectl().is_none() {
        return;
    }
    let mut h = Harness::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, h.kubeconfig("admin", &[])).expect("write");
    let body = dir.path().join("retry.json");
    std::fs::write(&body, r#"{"apiVersion":"retry.tekton.dev/v1alpha1","kind":"PipelineRunRetry","spec":{"restartTasks":["zz"]}}"#)
        .expect("write");
    let body = body.to_str().expect("utf-8");

    h.engine.answer_with(|r| match r.name.as_str() {
        "demo-running" => Err(ApiError::conflict(
            "PipelineRun demo/demo-running is still running: retry it once it has failed or been cancelled",
        )
        .with_name(r.name.clone())),
        "demo-failed" => Err(ApiError::invalid(
            "PipelineRunRetry \"demo-failed\" is invalid",
            vec![Cause::invalid("spec.restartTasks[0]", "no pipeline task \"zz\" in the pipeline")],
        )
        .with_name(r.name.clone())),
        _ => Ok(success(r)),
    });

    let (ok, _, err) = create_retry(&kc, "demo-running", body).await;
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "Error from server (Conflict): PipelineRun demo/demo-running is still running: retry it once it has failed or been cancelled"
    );

    let (ok, _, err) = create_retry(&kc, "demo-failed", body).await;
    assert!(!ok);
    assert_eq!(
        err.trim(),
        r#"The PipelineRunRetry "demo-failed" is invalid: spec.restartTasks[0]: no pipeline task "zz" in the pipeline"#
    );

    // Success prints the created object.
    let (ok, out, err) = create_retry(&kc, "demo-ok", body).await;
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(created["status"]["attempt"], 2);
    let calls = h.engine.calls();
    assert_eq!(
        calls.last().map(|c| c.spec.restart_tasks.clone()),
        Some(vec!["zz".to_string()])
    );
    assert_eq!(
        calls.last().map(|c| c.user.username.clone()).as_deref(),
        Some("admin")
    );

    // Discovery through kubectl.
    let (ok, out, err) = kubectl(&kc, &["get", "--raw", "/apis/retry.tekton.dev/v1alpha1"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("pipelineruns/retry"));

    // A user without the right sees kube-apiserver's Forbidden wording.
    h.kube.deny_all();
    std::fs::write(&kc, h.kubeconfig("viewer", &[])).expect("write");
    let (ok, _, err) = create_retry(&kc, "demo-ok", body).await;
    assert!(!ok);
    assert_eq!(
        err.trim(),
        r#"Error from server (Forbidden): pipelineruns.retry.tekton.dev "demo-ok" is forbidden: User "viewer" cannot create resource "pipelineruns/retry" in API group "retry.tekton.dev" in the namespace "demo""#
    );
    h.shutdown().await;
}

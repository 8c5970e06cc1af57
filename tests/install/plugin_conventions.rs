//! The plugin as kubectl and tkn users expect it, with the real kubectl against the in-process
//! sandbox: `tkn-retry` answers as `tkn retry`, `--selector … --last-failed` retries the most
//! recent failed or cancelled run of a pipeline, and shell completion goes through kubectl's plugin
//! completion convention (`kubectl_complete-retry`), which kubectl's bash, zsh and fish completion
//! scripts all use. Without kubectl these tests fail unless `TEKTON_RETRY_SKIP_KUBECTL=1`.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tekton_retry_test_support::kubectl as kubectl_support;

use sandbox_support::{start, NS};
use serde_json::Value;
use tekton_retry_sandbox::Sandbox;

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-retry");

fn kubectl_present() -> bool {
    kubectl_support::kubectl().is_some()
}

/// A directory as a user sets it up: `kubectl-retry`, `tkn-retry` (the same program) and
/// `plugins/kubectl_complete-retry`.
fn install() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["kubectl-retry", "tkn-retry"] {
        std::fs::copy(PLUGIN, dir.path().join(name)).expect("copy plugin");
    }
    let script = dir.path().join("kubectl_complete-retry");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/kubectl_complete-retry"),
        &script,
    )
    .expect("copy completion script");
    dir
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).expect("PATH")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn run(
    program: PathBuf,
    args: Vec<String>,
    kubeconfig: Option<PathBuf>,
    path: std::ffi::OsString,
) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut c = Command::new(program);
        c.args(&args).env("PATH", path);
        match kubeconfig {
            Some(k) => c.env("KUBECONFIG", k),
            None => c.env("KUBECONFIG", "/nonexistent"),
        };
        c.output().expect("run")
    })
    .await
    .expect("join")
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// `kubectl retry pr -n <NS> <selector> --last-failed` through the plugin installed in `dir`,
/// with the kubeconfig in `files`.
async fn last_failed(
    files: &tempfile::TempDir,
    dir: &tempfile::TempDir,
    selector: &[&str],
) -> Output {
    let mut args = strings(&["retry", "pr", "-n", NS]);
    args.extend(strings(selector));
    args.push("--last-failed".into());
    run(
        PathBuf::from("kubectl"),
        args,
        Some(files.path().join("kubeconfig")),
        path_with(dir.path()),
    )
    .await
}

#[tokio::test]
async fn tkn_retry_answers_as_a_tkn_plugin() {
    let dir = install();
    let path = path_with(dir.path());
    let tkn = run(
        dir.path().join("tkn-retry"),
        strings(&["--help"]),
        None,
        path.clone(),
    )
    .await;
    assert!(tkn.status.success());
    assert!(
        text(&tkn.stdout).contains("Usage: tkn retry [OPTIONS] <COMMAND>"),
        "{}",
        text(&tkn.stdout)
    );
    let usage = run(
        dir.path().join("tkn-retry"),
        strings(&["pr"]),
        None,
        path.clone(),
    )
    .await;
    assert_eq!(usage.status.code(), Some(2));
    assert!(
        text(&usage.stderr).contains("Usage: tkn retry pipelinerun"),
        "{}",
        text(&usage.stderr)
    );
    let kubectl = run(
        dir.path().join("kubectl-retry"),
        strings(&["--help"]),
        None,
        path,
    )
    .await;
    assert!(text(&kubectl.stdout).contains("Usage: kubectl retry [OPTIONS] <COMMAND>"));
}

async fn sandbox(dir: &Path) -> Sandbox {
    let sb = start().await;
    sb.write_files(dir).expect("kubeconfig");
    sb
}

/// (name, Succeeded status, completionTime) of the demo runs.
async fn runs(sb: &Sandbox) -> Vec<(String, String, String)> {
    let client = sb.client("admin").expect("client");
    let list = sandbox_support::runs(&client)
        .list(&Default::default())
        .await
        .expect("list");
    list.items
        .into_iter()
        .map(|o| {
            let v: Value = serde_json::to_value(o).expect("json");
            let cond = v["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Succeeded").cloned())
                .unwrap_or_default();
            (
                v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                cond["status"].as_str().unwrap_or("Unknown").to_owned(),
                v["status"]["completionTime"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_failed_retries_the_most_recent_failed_or_cancelled_run_of_a_pipeline() {
    if !kubectl_present() {
        return;
    }
    let dir = install();
    let files = tempfile::tempdir().expect("tempdir");
    let sb = sandbox(files.path()).await;
    let before = runs(&sb).await;
    let failed: Vec<_> = before.iter().filter(|(_, s, _)| s == "False").collect();
    assert!(
        failed.len() >= 2,
        "the seed has a failed and a cancelled run: {before:?}"
    );
    let want = failed
        .iter()
        .max_by(|a, b| a.2.cmp(&b.2).then(a.0.cmp(&b.0)))
        .map(|r| r.0.clone())
        .expect("one");
    let out = last_failed(
        &files,
        &dir,
        &["--selector", "tekton.dev/pipeline=build-and-deploy"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains(&format!("retrying pipelinerun {NS}/{want},")),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with(&format!(
            "pipelinerun {NS}/{want} retried: attempt 2 started."
        )),
        "{}",
        text(&out.stdout)
    );
    // No failed run of another pipeline: a clear error, nothing retried.
    let none = last_failed(&files, &dir, &["-l", "tekton.dev/pipeline=nope"]).await;
    assert_eq!(none.status.code(), Some(1));
    assert!(
        text(&none.stderr).contains("no failed or cancelled pipelinerun matches"),
        "{}",
        text(&none.stderr)
    );
    sb.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_completes_the_plugin_through_kubectl_complete_retry() {
    if !kubectl_present() {
        return;
    }
    let dir = install();
    let files = tempfile::tempdir().expect("tempdir");
    let sb = sandbox(files.path()).await;
    let complete = |words: &[&str]| {
        let mut args = strings(&["__complete", "retry"]);
        args.extend(strings(words));
        run(
            PathBuf::from("kubectl"),
            args,
            Some(files.path().join("kubeconfig")),
            path_with(dir.path()),
        )
    };
    let lines =
        |o: &Output| -> Vec<String> { text(&o.stdout).lines().map(str::to_owned).collect() };

    let subs = complete(&["p"]).await;
    assert_eq!(
        lines(&subs),
        [
            "pipelinerun\tRetry a PipelineRun in place",
            "pr\tRetry a PipelineRun in place",
            ":4"
        ]
    );
    let flags = complete(&["pr", "--last"]).await;
    assert_eq!(lines(&flags), ["--last-failed", ":4"]);
    // Run names from the cluster: only failed or cancelled ones for a retry.
    let names = complete(&["-n", NS, "pr", "demo-"]).await;
    let got = lines(&names);
    let all = runs(&sb).await;
    let want: Vec<&str> = all
        .iter()
        .filter(|r| r.1 == "False")
        .map(|r| r.0.as_str())
        .collect();
    assert!(!want.is_empty());
    for w in &want {
        assert!(
            got.iter().any(|l| l.starts_with(&format!("{w}\t"))),
            "{w} missing from {got:?}"
        );
    }
    assert!(
        !got.iter().any(|l| l.starts_with("demo-succeeded")),
        "a succeeded run is not offered: {got:?}"
    );
    let history = complete(&["-n", NS, "history", "demo-succ"]).await;
    assert!(
        lines(&history)
            .iter()
            .any(|l| l.starts_with("demo-succeeded")),
        "{:?}",
        lines(&history)
    );
    sb.shutdown(std::time::Duration::from_secs(1)).await;
}

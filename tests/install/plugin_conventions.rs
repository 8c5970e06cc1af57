//! The plugin as kubectl and tkn users expect it, with the real kubectl against the in-process
//! sandbox: `tkn-retry` answers as `tkn retry`, `--selector … --last-failed` retries the most
//! recent failed or cancelled run of a pipeline, and shell completion goes through kubectl's plugin
//! completion convention (`kubectl_complete-retry`), which kubectl's bash, zsh and fish completion
//! scripts all use. Without kubectl these tests fail unless `TEKTON_RETRY_SKIP_KUBECTL=1`.

use tekton_retry_test_support::sandbox as sandbox_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tekton_retry_test_support::kubectl as kubectl_support;

use crate::output::{exited, text};
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

/// The plugin installed ([`install`]) for a started sandbox, whose kubeconfig is in `files`.
struct Installed {
    dir: tempfile::TempDir,
    files: tempfile::TempDir,
    sb: Sandbox,
}

impl Installed {
    /// Installs the plugin and starts the sandbox; `None` (the test skips) without kubectl.
    async fn start() -> Option<Installed> {
        if !kubectl_present() {
            return None;
        }
        let dir = install();
        let files = tempfile::tempdir().expect("tempdir");
        let sb = sandbox(files.path()).await;
        Some(Installed { dir, files, sb })
    }

    /// `kubectl <args>` with the plugin on the PATH and the sandbox's kubeconfig.
    async fn kubectl(&self, args: Vec<String>) -> Output {
        let kubeconfig = self.files.path().join("kubeconfig");
        let path = path_with(self.dir.path());
        run(PathBuf::from("kubectl"), args, Some(kubeconfig), path).await
    }

    /// `kubectl retry pr -n <NS> <selector> --last-failed`.
    async fn last_failed(&self, selector: &[&str]) -> Output {
        let mut args = strings(&["retry", "pr", "-n", NS]);
        args.extend(strings(selector));
        args.push("--last-failed".into());
        self.kubectl(args).await
    }
}

#[tokio::test]
async fn tkn_retry_answers_as_a_tkn_plugin() {
    let dir = install();
    let path = path_with(dir.path());
    let plugin = |program: &str, args: &[&str]| {
        run(dir.path().join(program), strings(args), None, path.clone())
    };
    let help = exited(&plugin("tkn-retry", &["--help"]).await, 0);
    assert!(
        help.contains("Usage: tkn retry [OPTIONS] <COMMAND>"),
        "{help}"
    );
    let usage = plugin("tkn-retry", &["pr"]).await;
    exited(&usage, 2);
    let stderr = text(&usage.stderr);
    assert!(stderr.contains("Usage: tkn retry pipelinerun"), "{stderr}");
    let kubectl = plugin("kubectl-retry", &["--help"]).await;
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
    let Some(at) = Installed::start().await else {
        return;
    };
    let sb = &at.sb;
    let before = runs(sb).await;
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
    let out = at
        .last_failed(&["--selector", "tekton.dev/pipeline=build-and-deploy"])
        .await;
    exited(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("retrying pipelinerun {NS}/{want},")),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "pipelinerun {NS}/{want} retried: attempt 2 started."
        )),
        "{stdout}"
    );
    // No failed run of another pipeline: a clear error, nothing retried.
    let none = at.last_failed(&["-l", "tekton.dev/pipeline=nope"]).await;
    exited(&none, 1);
    let stderr = text(&none.stderr);
    assert!(
        stderr.contains("no failed or cancelled pipelinerun matches"),
        "{stderr}"
    );
    at.sb.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_completes_the_plugin_through_kubectl_complete_retry() {
    let Some(at) = Installed::start().await else {
        return;
    };
    let sb = &at.sb;
    let complete = |words: &[&str]| {
        let mut args = strings(&["__complete", "retry"]);
        args.extend(strings(words));
        at.kubectl(args)
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
    let all = runs(sb).await;
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
    at.sb.shutdown(std::time::Duration::from_secs(1)).await;
}

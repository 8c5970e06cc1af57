//! `kubectl retry` end to end against the sandbox: the real kubectl finds the plugin on
//! PATH and talks to the sandbox's aggregator front proxy, which proxies the retry to the real server
//! code; the Tekton simulator runs the tasks.
//!
//! They need the real `kubectl`: without it they fail unless `TEKTON_RETRY_SKIP_KUBECTL=1`.
//! `TEKTON_RETRY_BIN=/path/to/tekton-retry` runs them against another build of the server binary.

use crate::output::{exited, text};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tekton_retry_test_support::kubectl as kubectl_support;

/// A running cluster the tests can point kubectl at.
trait Cluster {
    /// Kubeconfig of a user who may retry.
    fn kubeconfig(&self) -> PathBuf;
    /// Kubeconfig of a read-only user without the retry right (`DIR/kubeconfig-viewer`).
    fn viewer_kubeconfig(&self) -> PathBuf;
}

/// `tekton-retry sandbox --dir DIR` as a child process, stopped on drop.
struct Sandbox {
    child: Child,
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// Starts the sandbox and waits (generously, to avoid a hang) for its
    /// `sandbox ready: KUBECONFIG=DIR/kubeconfig` line.
    /// `None` (with a printed reason) when kubectl is not installed.
    fn start() -> Option<Sandbox> {
        kubectl_support::kubectl()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = std::env::var_os("TEKTON_RETRY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tekton-retry")));
        let mut child = Command::new(bin)
            .args(["sandbox", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tekton-retry sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("sandbox ready:") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(180));
        let sandbox = Sandbox { child, dir };
        let line = line.expect("the sandbox printed its ready line");
        assert!(line.contains("KUBECONFIG="), "{line}");
        Some(sandbox)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster for Sandbox {
    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }
    fn viewer_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig-viewer")
    }
}

/// PATH with the directory of the plugin binary first, as for a user who installed it.
fn path_with_plugin(plugin: &Path) -> std::ffi::OsString {
    let mut paths = vec![plugin.parent().expect("plugin dir").to_path_buf()];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).expect("PATH")
}

/// Runs the real `kubectl` with `args` against `kubeconfig`, the plugin findable on PATH.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    let plugin = Path::new(env!("CARGO_BIN_EXE_kubectl-retry"));
    Command::new(kubectl_support::kubectl().unwrap_or_else(|| "kubectl".into()))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path_with_plugin(plugin))
        .output()
        .expect("run kubectl")
}

/// `kubectl retry ARGS…`.
fn kubectl_retry(kubeconfig: &Path, args: &[&str]) -> Output {
    let mut all = vec!["retry"];
    all.extend_from_slice(args);
    kubectl(kubeconfig, &all)
}

fn jsonpath(kubeconfig: &Path, name: &str, path: &str) -> String {
    let out = kubectl(
        kubeconfig,
        &[
            "get",
            "pipelineruns.tekton.dev",
            name,
            "-n",
            "demo",
            "-o",
            &format!("jsonpath={path}"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// `kubectl retry pr demo-failed -n demo <extra> --follow --timeout 3m` as the admin.
fn follow_demo_failed(sb: &Sandbox, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["pr", "demo-failed", "-n", "demo"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--follow", "--timeout", "3m"]);
    kubectl_retry(&sb.kubeconfig(), &args)
}

#[test]
fn follow_demo_failed_to_success() {
    let Some(sb) = Sandbox::start() else { return };
    let out = follow_demo_failed(&sb, &[]);
    let stdout = exited(&out, 0);
    assert!(
        stdout.starts_with("pipelinerun demo/demo-failed retried: attempt 2 started.\n"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("PipelineRun demo/demo-failed attempt 2 Succeeded"),
        "{stdout}"
    );
    assert_eq!(
        jsonpath(
            &sb.kubeconfig(),
            "demo-failed",
            "{.status.conditions[0].status}"
        ),
        "True"
    );
}

#[test]
fn refusals_print_the_server_message_and_exit_1() {
    let Some(sb) = Sandbox::start() else { return };
    for (name, reason) in [
        ("demo-succeeded", "Conflict"),
        ("demo-running", "Conflict"),
        ("no-such-run", "NotFound"),
    ] {
        let out = kubectl_retry(&sb.kubeconfig(), &["pr", name, "-n", "demo"]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("Error from server ({reason}): ")),
            "{name}: {stderr}"
        );
        assert!(
            !stderr.contains("installed?"),
            "{name}: the group is served: {stderr}"
        );
    }
    let out = kubectl_retry(
        &sb.viewer_kubeconfig(),
        &["pr", "demo-failed", "-n", "demo"],
    );
    exited(&out, 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("Error from server (Forbidden): "),
        "{stderr}"
    );
}

#[test]
fn dry_run_changes_nothing() {
    let Some(sb) = Sandbox::start() else { return };
    let version = || {
        jsonpath(
            &sb.kubeconfig(),
            "demo-failed",
            "{.metadata.resourceVersion}",
        )
    };
    let before = version();
    let out = kubectl_retry(
        &sb.kubeconfig(),
        &["pr", "demo-failed", "-n", "demo", "--dry-run"],
    );
    let stdout = exited(&out, 0);
    assert!(stdout.starts_with("Dry run (nothing was changed): retrying pipelinerun demo/demo-failed would start attempt 2.\n"), "{stdout}");
    assert!(stdout.contains("\n  b "), "b re-runs: {stdout}");
    let after = version();
    assert_eq!(before, after, "a dry run writes nothing");
    let out = kubectl_retry(&sb.kubeconfig(), &["history", "demo-failed", "-n", "demo"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("was never retried"), "{stdout}");
}

#[test]
fn history_lists_the_attempt() {
    let Some(sb) = Sandbox::start() else { return };
    let out = follow_demo_failed(&sb, &["--reason", "e2e"]);
    exited(&out, 0);
    let out = kubectl_retry(&sb.kubeconfig(), &["history", "demo-failed", "-n", "demo"]);
    let stdout = exited(&out, 0);
    let rows: Vec<&str> = stdout.lines().collect();
    assert!(rows[0].starts_with("ATTEMPT"), "{stdout}");
    assert!(rows[1].starts_with("1 "), "{stdout}");
    assert!(
        rows[2].starts_with("2 ") && rows[2].contains("Succeeded") && rows[2].ends_with("e2e"),
        "{stdout}"
    );
    let path = "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/demo-failed/history";
    assert!(
        stdout.contains(&format!("kubectl get --raw {path}")),
        "{stdout}"
    );
    // The archive the hint points at exists, read by real kubectl through the front proxy.
    let out = kubectl(&sb.kubeconfig(), &["get", "--raw", path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    assert_eq!(history["kind"], "PipelineRunRetryHistory");
    let archived: serde_json::Value = serde_json::from_str(
        history["data"]["attempt-1.json"]
            .as_str()
            .expect("attempt 1 archived"),
    )
    .expect("archive JSON");
    assert!(
        archived["runs"].as_array().is_some_and(|r| !r.is_empty()),
        "{archived:#}"
    );
}

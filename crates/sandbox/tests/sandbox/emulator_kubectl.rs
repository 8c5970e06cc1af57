//! The real kubectl against the emulator (failing without kubectl unless `TEKTON_RETRY_SKIP_KUBECTL=1`):
//! get (tables), get --raw, auth can-i, create -f, patch (with Tekton's webhook message), get -w.

use crate::running_emulator::*;
use tekton_retry_test_support::emulator as emulator_support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use emulator_support::*;
use serde_json::json;
use tekton_retry_sandbox::emulator::{Emulator, Gvr};
use tokio::io::{AsyncBufReadExt, BufReader};

use tekton_retry_test_support::kubectl as kubectl_support;

fn kubectl_present() -> bool {
    kubectl_support::kubectl().is_some()
}

/// An emulator, where kubectl is present (the kubectl finder decides whether its absence fails).
async fn start_if_kubectl() -> Option<Running> {
    if !kubectl_present() {
        return None;
    }
    Some(started().await)
}

/// [`start_if_kubectl`] with the failed run `demo/demo-failed` stored.
async fn seeded_if_kubectl() -> Option<Running> {
    let emu = start_if_kubectl().await?;
    seed(&emu);
    Some(emu)
}

/// `kubectl auth can-i create pipelineruns/retry -n demo`.
const CAN_I_RETRY: [&str; 7] = [
    "auth",
    "can-i",
    "create",
    "pipelineruns.retry.tekton.dev",
    "--subresource=retry",
    "-n",
    "demo",
];

/// `kubectl patch pipelinerun demo-run -n demo --type merge -p <patch>`.
fn merge_patch_demo_run(patch: &str) -> [&str; 9] {
    [
        "patch",
        "pipelinerun",
        "demo-run",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        patch,
    ]
}

/// The kubectl found (only called after [`kubectl_present`]).
fn kubectl_path() -> std::path::PathBuf {
    kubectl_support::kubectl().unwrap_or_else(|| "kubectl".into())
}

struct Kube {
    dir: tempfile::TempDir,
}

impl Kube {
    fn new(emu: &Emulator) -> Kube {
        let dir = tempfile::tempdir().expect("tempdir");
        for user in ["admin", "viewer"] {
            std::fs::write(
                dir.path().join(format!("kubeconfig-{user}")),
                emu.kubeconfig_yaml(user).expect("yaml"),
            )
            .expect("write");
        }
        Kube { dir }
    }

    fn cmd(&self, user: &str, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(kubectl_path());
        c.arg(format!(
            "--kubeconfig={}",
            self.dir.path().join(format!("kubeconfig-{user}")).display()
        ))
        .arg(format!(
            "--cache-dir={}",
            self.dir.path().join("cache").display()
        ))
        .args(args)
        .env("HOME", self.dir.path())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .kill_on_drop(true);
        c
    }

    /// Run to completion: (exit code, stdout, stderr).
    async fn run(&self, user: &str, args: &[&str]) -> (i32, String, String) {
        let out = tokio::time::timeout(Duration::from_secs(60), self.cmd(user, args).output())
            .await
            .expect("kubectl finishes")
            .expect("kubectl runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

/// The stored object `namespace/name` of `gvr`.
fn stored(emu: &Emulator, gvr: &Gvr, namespace: &str, name: &str) -> serde_json::Value {
    emu.store()
        .get(gvr, namespace, name)
        .unwrap_or_else(|e| panic!("{namespace}/{name} stored: {e}"))
}

fn seed(emu: &Emulator) {
    let mut pr = pipelinerun("demo-failed");
    pr["status"] = json!({"startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:01:00Z",
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]});
    emu.store().create(&Gvr::pipelineruns(), pr).expect("seed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_raw_and_create() {
    let Some(emu) = seeded_if_kubectl().await else {
        return;
    };
    let k = Kube::new(&emu);
    let (code, out, err) = k.run("admin", &["get", "pipelineruns", "-n", "demo"]).await;
    assert_eq!(code, 0, "{err}");
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "SUCCEEDED", "REASON", "STARTTIME", "COMPLETIONTIME"],
        "{out}"
    );
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["demo-failed", "False", "Failed"], "{out}");

    let (code, out, err) = k.run("viewer", &["get", "--raw", "/apis"]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .any(|g| g["name"] == "tekton.dev"));

    let f = k.file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-kubectl\n  namespace: demo\ndata:\n  k: v\n");
    let (code, out, err) = k
        .run("admin", &["create", "-f", &f.display().to_string()])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "configmap/from-kubectl created");
    let cm = stored(&emu, &Gvr::configmaps(), "demo", "from-kubectl");
    assert_eq!(cm["data"]["k"], "v");

    let (code, _, err) = k
        .run("viewer", &["create", "-f", &f.display().to_string()])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("Error from server (Forbidden)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_retry() {
    let Some(emu) = start_if_kubectl().await else {
        return;
    };
    let k = Kube::new(&emu);
    let args = CAN_I_RETRY;
    let (code, out, err) = k.run("admin", &args).await;
    assert_eq!((code, out.trim()), (0, "yes"), "{err}");
    let (code, out, err) = k.run("viewer", &args).await;
    assert_eq!((code, out.trim()), (1, "no"), "{err}");
    let (code, out, _) = k
        .run(
            "viewer",
            &[
                "auth",
                "can-i",
                "get",
                "pipelineruns.tekton.dev",
                "-n",
                "demo",
            ],
        )
        .await;
    assert_eq!((code, out.trim()), (0, "yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patch_prints_the_webhook_message_of_the_fixture() {
    let Some(emu) = start_if_kubectl().await else {
        return;
    };
    let mut pr = pipelinerun("demo-run");
    pr["spec"]["status"] = json!("Cancelled");
    pr["status"] = json!({"startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Cancelled"}]});
    emu.store().create(&Gvr::pipelineruns(), pr).expect("seed");
    let k = Kube::new(&emu);
    let (code, out, err) = k
        .run(
            "admin",
            &merge_patch_demo_run(r#"{"spec":{"status":null}}"#),
        )
        .await;
    assert_eq!(code, 1, "{out}");
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/tekton/cancelled/03-clear-spec-while-done.error.txt"
    ))
    .expect("fixture");
    assert_eq!(err.trim(), fixture.trim());
    let (code, out, err) = k
        .run(
            "admin",
            &merge_patch_demo_run(r#"{"metadata":{"labels":{"a":"b"}}}"#),
        )
        .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "pipelinerun.tekton.dev/demo-run patched");
}

async fn next(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("kubectl prints")
        .expect("read")
        .expect("a line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_new_objects() {
    let Some(emu) = seeded_if_kubectl().await else {
        return;
    };
    let k = Kube::new(&emu);
    let mut child = k
        .cmd("viewer", &["get", "pipelineruns", "-n", "demo", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert!(next(&mut lines).await.starts_with("NAME"));
    assert!(next(&mut lines).await.starts_with("demo-failed"));
    emu.store()
        .create(&Gvr::pipelineruns(), pipelinerun("watched"))
        .expect("create");
    let l = next(&mut lines).await;
    assert!(l.starts_with("watched"), "{l}");
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_raw_goes_through_the_front_proxy() {
    let Some(emu) = start_if_kubectl().await else {
        return;
    };
    let be = serve_backend(&emu).await;
    let k = Kube::new(&emu);
    // With the group in discovery, can-i resolves the resource without a warning.
    let args = CAN_I_RETRY;
    let (code, out, err) = k.run("admin", &args).await;
    assert_eq!((code, out.trim()), (0, "yes"), "{err}");
    assert!(!err.contains("doesn't have a resource type"), "{err}");

    let path = "/apis/retry.tekton.dev/v1alpha1/namespaces/demo/pipelineruns/demo-failed/retry";
    let body = r#"{"spec":{"reason":"from kubectl"}}"#;
    let f = k.file("retry.json", body);
    let mut child = k
        .cmd("admin", &["create", "--raw", path, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &std::fs::read(&f).expect("read"))
        .await
        .expect("write");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("finishes")
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json answer");
    assert_eq!(answer["user"], "admin");
    let seen = be.seen.lock().expect("lock").clone();
    let s = seen
        .iter()
        .find(|s| s.path == path)
        .expect("backend saw the retry");
    assert_eq!(s.body, body);
    assert_eq!(s.all("x-remote-user"), ["admin"]);
    assert_eq!(s.client_cn, "front-proxy-client");

    // The viewer gets kube-apiserver's Forbidden, printed by kubectl.
    let (code, _, err) = k
        .run(
            "viewer",
            &["create", "--raw", path, "-f", &f.display().to_string()],
        )
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("Error from server (Forbidden)"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_group_priority_decides_what_kubectl_get_pipelineruns_means() {
    // At groupPriorityMinimum >= 1000 (Tekton's CRD groups), `kubectl get pipelineruns`
    // resolves to retry.tekton.dev (named before tekton.dev) and fails.
    if !kubectl_present() {
        return;
    }
    for (priority, hijacked) in [(100, false), (1000, true)] {
        let emu = start_with(tekton_retry_sandbox::emulator::EmulatorOptions {
            aggregated_group_priority: priority,
            ..Default::default()
        })
        .await;
        seed(&emu);
        let be = serve_backend(&emu).await;
        let k = Kube::new(&emu);
        let (code, out, err) = k.run("admin", &["get", "pipelineruns", "-n", "demo"]).await;
        let reached = be
            .seen
            .lock()
            .expect("lock")
            .iter()
            .any(|s| s.path.ends_with("/namespaces/demo/pipelineruns"));
        assert_eq!(reached, hijacked, "priority {priority}: {out}{err}");
        if !hijacked {
            assert_eq!(code, 0, "{err}");
            assert!(out.contains("demo-failed"));
        }
        emu.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_typed_protobuf_commands_work() {
    // kubectl's typed clients send protobuf: create namespace/configmap, auth whoami.
    let Some(emu) = start_if_kubectl().await else {
        return;
    };
    let k = Kube::new(&emu);
    let (code, out, err) = k.run("admin", &["create", "namespace", "team-a"]).await;
    assert_eq!((code, out.trim()), (0, "namespace/team-a created"), "{err}");
    let ns = stored(&emu, &Gvr::namespaces(), "", "team-a");
    assert_eq!(ns["status"]["phase"], "Active");
    let (code, out, err) = k
        .run(
            "admin",
            &[
                "create",
                "configmap",
                "settings",
                "-n",
                "team-a",
                "--from-literal=mode=fast",
            ],
        )
        .await;
    assert_eq!(
        (code, out.trim()),
        (0, "configmap/settings created"),
        "{err}"
    );
    let cm = stored(&emu, &Gvr::configmaps(), "team-a", "settings");
    assert_eq!(cm["data"]["mode"], "fast");
    let (code, out, err) = k.run("viewer", &["auth", "whoami", "-o", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["status"]["userInfo"]["username"], "viewer");
    let (code, out, err) = k.run("admin", &["delete", "namespace", "team-a"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("deleted"), "{out}");
    assert!(
        !emu.store().exists(&Gvr::configmaps(), "team-a", "settings"),
        "deleting a namespace empties it"
    );
}

//! The floor in a process of its own (`--floor-process`): this binary started again with
//! `--floor-worker`, running the engine with the server's identity against the sandbox's API
//! emulator, as `serve` runs it.
//!
//! Why: every API call of a retry crosses from the engine's process to the API server's. In the
//! bench process the floor's engine shares the emulator's runtime, so its ~20 calls per retry
//! never wait for another process to be scheduled, while `serve`'s do (measured on the loaded
//! 2-CPU VM: a GET of the run 0.15 ms in-process, 0.74 ms from `serve`, at the median). Against
//! a real kube-apiserver the engine is always another process. Neither floor is exactly the
//! server's work: this one has no recorder, while `serve`'s recorder also handles the outcomes
//! of the floor's runs, which weighs at high concurrency.
//!
//! Protocol: one run name per line on the worker's stdin; one line per finished retry on its
//! stdout, `<name>\tok\t<microseconds>` or `<name>\terr\t<message>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tekton_retry::api::UserInfo;
use tekton_retry::retry::engine::EngineOptions;
use tekton_retry::retry::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::oneshot;

use crate::runs::{self, Outcome};

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>;

/// The floor's engine in a child process.
pub struct FloorProcess {
    child: Child,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    _dir: tempfile::TempDir,
}

impl FloorProcess {
    /// Starts this binary as a floor worker with `kubeconfig_yaml` (the server's identity),
    /// retrying as `user` with an engine limited to `max_concurrent` retries at once.
    pub fn start(
        kubeconfig_yaml: &str,
        user: &UserInfo,
        max_concurrent: usize,
    ) -> anyhow::Result<FloorProcess> {
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml)?;
        let exe = std::env::current_exe().context("the bench binary's path")?;
        let mut child = tokio::process::Command::new(exe)
            .arg("--floor-worker")
            .arg(&kubeconfig)
            .arg("--floor-user")
            .arg(serde_json::to_string(user)?)
            .arg(format!("--max-concurrent-retries={max_concurrent}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the floor worker")?;
        let stdin = child.stdin.take().context("the worker's stdin")?;
        let stdout = child.stdout.take().context("the worker's stdout")?;
        let pending: Pending = Arc::default();
        let answers = pending.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.splitn(3, '\t');
                let (Some(name), Some(status), Some(value)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let outcome = match (status, value.parse::<u64>()) {
                    ("ok", Ok(us)) => Ok(Duration::from_micros(us)),
                    _ => Err(value.to_string()),
                };
                let waiter = answers.lock().ok().and_then(|mut p| p.remove(name));
                if let Some(w) = waiter {
                    let _ = w.send(outcome);
                }
            }
            // The worker is gone: fail whatever still waits.
            if let Ok(mut p) = answers.lock() {
                for (_, w) in p.drain() {
                    let _ = w.send(Err("the floor worker exited".into()));
                }
            }
        });
        Ok(FloorProcess {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            _dir: dir,
        })
    }

    /// Retries `name` in the worker; the engine's latency as the worker measured it.
    pub async fn retry(&self, name: String) -> Outcome {
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|e| e.to_string())?
            .insert(name.clone(), tx);
        {
            let mut stdin = self.stdin.lock().await;
            stdin
                .write_all(format!("{name}\n").as_bytes())
                .await
                .map_err(|e| format!("writing to the floor worker: {e}"))?;
            stdin.flush().await.map_err(|e| e.to_string())?;
        }
        rx.await
            .map_err(|_| "the floor worker dropped the retry".to_string())?
    }

    /// The worker's process id (for `taskset`).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// The worker: `--floor-worker <kubeconfig>`. Answers until its stdin closes.
pub async fn worker(kubeconfig: &Path, user: &str, max_concurrent: usize) -> anyhow::Result<()> {
    let user: UserInfo = serde_json::from_str(user).context("--floor-user")?;
    let client = tekton_retry::server::kube_client(Some(PathBuf::from(kubeconfig))).await?;
    let engine = Engine::new(
        client,
        EngineOptions {
            max_concurrent,
            ..EngineOptions::default()
        },
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(line) = rx.recv().await {
            if out.write_all(line.as_bytes()).await.is_err() || out.flush().await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(name) = lines.next_line().await? {
        let (engine, user, tx) = (engine.clone(), user.clone(), tx.clone());
        tokio::spawn(async move {
            let line = match runs::retry_direct(&engine, &user, &name).await {
                Ok(d) => format!("{name}\tok\t{}\n", d.as_micros()),
                Err(e) => format!("{name}\terr\t{}\n", e.replace(['\t', '\n'], " ")),
            };
            let _ = tx.send(line);
        });
    }
    drop(tx);
    let _ = writer.await;
    Ok(())
}

//! `tekton-retry sandbox`: the sandbox as a command.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::assemble::{Sandbox, SandboxOptions};

/// Flags of `tekton-retry sandbox`.
#[derive(Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Folder for `kubeconfig` (admin), `kubeconfig-viewer` (read-only, may not retry) and
    /// `endpoints.json` (the API front door and the retry server's own address).
    #[arg(long, env = "TEKTON_RETRY_SANDBOX_DIR", default_value = ".sandbox")]
    pub dir: PathBuf,
    /// Port of the API front door on 127.0.0.1 (0 picks a free one).
    #[arg(long, env = "TEKTON_RETRY_SANDBOX_PORT", default_value_t = 0)]
    pub port: u16,
    /// Start empty: no `demo` namespace and runs.
    #[arg(long)]
    pub no_seed: bool,
    /// Log format: text or json.
    #[arg(long, env = "TEKTON_RETRY_LOG_FORMAT", default_value = "text")]
    pub log_format: tekton_retry::server::config::LogFormat,
}

/// Runs the sandbox until SIGINT or SIGTERM.
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    tekton_retry::server::logging::init(args.log_format);
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        std::env::current_dir()?.join(&args.dir)
    };
    let sandbox = Sandbox::start(SandboxOptions {
        port: args.port,
        dir: Some(dir.clone()),
        seed: !args.no_seed,
        ..Default::default()
    })
    .await?;
    println!(
        "sandbox ready: KUBECONFIG={}",
        dir.join("kubeconfig").display()
    );
    tracing::info!(api = %sandbox.url(), retry_server = %sandbox.retry_url(), "sandbox running; stop it with Ctrl-C");
    wait_for_signal().await;
    tracing::info!("stopping the sandbox");
    sandbox.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

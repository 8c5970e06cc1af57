//! `tekton-retry`: the thin command-line front door.

use clap::{Parser, Subcommand};
use tekton_retry::server::ServeArgs;

#[derive(Parser)]
#[command(
    name = "tekton-retry",
    version,
    about = "On-demand, in-place retry of failed and cancelled Tekton PipelineRuns",
    long_about = "On-demand, in-place retry of failed and cancelled Tekton PipelineRuns, served as the \
                  `retry` subresource of the aggregated API retry.tekton.dev/v1alpha1.\n\n\
                  `serve` runs the API server in a cluster; `sandbox` runs a whole cluster in one \
                  process (API emulator, aggregator front proxy, Tekton simulator) to try it out."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the aggregated API server serving retry.tekton.dev/v1alpha1 (with the retry engine and
    /// the recorder).
    Serve(Box<ServeArgs>),
    /// Run a sandbox cluster on 127.0.0.1 with seeded demo runs, for trying it out and for tests.
    #[cfg(feature = "sandbox")]
    Sandbox(tekton_retry_sandbox::cli::SandboxArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Serve(args) => tekton_retry::app::serve(*args).await,
        #[cfg(feature = "sandbox")]
        Command::Sandbox(args) => tekton_retry_sandbox::cli::run(args).await,
    }
}

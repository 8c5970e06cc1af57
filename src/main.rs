//! `tekton-retry`: the thin command-line front door.

use std::sync::Arc;

use clap::{Parser, Subcommand};
use tekton_retry::server::{self, ServeArgs};

#[derive(Parser)]
#[command(
    name = "tekton-retry",
    version,
    about = "On-demand in-place retry of failed and cancelled Tekton PipelineRuns"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the aggregated API server serving retry.tekton.dev/v1alpha1.
    Serve(ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => server::run(args, Arc::new(server::unwired::EngineMissing)).await,
    }
}

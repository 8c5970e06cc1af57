//! The command line of `kubectl retry` (clap). Usage errors exit 2 (clap's own exit code).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use tekton_retry::api::FinallyPolicy;

/// `kubectl retry`: retry failed or cancelled Tekton PipelineRuns in place.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-retry",
    bin_name = "kubectl retry",
    version,
    about = "Retry failed or cancelled Tekton PipelineRuns in place (retry.tekton.dev)"
)]
pub struct Cli {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: Command,
}

/// Where to connect: the same flags kubectl has.
#[derive(Clone, Debug, Default, Args)]
pub struct Connection {
    /// Namespace of the PipelineRun (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Retry a PipelineRun: re-run its failed, cancelled and skipped tasks, keep what succeeded.
    #[command(visible_alias = "pr")]
    Pipelinerun(RetryArgs),
    /// Show the retry attempts of a PipelineRun.
    History(HistoryArgs),
}

/// `finally` policy on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FinallyArg {
    /// Run all finally tasks again after the DAG (the server's default).
    Rerun,
    /// Keep finally tasks that succeeded (failed ones run again).
    Keep,
}

impl From<FinallyArg> for FinallyPolicy {
    fn from(f: FinallyArg) -> Self {
        match f {
            FinallyArg::Rerun => FinallyPolicy::Rerun,
            FinallyArg::Keep => FinallyPolicy::Keep,
        }
    }
}

/// `-o` of the retry command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Yaml,
    Name,
}

/// `-o` of the history command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    Json,
    Yaml,
}

#[derive(Clone, Debug, Args)]
pub struct RetryArgs {
    /// Name of the PipelineRun (or pick one with --selector and --last-failed).
    #[arg(
        required_unless_present = "last_failed",
        conflicts_with = "last_failed"
    )]
    pub name: Option<String>,
    /// Label selector of the PipelineRuns to pick from (e.g. `tekton.dev/pipeline=build`).
    #[arg(short = 'l', long, requires = "last_failed")]
    pub selector: Option<String>,
    /// Retry the most recent failed or cancelled PipelineRun matching --selector.
    #[arg(long, requires = "selector")]
    pub last_failed: bool,
    /// Why you retry (recorded on the run and in its Event).
    #[arg(long)]
    pub reason: Option<String>,
    /// What happens to finally tasks that already ran.
    #[arg(long, value_enum)]
    pub finally: Option<FinallyArg>,
    /// A succeeded task to run again too, with its dependents (repeatable).
    #[arg(long = "restart-task", value_name = "TASK")]
    pub restart_tasks: Vec<String>,
    /// A task marked non-idempotent that you accept to re-run (repeatable).
    #[arg(long = "acknowledge", value_name = "TASK")]
    pub acknowledge: Vec<String>,
    /// Refuse unless the run is in this attempt (1 = never retried): makes a repeated command safe.
    #[arg(long, value_name = "N")]
    pub precondition_attempt: Option<u32>,
    /// Print what would re-run and what is kept; change nothing.
    #[arg(long, conflicts_with = "follow")]
    pub dry_run: bool,
    /// Output format of the server's answer.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,
    /// After the retry, show the tasks progressing until the run ends.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// With --follow: give up after this long (e.g. `90s`, `10m`, `1h30m`).
    #[arg(long, value_parser = crate::duration::parse, requires = "follow")]
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug, Args)]
pub struct HistoryArgs {
    /// Name of the PipelineRun.
    pub name: String,
    /// Output format (default: a table).
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<HistoryFormat>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-retry").chain(args.iter().copied()))
    }

    #[test]
    fn pr_alias_and_repeatable_flags() {
        let cli = parse(&[
            "pr",
            "demo",
            "-n",
            "ns1",
            "--restart-task",
            "a",
            "--restart-task",
            "b",
            "--acknowledge",
            "deploy",
            "--finally",
            "keep",
            "--precondition-attempt",
            "2",
        ])
        .expect("valid");
        assert_eq!(cli.conn.namespace.as_deref(), Some("ns1"));
        let Command::Pipelinerun(args) = cli.command else {
            panic!("expected the pipelinerun command");
        };
        assert_eq!(args.name.as_deref(), Some("demo"));
        assert_eq!(args.restart_tasks, vec!["a", "b"]);
        assert_eq!(args.acknowledge, vec!["deploy"]);
        assert_eq!(args.finally, Some(FinallyArg::Keep));
        assert_eq!(args.precondition_attempt, Some(2));
    }

    #[test]
    fn usage_errors_exit_2() {
        for bad in [
            &["pipelinerun"][..],
            &["pipelinerun", "x", "--finally", "sometimes"],
            &["pipelinerun", "x", "-o", "wide"],
            &["pipelinerun", "x", "--dry-run", "--follow"],
            &["pipelinerun", "x", "--timeout", "5m"],
            &["pipelinerun", "x", "--follow", "--timeout", "soon"],
            &["history"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?} must be refused"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn follow_timeout_and_global_flags_after_subcommand() {
        let cli = parse(&[
            "history",
            "demo",
            "--context",
            "kind",
            "--kubeconfig",
            "/tmp/kc",
            "-o",
            "yaml",
        ])
        .expect("valid");
        assert_eq!(cli.conn.context.as_deref(), Some("kind"));
        assert_eq!(
            cli.conn.kubeconfig.as_deref(),
            Some(std::path::Path::new("/tmp/kc"))
        );
        let cli = parse(&["pr", "x", "--follow", "--timeout", "1m30s"]).expect("valid");
        let Command::Pipelinerun(args) = cli.command else {
            panic!("expected the pipelinerun command");
        };
        assert_eq!(args.timeout, Some(Duration::from_secs(90)));
    }
}

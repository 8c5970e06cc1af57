//! What `kubectl retry` does with its parsed arguments: the calls and the printing. The binary calls
//! [`run`]; the decisions (what to print, which exit code) are in the pure modules.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::cli::{Cli, Command, HistoryArgs, RetryArgs};
use crate::client::Cluster;
use crate::errors::{Failure, EXIT_FAILED, EXIT_OK};
use crate::{follow, history, output, request, select};

/// How often `--follow` redraws while nothing changes (running durations count up).
pub const REDRAW_INTERVAL: Duration = Duration::from_secs(1);

/// Runs the command; prints results on stdout and failures on stderr; returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    match execute(cli, &mut out, tty).await {
        Ok(code) => code,
        Err(failure) => {
            let _ = out.flush();
            eprintln!("{}", failure.message);
            failure.exit_code
        }
    }
}

/// Runs the command, writing to `out` (`tty`: redraw the follow view in place).
pub async fn execute(cli: Cli, out: &mut dyn Write, tty: bool) -> Result<i32, Failure> {
    let cluster = Cluster::connect(&cli.conn).await?;
    let namespace = cli
        .conn
        .namespace
        .clone()
        .unwrap_or_else(|| cluster.default_namespace.clone());
    match &cli.command {
        Command::Pipelinerun(args) => retry(&cluster, &namespace, args, out, tty).await,
        Command::History(args) => show_history(&cluster, &namespace, args, out).await,
    }
}

fn write(out: &mut dyn Write, text: &str) -> Result<(), Failure> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(format!("error: cannot write the output: {e}")))
}

async fn retry(
    cluster: &Cluster,
    namespace: &str,
    args: &RetryArgs,
    out: &mut dyn Write,
    tty: bool,
) -> Result<i32, Failure> {
    let mut args = args.clone();
    if args.last_failed {
        let selector = args.selector.clone().unwrap_or_default();
        let runs = cluster.pipelineruns(namespace, &selector).await?;
        let picked = select::last_failed(&runs).ok_or_else(|| {
            Failure::new(format!(
                "error: no failed or cancelled pipelinerun matches {selector:?} in namespace {namespace} ({} match{})",
                runs.len(),
                if runs.len() == 1 { "es" } else { "" }
            ))
        })?;
        eprintln!("retrying pipelinerun {namespace}/{picked}, the most recent failed or cancelled run matching {selector}");
        args.name = Some(picked);
    }
    let name = args.name.clone().unwrap_or_default();
    let args = &args;
    let body = request::retry_body(namespace, args);
    let answer = cluster.retry(namespace, &name, &body, args.dry_run).await?;
    write(
        out,
        &output::render_answer(&answer, args.output, namespace, &name)?,
    )?;
    if !args.follow {
        return Ok(EXIT_OK);
    }
    let status = answer.status.unwrap_or_default();
    // An answer without a status (not one of ours): follow the attempt the run is in now.
    let attempt = if status.attempt > 0 {
        status.attempt
    } else {
        crate::history::shown_attempt(&cluster.pipelinerun(namespace, &name).await?)
    };
    follow_run(
        cluster,
        namespace,
        &name,
        attempt,
        status.start_time.as_deref(),
        args.timeout,
        out,
        tty,
    )
    .await
}

/// Watches the run and its TaskRuns until `attempt` ends; exit 0 only if it succeeded.
#[allow(clippy::too_many_arguments)]
pub async fn follow_run(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    attempt: u32,
    attempt_start: Option<&str>,
    timeout: Option<Duration>,
    out: &mut dyn Write,
    tty: bool,
) -> Result<i32, Failure> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut previous: Option<follow::FollowView> = None;
    let mut drawn_lines = 0usize;
    if !tty {
        write(out, "\n")?;
    }
    let mut followed = crate::watch::Followed::read(cluster, namespace, name).await?;
    loop {
        let snapshot = follow::view(&followed.run, &followed.taskruns(), chrono::Utc::now());
        let (view, finished) = follow::for_attempt(snapshot, attempt, attempt_start);
        if tty {
            let screen = follow::render_screen(&view);
            write(out, &follow::redraw(drawn_lines, &screen))?;
            drawn_lines = screen.lines().count();
        } else {
            let mut text = String::new();
            for line in follow::changes(previous.as_ref(), &view) {
                text.push_str(&line);
                text.push('\n');
            }
            if finished {
                text.push_str(&follow::final_line(&view));
                text.push('\n');
            }
            write(out, &text)?;
        }
        if finished {
            return Ok(if follow::succeeded_outcome(&view) {
                EXIT_OK
            } else {
                EXIT_FAILED
            });
        }
        if follow::superseded(&view, attempt) {
            return Err(Failure::new(format!(
                "error: pipelinerun {namespace}/{name} was retried again (attempt {}) while attempt {attempt} was followed; see: kubectl retry history {name} -n {namespace}",
                view.attempt
            )));
        }
        previous = Some(view);
        if let Some(deadline) = deadline {
            if Instant::now() >= deadline {
                let waited = timeout
                    .map(tekton_retry::tekton::format_go_duration_secs)
                    .unwrap_or_default();
                return Err(Failure::new(format!(
                    "error: timed out after {waited} waiting for pipelinerun {namespace}/{name} to finish; it goes on running (see: kubectl retry history {name} -n {namespace})"
                )));
            }
        }
        followed.changed(REDRAW_INTERVAL).await?;
    }
}

async fn show_history(
    cluster: &Cluster,
    namespace: &str,
    args: &HistoryArgs,
    out: &mut dyn Write,
) -> Result<i32, Failure> {
    let run = cluster.pipelinerun(namespace, &args.name).await?;
    let cm = cluster.history(namespace, &args.name).await?;
    let rows = history::attempts(&run, cm.as_ref());
    write(
        out,
        &history::render(&rows, args.output, namespace, &args.name)?,
    )?;
    Ok(EXIT_OK)
}

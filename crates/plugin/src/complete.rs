//! Shell completion through kubectl's plugin completion convention (kubectl 1.26+): for
//! `kubectl retry <TAB>` in bash, zsh or fish, kubectl's completion script asks `kubectl __complete
//! retry …`, and kubectl runs the executable `kubectl_complete-retry` from PATH with the words after
//! `retry` (the last one being completed). That script runs `kubectl-retry __complete …`, answered
//! here in Cobra's protocol (`spf13/cobra` `completions.go`): one candidate per line (`value\tdescription`),
//! then `:<directive>` (4 = no file completion).
//!
//! Candidates: subcommands, flags, values of `--finally` and `-o`, and PipelineRun names read from
//! the cluster (for `pipelinerun`/`pr`, only runs that failed or were cancelled: the ones a retry
//! accepts).

use serde_json::Value;
use tekton_retry::tekton::{ConditionStatus, ObjectView};

use crate::cli::Connection;

/// Cobra's `ShellCompDirectiveNoFileComp`.
pub const NO_FILE_COMP: u32 = 4;

/// What the word being completed needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Want {
    /// These candidates (value, description).
    Words(Vec<(String, String)>),
    /// PipelineRun names from the cluster; `retryable`: only failed or cancelled runs.
    Runs { retryable: bool },
}

const SUBCOMMANDS: &[(&str, &str)] = &[
    ("pipelinerun", "Retry a PipelineRun in place"),
    ("pr", "Retry a PipelineRun in place"),
    ("history", "Show the retry attempts of a PipelineRun"),
];
const GLOBAL_FLAGS: &[&str] = &["--namespace", "--kubeconfig", "--context", "--help"];
const RETRY_FLAGS: &[&str] = &[
    "--reason",
    "--finally",
    "--restart-task",
    "--acknowledge",
    "--precondition-attempt",
    "--dry-run",
    "--output",
    "--follow",
    "--timeout",
    "--selector",
    "--last-failed",
];
const HISTORY_FLAGS: &[&str] = &["--output"];
/// Flags whose value is the next word.
const TAKES_VALUE: &[&str] = &[
    "-n",
    "--namespace",
    "--kubeconfig",
    "--context",
    "--reason",
    "--finally",
    "--restart-task",
    "--acknowledge",
    "--precondition-attempt",
    "-o",
    "--output",
    "--timeout",
    "-l",
    "--selector",
];

fn words(list: &[&str]) -> Vec<(String, String)> {
    list.iter()
        .map(|w| ((*w).to_owned(), String::new()))
        .collect()
}

/// Decides what to offer for the last of `args` (the words after `retry`).
pub fn analyse(args: &[String]) -> Want {
    let Some((partial, before)) = args.split_last() else {
        return Want::Words(
            SUBCOMMANDS
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        );
    };
    let mut sub: Option<&str> = None;
    let mut positional = 0usize;
    let mut skip = false;
    for w in before {
        if skip {
            skip = false;
            continue;
        }
        if w.starts_with('-') {
            skip = TAKES_VALUE.contains(&w.as_str());
            continue;
        }
        match sub {
            None => sub = Some(w.as_str()),
            Some(_) => positional += 1,
        }
    }
    let previous = before.last().map(String::as_str);
    match previous {
        Some("--finally") => return Want::Words(words(&["rerun", "keep"])),
        Some("-o" | "--output") if matches!(sub, Some("history")) => {
            return Want::Words(words(&["json", "yaml"]))
        }
        Some("-o" | "--output") => return Want::Words(words(&["json", "yaml", "name"])),
        Some(p) if skip && TAKES_VALUE.contains(&p) => return Want::Words(Vec::new()),
        _ => {}
    }
    let sub_flags: &[&str] = match sub {
        Some("pipelinerun" | "pr") => RETRY_FLAGS,
        Some("history") => HISTORY_FLAGS,
        _ => &[],
    };
    if partial.starts_with('-') {
        let mut all = words(sub_flags);
        all.extend(words(GLOBAL_FLAGS));
        return Want::Words(all);
    }
    match sub {
        None => Want::Words(
            SUBCOMMANDS
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        ),
        Some("pipelinerun" | "pr") if positional == 0 => Want::Runs { retryable: true },
        Some("history") if positional == 0 => Want::Runs { retryable: false },
        _ => Want::Words(Vec::new()),
    }
}

/// The connection flags among `args` (`-n`, `--namespace`, `--context`, `--kubeconfig`, also as
/// `--flag=value`).
pub fn connection(args: &[String]) -> Connection {
    let mut conn = Connection::default();
    let mut it = args.iter().peekable();
    while let Some(w) = it.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (w.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.peek().map(|v| (*v).clone()));
        match flag {
            "-n" | "--namespace" => conn.namespace = value(),
            "--context" => conn.context = value(),
            "--kubeconfig" => conn.kubeconfig = value().map(Into::into),
            _ => {}
        }
    }
    conn
}

/// Candidates from a PipelineRun list: names, with the run's state as description.
pub fn run_candidates(runs: &[Value], retryable: bool) -> Vec<(String, String)> {
    runs.iter()
        .filter_map(|r| {
            let view = ObjectView::new(r);
            let name = r["metadata"]["name"].as_str()?;
            if retryable && view.succeeded_status() != ConditionStatus::False {
                return None;
            }
            Some((name.to_owned(), view.reason().unwrap_or("").to_owned()))
        })
        .collect()
}

/// Cobra's answer: the candidates starting with `partial`, then the directive.
pub fn render(candidates: &[(String, String)], partial: &str) -> String {
    let mut out = String::new();
    for (value, description) in candidates.iter().filter(|(v, _)| v.starts_with(partial)) {
        out.push_str(value);
        if !description.is_empty() {
            out.push('\t');
            out.push_str(description);
        }
        out.push('\n');
    }
    out.push_str(&format!(":{NO_FILE_COMP}\n"));
    out
}

/// `kubectl-retry __complete ARGS…`: the answer to print. Cluster errors give no run names
/// (completion must never fail loudly).
pub async fn answer(args: &[String]) -> String {
    let partial = args.last().map(String::as_str).unwrap_or("");
    let candidates = match analyse(args) {
        Want::Words(w) => w,
        Want::Runs { retryable } => {
            let conn = connection(args);
            match crate::client::Cluster::connect(&conn).await {
                Ok(cluster) => {
                    let ns = conn
                        .namespace
                        .clone()
                        .unwrap_or_else(|| cluster.default_namespace.clone());
                    match cluster.pipelineruns(&ns, "").await {
                        Ok(runs) => run_candidates(&runs, retryable),
                        Err(_) => Vec::new(),
                    }
                }
                Err(_) => Vec::new(),
            }
        }
    };
    render(&candidates, partial)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(words: &[&str]) -> Want {
        analyse(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    fn names(w: Want) -> Vec<String> {
        match w {
            Want::Words(ws) => ws.into_iter().map(|(v, _)| v).collect(),
            Want::Runs { .. } => panic!("expected words"),
        }
    }

    #[test]
    fn subcommands_flags_values_and_runs() {
        assert_eq!(names(a(&[""])), ["pipelinerun", "pr", "history"]);
        assert_eq!(
            names(a(&["-n", "ci", "p"])),
            ["pipelinerun", "pr", "history"]
        );
        assert_eq!(a(&["pr", ""]), Want::Runs { retryable: true });
        assert_eq!(
            a(&["-n", "ci", "history", "d"]),
            Want::Runs { retryable: false }
        );
        assert!(names(a(&["pr", "--"])).contains(&"--last-failed".to_owned()));
        assert!(!names(a(&["history", "--"])).contains(&"--last-failed".to_owned()));
        assert_eq!(names(a(&["pr", "x", "--finally", ""])), ["rerun", "keep"]);
        assert_eq!(names(a(&["history", "x", "-o", ""])), ["json", "yaml"]);
        assert!(names(a(&["pr", "x", ""])).is_empty(), "one run name only");
        assert!(names(a(&["pr", "--reason", ""])).is_empty(), "free text");
    }

    #[test]
    fn the_answer_follows_cobra() {
        let c = vec![
            ("pr".to_owned(), "Retry".to_owned()),
            ("history".to_owned(), String::new()),
        ];
        assert_eq!(render(&c, "p"), "pr\tRetry\n:4\n");
        assert_eq!(render(&c, "x"), ":4\n");
    }

    #[test]
    fn connection_flags_are_read() {
        let w: Vec<String> = ["-n", "ci", "--context=prod", "pr", ""]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let c = connection(&w);
        assert_eq!(c.namespace.as_deref(), Some("ci"));
        assert_eq!(c.context.as_deref(), Some("prod"));
    }

    #[test]
    fn only_failed_runs_are_offered_for_a_retry() {
        let runs = vec![
            serde_json::json!({"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]}}),
            serde_json::json!({"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]}}),
        ];
        assert_eq!(
            run_candidates(&runs, true),
            [("a".to_owned(), "Failed".to_owned())]
        );
        assert_eq!(run_candidates(&runs, false).len(), 2);
    }
}

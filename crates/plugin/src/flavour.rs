//! Which command the plugin answers as, from the name it was run under: `kubectl-retry` (a
//! kubectl plugin: `kubectl retry …`) or `tkn-retry` (a tkn plugin: `tkn retry …`, tkn runs
//! `tkn-<name>` executables from PATH as TEP-0065 proposed). Only help and usage texts differ.

use std::ffi::OsString;
use std::path::Path;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::Cli;

/// The command name users type for a program run as `argv0`.
pub fn command_name(argv0: &std::ffi::OsStr) -> &'static str {
    let file = Path::new(argv0)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if file.starts_with("tkn-retry") || file == "tkn" {
        "tkn retry"
    } else {
        "kubectl retry"
    }
}

/// Parses `args` (program name first) as the command the program name says; usage errors and
/// `--help` exit as clap does.
pub fn parse(args: Vec<OsString>) -> Cli {
    let name = args
        .first()
        .map(|a| command_name(a))
        .unwrap_or("kubectl retry");
    let cmd = Cli::command()
        .name(if name == "tkn retry" {
            "tkn-retry"
        } else {
            "kubectl-retry"
        })
        .bin_name(name)
        .about(if name == "tkn retry" {
            "Retry failed or cancelled Tekton PipelineRuns in place (retry.tekton.dev), as a tkn plugin"
        } else {
            "Retry failed or cancelled Tekton PipelineRuns in place (retry.tekton.dev)"
        });
    let matches = cmd.get_matches_from(args);
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            command_name("/usr/local/bin/tkn-retry".as_ref()),
            "tkn retry"
        );
        assert_eq!(command_name("tkn-retry.exe".as_ref()), "tkn retry");
        assert_eq!(command_name("/x/kubectl-retry".as_ref()), "kubectl retry");
        assert_eq!(command_name("anything".as_ref()), "kubectl retry");
    }
}

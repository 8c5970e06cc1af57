//! What the plugin tests read of a finished command: its output as text and its exit code.

use std::process::Output;

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts `out` exited with `code` (showing its stdout and stderr if not); returns its stdout.
pub fn exited(out: &Output, code: i32) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    stdout
}

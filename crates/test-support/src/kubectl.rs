//! The one way the tests find the real kubectl: `$KUBECTL` if set, else `kubectl` on `PATH`.
//! Without one a test that needs it fails, unless `TEKTON_RETRY_SKIP_KUBECTL=1` says to skip it
//! (then it prints SKIPPED and returns). `.ci/run` makes sure CI has one.

use std::path::PathBuf;

/// The environment variable that lets the kubectl tests be skipped on a machine without it.
pub const SKIP: &str = "TEKTON_RETRY_SKIP_KUBECTL";

fn find() -> Option<PathBuf> {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("PATH").into_iter().flat_map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("kubectl"))
                .collect::<Vec<_>>()
        }))
        .find(|c| c.is_file())
}

/// The kubectl to run; `None` only when it is missing and skipping was asked for.
pub fn kubectl() -> Option<PathBuf> {
    if let Some(k) = find() {
        return Some(k);
    }
    assert!(
        std::env::var(SKIP).is_ok_and(|v| v == "1"),
        "this test needs the real kubectl ($KUBECTL or on PATH); install it, or set {SKIP}=1 to skip"
    );
    eprintln!("SKIPPED: no kubectl ($KUBECTL, PATH) and {SKIP}=1");
    None
}

//! Helpers for `tests/deploy.rs`: render the kustomize manifests with the real `kubectl kustomize`,
//! look objects up in the result, and run `hack/gen-certs.sh`.

pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::Value;

/// Runs `command` and asserts it exits 0 (else panics with the command and its output).
pub fn run_ok(command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The repository root (where Cargo.toml is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

use tekton_retry_test_support::kubectl as kubectl_support;

/// The kubectl to render with (see `tekton_retry_test_support::kubectl`): missing, the test fails unless
/// `TEKTON_RETRY_SKIP_KUBECTL=1`.
pub fn kubectl() -> Option<PathBuf> {
    kubectl_support::kubectl()
}

/// `kubectl kustomize DIR`, parsed into one JSON value per YAML document. Panics with kubectl's
/// error output when rendering fails.
pub fn render(kubectl: &Path, dir: &Path) -> Vec<Value> {
    let out = run_ok(Command::new(kubectl).arg("kustomize").arg(dir));
    let text = String::from_utf8(out.stdout).expect("kustomize output is UTF-8");
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("kustomize output is valid YAML"))
        .filter(|v| !v.is_null())
        .collect();
    assert!(
        !docs.is_empty(),
        "kubectl kustomize {} rendered nothing",
        dir.display()
    );
    docs
}

/// Renders `deploy/<rel>` (or skips: `None`).
pub fn render_repo(rel: &str) -> Option<Vec<Value>> {
    let kubectl = kubectl()?;
    Some(render(&kubectl, &repo().join(rel)))
}

/// The one object of `kind` named `name`; panics if there is none or more than one.
pub fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = objs
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind} {name}, found {}",
        found.len()
    );
    found[0]
}

/// All objects of `kind`.
pub fn all<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

/// A string field, panicking with the path when it is missing.
pub fn s<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// Runs `hack/gen-certs.sh ARGS… OUT_DIR` and panics with its output if it fails.
pub fn gen_certs(out_dir: &Path, args: &[&str]) {
    let script = repo().join("hack/gen-certs.sh");
    run_ok(Command::new("bash").arg(script).args(args).arg(out_dir));
}

/// Whether `openssl` can be run (gen-certs.sh needs it). Prints why not.
pub fn have_openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: openssl not found: cannot run hack/gen-certs.sh");
    }
    ok
}

/// A fresh directory with gen-certs.sh output in `dir/out` (kept alive by the returned guard).
pub fn generated() -> Option<(tempfile::TempDir, PathBuf)> {
    if !have_openssl() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    gen_certs(&out, &[]);
    Some((dir, out))
}

/// Every install users apply, rendered: `deploy/base` (release.yaml), each directory of
/// `deploy/overlays/`, and `deploy/overlays/cert-manager` combined with the component
/// `deploy/components/no-log-archive` (as a user's own kustomization would). `None`: no kubectl.
pub fn render_user_installs() -> Option<Vec<(String, Vec<Value>)>> {
    let kubectl = kubectl()?;
    let mut dirs: Vec<String> = std::fs::read_dir(repo().join("deploy/overlays"))
        .expect("deploy/overlays")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .map(|name| format!("deploy/overlays/{name}"))
        .collect();
    dirs.sort();
    dirs.insert(0, "deploy/base".to_owned());
    let mut out: Vec<(String, Vec<Value>)> = dirs
        .into_iter()
        .map(|d| {
            let objs = render(&kubectl, &repo().join(&d));
            (d, objs)
        })
        .collect();
    // kustomize refuses absolute paths to bases: the combining kustomization sits under deploy/.
    let user = tempfile::Builder::new()
        .prefix(".user-kustomization-")
        .tempdir_in(repo().join("deploy"))
        .expect("tempdir");
    std::fs::write(
        user.path().join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../overlays/cert-manager\ncomponents:\n  - ../components/no-log-archive\n",
    )
    .expect("write kustomization");
    out.push((
        "deploy/overlays/cert-manager + deploy/components/no-log-archive".to_owned(),
        render(&kubectl, user.path()),
    ));
    Some(out)
}

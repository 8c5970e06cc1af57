//! The release files of `hack/release.sh`: the krew manifest (`plugins/retry.yaml`, krew's `Plugin`
//! kind) and the plugin archive it describes. The test runs the script on the kubectl-retry this
//! build made, checks the manifest's required fields, that its sha256 is the archive's (hashed
//! here with ring), that the archive holds exactly that binary, and that the same binary gives the
//! same archive. Needs kubectl (the script renders release.yaml) and tar: fails without them
//! unless `TEKTON_RETRY_SKIP_KUBECTL=1`.

use std::path::Path;
use std::process::Command;
use tekton_retry_test_support::kubectl as kubectl_support;

use serde_json::Value;

use crate::deploy_support::{repo, run_ok};

fn have_kubectl() -> bool {
    kubectl_support::kubectl().is_some()
}

fn release(out: &Path) {
    let binary = env!("CARGO_BIN_EXE_kubectl-retry");
    let script = repo().join("hack/release.sh");
    run_ok(
        Command::new("bash")
            .arg(script)
            .args(["--binary", binary, "--out"])
            .arg(out),
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("read manifest")).expect("YAML")
}

/// krew's required fields (krew `pkg/index/validation`: name, version, shortDescription,
/// homepage, and per platform a selector, uri, sha256 and bin).
fn check_manifest(m: &Value) -> Vec<Value> {
    assert_eq!(
        m["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(m["kind"], "Plugin");
    assert_eq!(m["metadata"]["name"], "retry");
    let spec = &m["spec"];
    assert_eq!(spec["version"], format!("v{}", env!("CARGO_PKG_VERSION")));
    let short = spec["shortDescription"].as_str().expect("shortDescription");
    assert!(
        !short.is_empty() && short.len() <= 50,
        "krew keeps it short: {short}"
    );
    assert!(spec["homepage"]
        .as_str()
        .expect("homepage")
        .starts_with("https://"));
    let platforms = spec["platforms"].as_array().expect("platforms").clone();
    assert!(!platforms.is_empty());
    for p in &platforms {
        let labels = &p["selector"]["matchLabels"];
        assert!(
            labels["os"].is_string() && labels["arch"].is_string(),
            "{p}"
        );
        let uri = p["uri"].as_str().expect("uri");
        assert!(
            uri.starts_with("https://") && uri.ends_with(".tar.gz"),
            "{uri}"
        );
        let sha = p["sha256"].as_str().expect("sha256");
        assert!(
            sha.len() == 64
                && sha
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{sha}"
        );
        assert_eq!(p["bin"], "kubectl-retry");
    }
    platforms
}

#[test]
fn krew_manifest_describes_the_archive_release_sh_builds() {
    if !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    release(dir.path());
    let manifest = yaml(&dir.path().join("retry.yaml"));
    let platforms = check_manifest(&manifest);
    assert_eq!(platforms.len(), 1, "one archive, one platform");
    let uri = platforms[0]["uri"].as_str().expect("uri");
    let file = uri.rsplit('/').next().expect("file name");
    let archive = std::fs::read(dir.path().join(file)).expect("the archive the uri names");
    assert_eq!(platforms[0]["sha256"], sha256_hex(&archive));
    let os = platforms[0]["selector"]["matchLabels"]["os"]
        .as_str()
        .expect("os");
    assert_eq!(os, std::env::consts::OS);

    // The archive holds the binary krew will link as `kubectl-retry`, byte for byte.
    let x = tempfile::tempdir().expect("tempdir");
    let archive_path = dir.path().join(file);
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(archive_path)
            .arg("-C")
            .arg(x.path()),
    );
    assert_eq!(
        std::fs::read(x.path().join("kubectl-retry")).expect("kubectl-retry in the archive"),
        std::fs::read(env!("CARGO_BIN_EXE_kubectl-retry")).expect("binary")
    );

    // The same binary gives the same archive (so a published sha256 can be checked again).
    let again = tempfile::tempdir().expect("tempdir");
    release(again.path());
    assert_eq!(
        std::fs::read(again.path().join(file)).expect("archive"),
        archive,
        "the archive is reproducible"
    );
}

#[test]
fn committed_krew_manifest_has_the_required_fields() {
    let manifest = yaml(&repo().join("plugins/retry.yaml"));
    check_manifest(&manifest);
}

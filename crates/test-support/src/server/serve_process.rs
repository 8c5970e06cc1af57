//! `tekton-retry serve` as a child process, as a cluster runs it: its certificate files and
//! kubeconfig on disk pointing at the fake Kubernetes API, its command line, readiness and SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tekton_retry::api::UserInfo;
use tekton_retry_pki::Ca;

use super::fake_kube::{auth_configmap, FakeKube, FRONT_PROXY_CN};
use super::tls_client::TestClient;

/// The bearer token the fake API knows as `carol` (group `system:authenticated`).
pub const CAROL_TOKEN: &str = "s3cret-token-value";

/// What a `serve` process reads: the fake API (which knows [`CAROL_TOKEN`]), the serving
/// certificate and key in `dir`, a kubeconfig for the fake API, and the port to listen on.
pub struct ServeFiles {
    pub kube: FakeKube,
    pub serving: Ca,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub port: u16,
}

impl ServeFiles {
    /// Start the fake API over plain HTTP and write the files.
    pub async fn new() -> ServeFiles {
        let front = Ca::new("front-proxy-ca").expect("ca");
        let client_ca = Ca::new("client-ca").expect("ca");
        let serving = Ca::new("serving-ca").expect("ca");
        let kube = FakeKube::new(auth_configmap(&front, &client_ca, &[FRONT_PROXY_CN]));
        kube.add_token(
            CAROL_TOKEN,
            UserInfo::new("carol", &["system:authenticated"]),
        );
        let api = kube.serve_http().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = serving
            .issue_server(&["localhost", "127.0.0.1"])
            .expect("cert");
        std::fs::write(dir.path().join("tls.crt"), &cert.cert).expect("write");
        std::fs::write(dir.path().join("tls.key"), &cert.key).expect("write");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'http://{api}'}}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
            ),
        )
        .expect("write");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        ServeFiles {
            kube,
            serving,
            dir,
            kubeconfig,
            port,
        }
    }

    /// `<binary> serve` on 127.0.0.1 with these files; the caller adds flags, environment and
    /// stdio. The child is killed when dropped.
    pub fn command(&self, binary: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg("serve")
            .args(["--bind-address", "127.0.0.1", "--secure-port"])
            .arg(self.port.to_string())
            .arg("--tls-cert-file")
            .arg(self.dir.path().join("tls.crt"))
            .arg("--tls-private-key-file")
            .arg(self.dir.path().join("tls.key"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        cmd
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// A client trusting the serving CA, once `/readyz` answers 200 (fails after 60 s).
    pub async fn ready_client(&self) -> TestClient {
        let client = TestClient::new(self.addr(), &self.serving.pem.cert, None, false);
        for _ in 0..1200 {
            if tokio::net::TcpStream::connect(self.addr()).await.is_ok()
                && client.get("/readyz").await.status == 200
            {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("serve became ready");
    }
}

/// Send SIGTERM to `child`.
pub fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Wait (at most 30 s) for `child` to exit, and assert a clean exit.
pub async fn assert_clean_exit(child: &mut tokio::process::Child) {
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("wait");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

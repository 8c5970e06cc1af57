//! The emulator as most tests start it, shut down when the test ends (also when it fails).

use std::ops::Deref;
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::Client;
use tekton_retry_sandbox::emulator::Emulator;
use tekton_retry_test_support::emulator::{backend, prs, start, start_as_admin, Backend};

/// An emulator that stops serving when dropped.
pub struct Running(pub Emulator);

impl Deref for Running {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// A started emulator.
pub async fn started() -> Running {
    Running(start().await)
}

/// A started emulator and a client of user `admin`.
pub async fn with_admin() -> (Running, Client) {
    let (emu, admin) = start_as_admin().await;
    (Running(emu), admin)
}

/// A started emulator, a client of user `admin` and its PipelineRun API in namespace `demo`.
pub async fn with_demo_runs() -> (Running, Client, Api<DynamicObject>) {
    let (emu, admin) = with_admin().await;
    let api = prs(&admin, "demo");
    (emu, admin, api)
}

/// A test backend serving the aggregated group behind `emu`, once the front proxy reports the
/// group available.
pub async fn serve_backend(emu: &Emulator) -> Backend {
    let be = backend(&emu.front_proxy_client().requestheader_ca_pem).await;
    emu.set_aggregated_backend(&be.url, &be.ca_pem)
        .expect("set backend");
    assert!(
        emu.wait_aggregated_available(Duration::from_secs(20)).await,
        "{:?}",
        emu.aggregated_availability()
    );
    be
}

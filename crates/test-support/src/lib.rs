//! What the tests of tekton-retry share, one module a concern:
//! [`sandbox`] starts the whole in-process cluster and reads runs; [`server`] puts the real server
//! in front of a fake Kubernetes API and a recording engine, with a TLS test client;
//! [`emulator`] starts the API emulator alone; [`kubectl`] finds the real kubectl.
//! [`dag_failed`] is the recorded dag-failed run as the plugin's tests use it.

pub mod dag_failed;
pub mod emulator;
pub mod kubectl;
pub mod sandbox;
pub mod server;

/// A table of cases of one async test helper, each case its own named `#[tokio::test]` that calls
/// the helper with the case's arguments (so each case runs, passes and fails on its own, under the
/// name the docs cite):
///
/// ```ignore
/// async_test_cases! { conflict_then_recovery:
///     /// A conflict on the claim.
///     conflict_on_the_claim("c-claim", "");
///     conflict_on_the_status_write("c-status", "status");
/// }
/// ```
#[macro_export]
macro_rules! async_test_cases {
    ($helper:path: $($(#[$doc:meta])* $test:ident($($arg:expr),* $(,)?);)+) => {$(
        $(#[$doc])*
        #[tokio::test]
        async fn $test() {
            $helper($($arg),*).await;
        }
    )+};
}

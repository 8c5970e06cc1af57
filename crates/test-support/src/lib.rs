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

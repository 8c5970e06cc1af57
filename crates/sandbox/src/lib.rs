//! The sandbox: an in-process cluster for trying tekton-retry and for tests.
//!
//! [`emulator`] is the Kubernetes API server (with [`policy`] for users and RBAC-like rules,
//! [`faults`] for injected failures, and [`emulator::aggregator`], the aggregator's front proxy in
//! front of `serve`); [`tekton_webhook`] holds Tekton's admission webhook and CRD schemas, which the
//! API server applies to Tekton objects; [`simulator`] reconciles Tekton runs like the real
//! controller; [`assemble`] starts them all with the real server, engine and recorder; [`seed`]
//! creates the `demo` runs; [`cli`] is the `tekton-retry sandbox` command.

pub mod assemble;
pub mod cli;
pub mod emulator;
pub mod faults;
pub mod policy;
pub mod seed;
pub mod simulator;
pub mod tekton_webhook;

pub use assemble::{Sandbox, SandboxError, SandboxOptions, APISERVICE_YAML};

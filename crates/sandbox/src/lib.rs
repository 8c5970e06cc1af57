//! The sandbox: an in-process cluster for trying tekton-retry and for tests.
//!
//! [`emulator`] is the Kubernetes API (with [`policy`] for users and RBAC-like rules, [`faults`]
//! for injected failures, and [`proxy`], the aggregator front proxy in front of `serve`);
//! [`simulator`] reconciles Tekton runs like the real controller; [`assemble`] starts them all
//! with the real server, engine and recorder; [`seed`] creates the `demo` runs; [`cli`] is the
//! `tekton-retry sandbox` command.

pub mod assemble;
pub mod backend_pool;
pub mod cli;
pub mod emulator;
pub mod faults;
pub mod policy;
pub mod proxy;
pub mod seed;
pub mod simulator;

pub use assemble::{Sandbox, SandboxError, SandboxOptions, APISERVICE_YAML};

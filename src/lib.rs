//! tekton-retry: on-demand, in-place retry of failed and cancelled Tekton PipelineRuns, served as the
//! `retry` subresource of an aggregated Kubernetes API (`retry.tekton.dev/v1alpha1`).
//!
//! The request path follows the folders: [`server`] (TLS → authn → authz → routes) hands a validated
//! request to [`retry`] (pure planner, then executor); [`recorder`] watches retried runs afterwards.
//! [`api`] holds the wire types, [`tekton`] the views of Tekton objects that keep unknown fields, and
//! [`sandbox`] an in-process cluster (API emulator, aggregator front proxy, Tekton simulator).

pub mod api;
pub mod pki;
pub mod plugin;
pub mod rbac;
pub mod recorder;
pub mod retry;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod server;
pub mod tekton;

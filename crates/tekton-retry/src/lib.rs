//! tekton-retry: on-demand, in-place retry of failed and cancelled Tekton PipelineRuns, served as the
//! `retry` subresource of an aggregated Kubernetes API (`retry.tekton.dev/v1alpha1`).
//!
//! [`app`] is the composition root: `serve` and the sandbox both start an [`app::App`].
//! The request path follows the folders: [`server`] (TLS → authn → authz → routes) hands a validated
//! request to [`retry`] (pure planner, then executor); [`recorder`] watches retried runs afterwards.
//! [`api`] holds the wire types, [`tekton`] the views of Tekton objects that keep unknown fields,
//! [`rbac`] every Kubernetes API call the server makes (checked against the install's roles).
//!
//! The kubectl plugin (`tekton-retry-plugin`), the in-process sandbox cluster
//! (`tekton-retry-sandbox`) and the command-line front doors (`tekton-retry-cli`) are crates of
//! their own; nothing here depends on them.

pub mod api;
pub mod app;
pub mod rbac;
pub mod recorder;
pub mod retry;
pub mod server;
pub mod tekton;

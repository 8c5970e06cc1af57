//! The `kubectl retry` plugin: command-line parsing, the retry request, and the
//! pure renderers (dry-run plan, follow view, history table, error messages). The binary
//! `kubectl-retry` (in the `tekton-retry-cli` package) only parses the arguments and hands them to [`app::run`].
//!
//! Everything except [`client`], [`watch`] and [`app`] is pure: objects in, text out, so each piece is unit-tested
//! from the recorded Tekton fixtures.

pub mod app;
pub mod cli;
pub mod client;
pub mod complete;
pub mod duration;
pub mod errors;
pub mod flavour;
pub mod follow;
pub mod history;
pub mod output;
pub mod request;
pub mod select;
pub mod watch;

pub use errors::Failure;

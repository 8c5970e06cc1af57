//! The retry engine: a pure [`planner`] decides (objects in, [`Plan`] or refusal out), the
//! [`executor`] performs the plan through the Kubernetes API with preconditions, and the
//! [`record`] keeps what happened where only the server can write it.

pub mod api_calls;
pub mod cluster;
pub mod engine;
pub mod executor;
#[cfg(test)]
pub(crate) mod fake_api;
pub mod metrics;
pub mod plan;
pub mod planner;
pub mod ratelimit;
pub mod record;
pub mod refusal;
#[cfg(test)]
pub(crate) mod test_scenario;
pub mod tracked;

use futures::future::BoxFuture;

pub use engine::{Engine, EngineOptions};
pub use plan::*;
pub use refusal::Refusal;

use crate::api::{ApiError, PipelineRunRetry, RetrySpec, UserInfo};

/// A validated retry request as the server hands it to the engine.
#[derive(Clone, Debug)]
pub struct RetryRequest {
    pub namespace: String,
    pub name: String,
    pub spec: RetrySpec,
    /// `?dryRun=All`: compute and return the plan, write nothing.
    pub dry_run: bool,
    pub user: UserInfo,
    /// The caller's `Audit-ID`, forwarded on the engine's own API calls.
    pub audit_id: Option<String>,
}

/// What the server's retry route calls. The engine implements it; tests may substitute it.
pub trait RetryService: Send + Sync + 'static {
    fn retry(&self, req: RetryRequest) -> BoxFuture<'static, Result<PipelineRunRetry, ApiError>>;

    /// The attempt history of the run `namespace/name` (a `PipelineRunRetryHistory` object).
    fn history(
        &self,
        namespace: String,
        name: String,
        audit_id: Option<String>,
    ) -> BoxFuture<'static, Result<serde_json::Value, ApiError>>;
}

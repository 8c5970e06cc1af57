//! Placeholder engine for builds where the retry engine is not wired into `serve` yet.

use futures::future::BoxFuture;

use crate::api::{ApiError, PipelineRunRetry, StatusReason};
use crate::retry::{RetryRequest, RetryService};

/// Answers every retry with `503 ServiceUnavailable`: the retry engine is not wired into this
/// build. Everything in front of it (TLS, authentication, authorization, validation) is real.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineMissing;

impl RetryService for EngineMissing {
    fn retry(&self, req: RetryRequest) -> BoxFuture<'static, Result<PipelineRunRetry, ApiError>> {
        Box::pin(async move {
            Err(ApiError::new(
                StatusReason::ServiceUnavailable,
                "the retry engine is not wired into this build",
            )
            .with_name(req.name))
        })
    }
}

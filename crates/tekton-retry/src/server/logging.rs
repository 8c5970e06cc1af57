//! Process logging with tracing: `--log-format text|json`. The server logs one line per request
//! (target `tekton_retry::access`: user, verb, path, code, latency, audit id) and never a token,
//! a key or a request body.

use tracing_subscriber::EnvFilter;

use super::config::LogFormat;

/// Installs the global subscriber (level from `RUST_LOG`, default `info`). A second call is a
/// no-op, so the sandbox and tests may call it too.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

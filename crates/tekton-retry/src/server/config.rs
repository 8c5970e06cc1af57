//! Command-line flags of `tekton-retry serve` (each also an environment variable `TEKTON_RETRY_*`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

pub use super::duration_flag::parse_duration;

/// Flags of `tekton-retry serve`. Durations accept `10s`, `500ms`, `2m`, `1h` or bare seconds.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// IP address to listen on for the secure port (0.0.0.0 = all IPv4 interfaces, :: = all).
    #[arg(long, env = "TEKTON_RETRY_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,

    /// Port serving HTTPS (HTTP/2 and HTTP/1.1) for the API, discovery, health and metrics.
    #[arg(long, env = "TEKTON_RETRY_SECURE_PORT", default_value_t = 8443)]
    pub secure_port: u16,

    /// PEM serving certificate (chain). Re-read without restart when the file or the directory
    /// holding it changes (a mounted Secret swaps its `..data` symlink). Without it the server
    /// makes and rotates its own certificate (see the `--cert-*` flags).
    #[arg(
        long,
        env = "TEKTON_RETRY_TLS_CERT_FILE",
        requires = "tls_private_key_file"
    )]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of the serving certificate, reloaded together with it.
    #[arg(
        long,
        env = "TEKTON_RETRY_TLS_PRIVATE_KEY_FILE",
        requires = "tls_cert_file"
    )]
    pub tls_private_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub self_cert: super::selfcert::SelfCertArgs,

    /// kubeconfig for the server's own API calls (TokenReview, SubjectAccessReview, the
    /// authentication ConfigMap, the retry engine). Without it: in-cluster config, then $KUBECONFIG.
    #[arg(long, env = "TEKTON_RETRY_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// How long an allow or deny answer of a SubjectAccessReview is reused for the same user and
    /// request attributes.
    #[arg(long, env = "TEKTON_RETRY_AUTHORIZATION_CACHE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub authorization_cache_ttl: Duration,

    /// How long a TokenReview answer for a bearer token is reused.
    #[arg(long, env = "TEKTON_RETRY_AUTHENTICATION_CACHE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub authentication_cache_ttl: Duration,

    /// The ConfigMap kube-system/extension-apiserver-authentication (requestheader CA, allowed
    /// names, client CA) is watched, so rotations take effect at once; besides, it is re-read this
    /// often in case a watch stalls without an error.
    #[arg(long, env = "TEKTON_RETRY_AUTHENTICATION_CONFIG_RESYNC", default_value = "1m", value_parser = parse_duration)]
    pub authentication_config_resync: Duration,

    /// Readiness fails when the Kubernetes API has not answered a read or watch of that ConfigMap
    /// for this long. Shorter API errors leave the server ready with the configuration it loaded
    /// last; before a first valid configuration is loaded it is never ready.
    #[arg(long, env = "TEKTON_RETRY_AUTHENTICATION_CONFIG_MAX_STALENESS", default_value = "5m", value_parser = parse_duration)]
    pub authentication_config_max_staleness: Duration,

    /// Archive the last 64 KiB of each step's log in a run's attempt history before its TaskRun
    /// is deleted for a re-run. Needs `get pods/log` in every namespace; with
    /// `--archive-logs=false` the history keeps the runs without logs and that right can go
    /// (deploy/components/no-log-archive).
    #[arg(long, env = "TEKTON_RETRY_ARCHIVE_LOGS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub archive_logs: bool,

    /// Log format: `text` for people, `json` (one object per line) for log collectors.
    #[arg(long, env = "TEKTON_RETRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// On SIGTERM/SIGINT: readiness turns false at once, no new connections are accepted, and
    /// requests in flight get this long to finish.
    #[arg(long, env = "TEKTON_RETRY_SHUTDOWN_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace_period: Duration,

    /// A request that takes longer is answered 504 Timeout. Keep it below kube-apiserver's 60 s, so
    /// that the caller gets this message rather than the aggregator's own timeout. A retry
    /// already started keeps going and is completed or resumable.
    #[arg(long, env = "TEKTON_RETRY_REQUEST_TIMEOUT", default_value = "50s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// On SIGTERM/SIGINT, readiness turns false at once but the listener keeps accepting for this
    /// long, so that requests routed before the Service endpoints update are still answered.
    #[arg(long, env = "TEKTON_RETRY_SHUTDOWN_DELAY", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// Requests answered at once (health probes and system:masters aside); more are answered 429
    /// with Retry-After (kube-apiserver's --max-requests-inflight).
    #[arg(long, env = "TEKTON_RETRY_MAX_REQUESTS_INFLIGHT", default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests_inflight: u32,

    /// Connections open at once; more wait in the listen backlog.
    #[arg(long, env = "TEKTON_RETRY_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// A connection must send its first request within this long after the TLS handshake.
    #[arg(long, env = "TEKTON_RETRY_FIRST_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub first_request_timeout: Duration,

    /// A connection without a request for this long is closed (HTTP/2: GOAWAY).
    #[arg(long, env = "TEKTON_RETRY_IDLE_TIMEOUT", default_value = "90s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// A retry claimed on a run but not finished within this long (the server crashed, the API
    /// failed) is completed by the next retry request; the recorder completes it after twice this.
    #[arg(long, env = "TEKTON_RETRY_CLAIM_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub retry_claim_grace: Duration,

    /// Refuse a retry when less than this much of the pipeline's timeout budget is left (Tekton
    /// measures `timeouts.pipeline` from the run's original start).
    #[arg(long, env = "TEKTON_RETRY_MIN_TIMEOUT_BUDGET", default_value = "1m", value_parser = parse_duration)]
    pub min_timeout_budget: Duration,

    /// Requests per second the retry engine and recorder send to kube-apiserver on average
    /// (client-go's `QPS`); more wait their turn.
    #[arg(long, env = "TEKTON_RETRY_KUBE_API_QPS", default_value_t = 100.0)]
    pub kube_api_qps: f64,

    /// Requests the retry engine and recorder may send at once after a quiet spell (client-go's
    /// `Burst`).
    #[arg(long, env = "TEKTON_RETRY_KUBE_API_BURST", default_value_t = 200)]
    pub kube_api_burst: u32,

    /// Retries worked on at once; more requests wait their turn (within --request-timeout; a
    /// retry that has waited past it still runs). Each retry polls the API while Tekton resets
    /// the run, so this bounds the load on kube-apiserver and the server's memory.
    #[arg(long, env = "TEKTON_RETRY_MAX_CONCURRENT_RETRIES", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_retries: u16,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn defaults_match_the_design() {
        let cli = Cli::try_parse_from(["x", "--tls-cert-file", "c", "--tls-private-key-file", "k"])
            .expect("parse");
        assert_eq!(cli.serve.secure_port, 8443);
        assert_eq!(cli.serve.bind_address.to_string(), "0.0.0.0");
        assert_eq!(cli.serve.authorization_cache_ttl, Duration::from_secs(10));
        assert_eq!(cli.serve.request_timeout, Duration::from_secs(50));
        assert_eq!(cli.serve.idle_timeout, Duration::from_secs(90));
        assert_eq!(cli.serve.max_requests_inflight, 400);
        assert_eq!(cli.serve.log_format, LogFormat::Text);
        assert_eq!(
            cli.serve.authentication_config_resync,
            Duration::from_secs(60)
        );
        assert_eq!(
            cli.serve.authentication_config_max_staleness,
            Duration::from_secs(300)
        );
        assert!(cli.serve.archive_logs);
        let no_logs = Cli::try_parse_from(["x", "--archive-logs=false"]).expect("parse");
        assert!(!no_logs.serve.archive_logs);
        let selfcert = Cli::try_parse_from(["x"]).expect("no files: self-managed certificate");
        assert_eq!(selfcert.serve.tls_cert_file, None);
        assert_eq!(selfcert.serve.self_cert.namespace, "tekton-retry");
        assert!(
            Cli::try_parse_from(["x", "--tls-cert-file", "c"]).is_err(),
            "a certificate file needs its key file"
        );
    }
}

//! The value of a duration flag (`--request-timeout=50s`, `TEKTON_RETRY_CERT_RESYNC=1m`): what
//! the `serve` flags in [`super::config`] and the self-managed certificate's flags share.

use std::time::Duration;

/// Parses a Go-style duration: `90` (seconds), `500ms`, `10s`, `2m`, `1h`, or a sequence such as
/// `1m30s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let bad = || format!("invalid duration {text:?}: expected e.g. 10s, 500ms, 2m, 1m30s");
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    crate::tekton::parse_go_duration(text).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h0m1s"), Ok(Duration::from_secs(3601)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
    }
}

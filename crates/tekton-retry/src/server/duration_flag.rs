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
        // A bare number is seconds here (unlike Go's parser).
        for (text, millis) in [
            ("10s", 10_000),
            ("500ms", 500),
            ("2m", 120_000),
            ("7", 7_000),
            ("1m30s", 90_000),
            ("1h0m1s", 3_601_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        for bad in ["10x", "", "-1s", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}

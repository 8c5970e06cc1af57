//! The `--timeout` flag: a Go-style duration (`90s`, `10m`, `1h30m`, `500ms`), as kubectl takes
//! it. Shown back with `tekton_retry::tekton::format_go_duration_secs`.

use std::time::Duration;

/// Parses a Go-style duration: one or more `<number><unit>` with units `h`, `m`, `s`, `ms`.
/// A bare number is refused (kubectl refuses it too for `--timeout`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.parse::<f64>().is_ok() {
        return Err(format!(
            "invalid duration {s:?}: a unit is needed, e.g. 90s, 10m, 1h30m"
        ));
    }
    tekton_retry::tekton::parse_go_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        for (text, millis) in [
            ("90s", 90_000),
            ("1h30m", 5_400_000),
            ("41m10s", 2_470_000),
            ("500ms", 500),
            ("1.5m", 90_000),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_millis(millis)), "{text}");
        }
        for bad in ["", "10", "m", "5x", "1h-3m", "s10"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reads_what_it_shows() {
        use tekton_retry::tekton::format_go_duration_secs as format;
        assert_eq!(format(Duration::from_secs(4)), "4s");
        assert_eq!(format(Duration::from_secs(65)), "1m5s");
        assert_eq!(format(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(
            parse(&format(Duration::from_secs(2470))),
            Ok(Duration::from_secs(2470))
        );
    }
}

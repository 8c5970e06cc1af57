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
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("41m10s"), Ok(Duration::from_secs(2470)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5m"), Ok(Duration::from_secs(90)));
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

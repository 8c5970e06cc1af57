//! Go-style durations (`90s`, `10m`, `1h30m`, `500ms`), as kubectl and Tekton write them.

use std::time::Duration;

/// Parses a Go-style duration: one or more `<number><unit>` with units `h`, `m`, `s`, `ms`.
/// A bare number is refused (kubectl refuses it too for `--timeout`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("missing unit in duration {text:?} (use h, m, s or ms)"))?;
        if digits == 0 {
            return Err(format!("invalid duration {text:?}"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid number in duration {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        total += Duration::from_secs_f64(number * seconds);
    }
    Ok(total)
}

/// Formats whole seconds the way Go's `time.Duration.String` does: `4s`, `1m5s`, `1h0m0s`.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
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
    fn formats_like_go() {
        assert_eq!(format(Duration::from_secs(4)), "4s");
        assert_eq!(format(Duration::from_secs(65)), "1m5s");
        assert_eq!(format(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(
            parse(&format(Duration::from_secs(2470))),
            Ok(Duration::from_secs(2470))
        );
    }
}

//! Kubernetes timestamps (RFC 3339) and Go durations (`1h0m0s`, `41m10s`) as Tekton writes them.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// A Go duration string that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected a Go duration such as 1h0m0s, 90s or 1.5h")]
pub struct DurationError(pub String);

/// Parses an RFC 3339 timestamp (`2026-11-26T19:27:10Z`, fractions and offsets allowed).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Formats a time the way `metav1.Time` serialises: whole seconds, `Z`.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parses a Go `time.Duration` string (`time.ParseDuration`): a sequence of decimal numbers with
/// optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `1h0m0s`, `1.5h`, `300ms`.
/// `0` alone is allowed. Negative durations are refused (Tekton timeouts cannot be negative).
pub fn parse_go_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(s.to_string());
    let body = s.strip_prefix('+').unwrap_or(s);
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() || body.starts_with('-') {
        return Err(err());
    }
    let mut total_nanos: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(err()),
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err());
        }
        if frac_part.contains('.') {
            return Err(err());
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| err())?
        };
        let mut nanos = int.checked_mul(unit_nanos).ok_or_else(err)?;
        let mut scale = unit_nanos;
        for d in frac_part.chars() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += u128::from(d.to_digit(10).ok_or_else(err)?) * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(err)?;
        rest = next;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| err())?;
    let sub = (total_nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// [`format_go_duration`] of the whole seconds of `d` (`41m10s`, never `41m10.25s`): how the
/// server and the plugin show a remaining budget or a wait.
pub fn format_go_duration_secs(d: Duration) -> String {
    format_go_duration(Duration::from_secs(d.as_secs()))
}

/// Formats a duration like Go's `time.Duration.String()`: `1h0m0s`, `41m10s`, `1.5s`, `300ms`, `0s`.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", fraction(nanos, 1_000_000));
    }
    let total_secs = d.as_secs();
    let h = total_secs / 3600;
    let m = (total_secs % 3600) / 60;
    let s = fraction(
        u128::from(total_secs % 60) * 1_000_000_000 + u128::from(d.subsec_nanos()),
        1_000_000_000,
    );
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `value / unit` as a decimal with trailing zeros trimmed (`1500, 1000` → `1.5`).
fn fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let rem = value % unit;
    if rem == 0 {
        return whole.to_string();
    }
    let width = unit.to_string().len() - 1;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        for (text, nanos) in [
            ("1h0m0s", 3_600_000_000_000),
            ("1m0s", 60_000_000_000),
            ("41m10s", 2_470_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("300ms", 300_000_000),
            ("2h45m", 9_900_000_000_000),
            ("0", 0),
            ("0s", 0),
            ("1µs", 1_000),
        ] {
            assert_eq!(
                parse_go_duration(text),
                Ok(Duration::from_nanos(nanos)),
                "{text}"
            );
        }
        for bad in ["", "1", "h", "-1s", "1x", "1..5s", "s1", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn formats_like_go() {
        for (nanos, text) in [
            (3_600_000_000_000, "1h0m0s"),
            (2_470_000_000_000, "41m10s"),
            (60_000_000_000, "1m0s"),
            (10_000_000_000, "10s"),
            (1_500_000_000, "1.5s"),
            (300_000_000, "300ms"),
            (1_500, "1.5µs"),
            (7, "7ns"),
            (0, "0s"),
            (90_061_000_000_000, "25h1m1s"),
        ] {
            assert_eq!(format_go_duration(Duration::from_nanos(nanos)), text);
        }
    }

    #[test]
    fn format_then_parse_round_trips() {
        for secs in [0u64, 1, 59, 60, 61, 3599, 3600, 3601, 86_400, 1_000_000] {
            for millis in [0u32, 1, 250, 999] {
                let d = Duration::new(secs, millis * 1_000_000);
                assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d), "{d:?}");
            }
        }
    }

    #[test]
    fn parses_and_formats_times() {
        let t = parse_time("2026-11-26T19:27:10Z").expect("valid");
        assert_eq!(format_time(t), "2026-11-26T19:27:10Z");
        let t2 = parse_time("2026-11-26T20:27:10+01:00").expect("valid");
        assert_eq!(t, t2);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn whole_second_durations() {
        assert_eq!(format_go_duration_secs(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(
            format_go_duration_secs(Duration::from_millis(2_470_250)),
            "41m10s"
        );
        assert_eq!(format_go_duration_secs(Duration::from_millis(300)), "0s");
    }
}

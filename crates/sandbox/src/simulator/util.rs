//! Small helpers over `serde_json::Value` Tekton objects: field access, the `Succeeded` condition,
//! Kubernetes timestamps, Go-style durations and `$(...)` substitution.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Value};

/// The value at `path` (object keys) inside `v`.
pub fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for key in path {
        cur = cur.get(key)?;
    }
    Some(cur)
}

/// The string at `path`, if it is a string.
pub fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// The string at `path`, or `""`.
pub fn str_or_empty<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get_str(v, path).unwrap_or("")
}

/// The array at `path`, or an empty slice.
pub fn array<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `metadata.name`.
pub fn name(v: &Value) -> &str {
    str_or_empty(v, &["metadata", "name"])
}

/// `kind`, or "".
pub fn kind(v: &Value) -> &str {
    str_or_empty(v, &["kind"])
}

/// `metadata.namespace`.
pub fn namespace(v: &Value) -> &str {
    str_or_empty(v, &["metadata", "namespace"])
}

/// `metadata.uid`.
pub fn uid(v: &Value) -> &str {
    str_or_empty(v, &["metadata", "uid"])
}

/// A label of the object.
pub fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, &["metadata", "labels", key]).and_then(Value::as_str)
}

/// The `type: Succeeded` condition of `status.conditions` (knative `apis.ConditionSucceeded`).
pub fn succeeded(v: &Value) -> Option<&Value> {
    array(v, &["status", "conditions"])
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Succeeded"))
}

/// The `Succeeded` condition inside a bare `status` map.
pub fn succeeded_in(status: &Map<String, Value>) -> Option<&Value> {
    status
        .get("conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Succeeded"))
}

/// `(status, reason, message)` of the `Succeeded` condition.
pub fn succeeded_parts(v: &Value) -> Option<(&str, &str, &str)> {
    let c = succeeded(v)?;
    Some((
        str_or_empty(c, &["status"]),
        str_or_empty(c, &["reason"]),
        str_or_empty(c, &["message"]),
    ))
}

/// knative `IsDone`: the `Succeeded` condition is `True` or `False`.
pub fn is_done(v: &Value) -> bool {
    matches!(
        succeeded_parts(v),
        Some(("True", _, _)) | Some(("False", _, _))
    )
}

/// `Succeeded` is `True`.
pub fn is_successful(v: &Value) -> bool {
    matches!(succeeded_parts(v), Some(("True", _, _)))
}

/// `Succeeded` is `False`.
pub fn is_failure(v: &Value) -> bool {
    matches!(succeeded_parts(v), Some(("False", _, _)))
}

/// Sets the `Succeeded` condition in a status map the way knative's condition manager does: the
/// `lastTransitionTime` only moves when status, reason or message change (knative.dev/pkg
/// `apis/condition_set.go` `SetCondition`).
pub fn set_succeeded(
    status: &mut Map<String, Value>,
    cond_status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) {
    let conditions = status
        .entry("conditions")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !conditions.is_array() {
        *conditions = Value::Array(Vec::new());
    }
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    let mut new = Map::new();
    new.insert("type".into(), "Succeeded".into());
    new.insert("status".into(), cond_status.into());
    if !reason.is_empty() {
        new.insert("reason".into(), reason.into());
    }
    if !message.is_empty() {
        new.insert("message".into(), message.into());
    }
    let pos = list
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some("Succeeded"));
    let ltt = match pos {
        Some(i) => {
            let old = &list[i];
            let same = str_or_empty(old, &["status"]) == cond_status
                && str_or_empty(old, &["reason"]) == reason
                && str_or_empty(old, &["message"]) == message;
            match (same, old.get("lastTransitionTime")) {
                (true, Some(t)) => t.clone(),
                _ => fmt_time(now).into(),
            }
        }
        None => fmt_time(now).into(),
    };
    new.insert("lastTransitionTime".into(), ltt);
    match pos {
        Some(i) => list[i] = Value::Object(new),
        None => list.push(Value::Object(new)),
    }
}

/// A `metav1.Time` as the apiserver serialises it (RFC 3339, whole seconds, `Z`).
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The millisecond layout Tekton's entrypoint writes (`2006-01-02T15:04:05.000Z07:00`).
pub fn fmt_time_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp.
pub use tekton_retry::tekton::parse_time;

/// The timestamp at `path`.
pub fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    get_str(v, path).and_then(parse_time)
}

/// Parses a Go `time.ParseDuration` string (`1h0m0s`, `1m`, `200ms`, `1.5s`).
pub fn parse_duration(s: &str) -> Option<TimeDelta> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(TimeDelta::zero());
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale = match unit {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total_ns += n * scale;
    }
    Some(TimeDelta::nanoseconds(total_ns.round() as i64))
}

/// Formats a duration like Go's `time.Duration.String()` (`1h0m0s`, `1m0s`, `30s`, `1.5s`, `200ms`),
/// negative ones with a `-`. The product's formatter is reused: how a duration is written is Go's
/// rule, not a Tekton rule the simulator must model on its own, and the recorded fixtures check the
/// simulator's messages either way.
pub fn format_duration(d: TimeDelta) -> String {
    let sign = if d < TimeDelta::zero() { "-" } else { "" };
    let magnitude = d.abs().to_std().unwrap_or(std::time::Duration::MAX);
    format!(
        "{sign}{}",
        tekton_retry::tekton::format_go_duration(magnitude)
    )
}

/// Replaces every `$(expr)` in `s` for which `f(expr)` answers; other references stay as they are
/// (Tekton's `substitution.ApplyReplacements` leaves unknown variables untouched).
pub fn substitute(s: &str, f: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) => {
                let expr = &after[..end];
                match f(expr.trim()) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push_str("$(");
                        out.push_str(expr);
                        out.push(')');
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Applies [`substitute`] to every string inside `v`.
/// The substitutions `ApplyParameters` and `ApplyContexts` make for `run` (a PipelineRun or a
/// TaskRun; `context` is `pipelineRun` or `taskRun`): `params.<name>`, the string `default` declared
/// in `spec.params` overridden by the run's string `value`; and `context.<context>.name`,
/// `.namespace` and `.uid`.
pub fn params_and_context(spec: &Value, run: &Value, context: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for p in array(spec, &["params"]) {
        if let (Some(n), Some(Value::String(d))) = (get_str(p, &["name"]), p.get("default")) {
            values.insert(format!("params.{n}"), d.clone());
        }
    }
    for p in array(run, &["spec", "params"]) {
        if let (Some(n), Some(Value::String(v))) = (get_str(p, &["name"]), p.get("value")) {
            values.insert(format!("params.{n}"), v.clone());
        }
    }
    values.insert(format!("context.{context}.name"), name(run).into());
    values.insert(
        format!("context.{context}.namespace"),
        namespace(run).into(),
    );
    values.insert(format!("context.{context}.uid"), uid(run).into());
    values
}

/// `HasStarted`/`InitializeConditions`' start time for `obj`: `now`, but not before its creation,
/// formatted.
pub fn start_time(obj: &Value, now: DateTime<Utc>) -> String {
    let start = match time_at(obj, &["metadata", "creationTimestamp"]) {
        Some(created) if created > now => created,
        _ => now,
    };
    fmt_time(start)
}

pub fn substitute_value(v: &mut Value, f: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::String(s) if s.contains("$(") => *s = substitute(s, f),
        Value::Array(a) => a.iter_mut().for_each(|x| substitute_value(x, f)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute_value(x, f)),
        _ => {}
    }
}

/// Every `$(expr)` expression inside the strings of `v`.
pub fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("$(") {
                let after = &rest[start + 2..];
                match after.find(')') {
                    Some(end) => {
                        out.push(after[..end].trim().to_string());
                        rest = &after[end + 1..];
                    }
                    None => break,
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| references(x, out)),
        Value::Object(o) => o.values().for_each(|x| references(x, out)),
        _ => {}
    }
}

/// A `tasks.<t>.results.<r>` reference split into `(t, r)`.
pub fn result_ref(expr: &str) -> Option<(&str, &str)> {
    let rest = expr.strip_prefix("tasks.")?;
    let (task, rest) = rest.split_once(".results.")?;
    let result = rest.split(['.', '[']).next()?;
    Some((task, result))
}

/// The first `n` hex digits of sha256(`s`).
pub fn sha256_hex(s: &str, n: usize) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    hex[..n.min(hex.len())].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_round_trip() {
        for (s, out) in [
            ("1h", "1h0m0s"),
            ("1h0m0s", "1h0m0s"),
            ("1m0s", "1m0s"),
            ("90s", "1m30s"),
            ("200ms", "200ms"),
            ("1.5s", "1.5s"),
            ("0s", "0s"),
        ] {
            let d = parse_duration(s).expect(s);
            assert_eq!(format_duration(d), out, "{s}");
        }
        assert_eq!(format_duration(TimeDelta::seconds(-90)), "-1m30s");
        assert!(parse_duration("abc").is_none());
        assert!(parse_duration("5x").is_none());
    }

    #[test]
    fn substitution_keeps_unknown_references() {
        let f = |e: &str| (e == "params.a").then(|| "A".to_string());
        assert_eq!(
            substitute("x $(params.a) $(params.b) y", &f),
            "x A $(params.b) y"
        );
        assert_eq!(
            substitute("unterminated $(params.a", &f),
            "unterminated $(params.a"
        );
        assert_eq!(result_ref("tasks.a.results.commit"), Some(("a", "commit")));
        assert_eq!(result_ref("tasks.status"), None);
    }

    #[test]
    fn condition_time_moves_only_on_change() {
        let t0 = parse_time("2026-11-26T19:00:00Z").expect("t0");
        let t1 = parse_time("2026-11-26T19:00:05Z").expect("t1");
        let mut st = Map::new();
        set_succeeded(&mut st, "Unknown", "Running", "m", t0);
        set_succeeded(&mut st, "Unknown", "Running", "m", t1);
        let v = Value::Object(st.clone());
        assert_eq!(
            str_or_empty(&v["conditions"][0], &["lastTransitionTime"]),
            "2026-11-26T19:00:00Z"
        );
        set_succeeded(&mut st, "False", "Failed", "m", t1);
        let v = Value::Object(st);
        assert_eq!(
            str_or_empty(&v["conditions"][0], &["lastTransitionTime"]),
            "2026-11-26T19:00:05Z"
        );
    }
}

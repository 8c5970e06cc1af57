//! deploy/monitoring against the server: the alert rules pass `promtool check rules`, every
//! metric the rules and the Grafana dashboard use is one a real `/metrics` scrape of the server
//! shows (or one of the few kube-apiserver/Prometheus metrics listed here), the dashboard parses
//! and each panel has queries, and docs/monitoring.md has a runbook section per alert and a
//! description per panel.

#[allow(dead_code)]
use crate::deploy_support;
use tekton_retry_test_support::sandbox as sandbox_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tekton_retry_sandbox::SandboxOptions;

/// Metrics the rules use that other components export: Prometheus' scrape health, and
/// kube-apiserver's view of aggregated APIServices (kube-aggregator
/// `pkg/controllers/status/metrics.go`).
const EXTERNAL_METRICS: &[&str] = &["up", "aggregator_unavailable_apiservice"];

fn monitoring(file: &str) -> PathBuf {
    deploy_support::repo().join("deploy/monitoring").join(file)
}

fn rule_file() -> Value {
    let text = std::fs::read_to_string(monitoring("prometheusrule.yaml")).expect("read rules");
    let v: Value = serde_yaml::from_str(&text).expect("prometheusrule.yaml is YAML");
    assert_eq!(v["kind"], "PrometheusRule");
    v
}

fn rules() -> Vec<Value> {
    rule_file()["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(monitoring("dashboard.json")).expect("read dashboard");
    serde_json::from_str(&text).expect("dashboard.json parses")
}

fn panel_exprs(d: &Value) -> Vec<(String, Vec<String>)> {
    d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| {
            let title = p["title"].as_str().expect("panel title").to_owned();
            let exprs = p["targets"]
                .as_array()
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (title, exprs)
        })
        .collect()
}

/// Metric names in a PromQL expression: identifiers followed by `{` or `[`, or standing alone
/// as a vector selector (not followed by `(`, not a label name, keyword or inside quotes).
fn metric_names(expr: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "sum",
        "by",
        "without",
        "rate",
        "increase",
        "histogram_quantile",
        "max",
        "min",
        "avg",
        "count",
        "absent",
        "time",
        "on",
        "ignoring",
        "unless",
        "and",
        "or",
        "le",
        "bool",
        "group_left",
        "group_right",
        "offset",
    ];
    let mut out = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let (mut i, mut in_quote, mut brace, mut paren_list) = (0, false, 0, false);
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            in_quote = !in_quote;
            i += 1;
            continue;
        }
        if in_quote {
            i += 1;
            continue;
        }
        match c {
            '{' => brace += 1,
            '}' => brace -= 1,
            ')' => paren_list = false,
            // Range and subquery durations (`[5m]`, `[$__rate_interval]`).
            '[' => {
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let before_dollar = start > 0 && chars[start - 1] == '$';
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            if word == "by" || word == "without" {
                paren_list = true;
            }
            let is_metric = brace == 0
                && !paren_list
                && !before_dollar
                && !WORDS.contains(&word.as_str())
                && next != Some('(')
                && !word.chars().all(|c| c.is_ascii_digit());
            if is_metric {
                out.insert(word);
            }
            continue;
        }
        i += 1;
    }
    out
}

/// The sample names `/metrics` exports: sample lines, and for each `# TYPE` the names its
/// samples take (counters `_total`, histograms `_bucket`/`_sum`/`_count`).
fn exported(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    out.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for s in ["_bucket", "_sum", "_count"] {
                        out.insert(format!("{name}{s}"));
                    }
                }
                _ => {
                    out.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name: String = line
                .chars()
                .take_while(|c| *c != '{' && *c != ' ')
                .collect();
            out.insert(name);
        }
    }
    out
}

#[test]
fn metric_names_are_found_in_promql() {
    let got = metric_names(
        r#"histogram_quantile(0.5, sum by (le, route) (rate(a_bucket{x="y z"}[5m]))) / b - time() + absent(up{job="j"} == 1) unless c"#,
    );
    let want: BTreeSet<String> = ["a_bucket", "b", "up", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_the_rules_and_the_dashboard_is_exported() {
    // The sandbox's serve with the self-managed certificate, as the default install runs it.
    let sb = sandbox_support::start_with(SandboxOptions {
        engine: sandbox_support::quick_engine(),
        self_cert: Some(SandboxOptions::self_cert_options(
            Duration::from_secs(3600),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )),
        ..Default::default()
    })
    .await;
    // Some work first, so that every labelled metric has samples: a retry that runs (retries,
    // the engine's API requests) and one that is refused (refusals).
    let admin = sb.client("admin").expect("admin");
    let (code, body) =
        sandbox_support::retry(&admin, "demo-failed", serde_json::json!({}), "").await;
    assert_eq!(code, 201, "{body}");
    let (code, body) =
        sandbox_support::retry(&admin, "demo-succeeded", serde_json::json!({}), "").await;
    assert_eq!(code, 409, "{body}");
    // Scrape as Prometheus does: a user outside system:masters, allowed `get` on /metrics, so the
    // scrape is authorized with a SubjectAccessReview (the authorization cache counts it).
    sb.emulator.add_user("prometheus", &[]);
    sb.emulator.policy().bind(
        tekton_retry_sandbox::policy::Subject::User("prometheus".into()),
        "prometheus",
        vec![tekton_retry_sandbox::policy::Rule::urls(
            &["/metrics"],
            &["get"],
        )],
    );
    let mut cfg = sb.emulator.kube_config("prometheus").expect("config");
    cfg.cluster_url = sb.retry_url().parse().expect("url");
    cfg.root_cert = Some(
        rustls_pemfile::certs(&mut sb.retry_ca_bundle().as_bytes())
            .map(|c| c.expect("pem").to_vec())
            .collect(),
    );
    cfg.tls_server_name = Some("tekton-retry.tekton-retry.svc".into());
    let client = kube::Client::try_from(cfg).expect("client");
    let text = client
        .request_text(
            http::Request::get("/metrics")
                .body(Vec::new())
                .expect("req"),
        )
        .await
        .expect("scrape /metrics");
    let names = exported(&text);
    assert!(
        names.contains("tekton_retry_apiserver_requests_total"),
        "{text}"
    );

    let mut used: Vec<(String, String)> = Vec::new();
    for r in rules() {
        let alert = r["alert"].as_str().expect("alert").to_owned();
        for m in metric_names(r["expr"].as_str().expect("expr")) {
            used.push((format!("alert {alert}"), m));
        }
    }
    for (title, exprs) in panel_exprs(&dashboard()) {
        for e in exprs {
            for m in metric_names(&e) {
                used.push((format!("panel {title}"), m));
            }
        }
    }
    assert!(used.len() > 10, "{used:?}");
    let missing: Vec<_> = used
        .iter()
        .filter(|(_, m)| !names.contains(m) && !EXTERNAL_METRICS.contains(&m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "used but not exported by the server: {missing:?}\nexported: {names:?}"
    );
    sb.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn dashboard_parses_and_every_panel_has_queries() {
    let d = dashboard();
    assert!(d["title"].is_string() && d["uid"].is_string());
    let panels = panel_exprs(&d);
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for (title, exprs) in &panels {
        assert!(!exprs.is_empty(), "panel {title} has no query");
        assert!(exprs.iter().all(|e| !e.trim().is_empty()), "panel {title}");
    }
    let ids: BTreeSet<u64> = d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .map(|p| p["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
}

#[test]
fn every_alert_and_panel_is_documented() {
    let doc = std::fs::read_to_string(deploy_support::repo().join("docs/monitoring.md"))
        .expect("docs/monitoring.md");
    for r in rules() {
        let alert = r["alert"].as_str().expect("alert");
        assert!(
            doc.contains(&format!("### {alert}\n")),
            "docs/monitoring.md has no runbook section for {alert}"
        );
        let url = r["annotations"]["runbook_url"]
            .as_str()
            .expect("runbook_url");
        assert!(
            url.ends_with(&format!("docs/monitoring.md#{}", alert.to_lowercase())),
            "{alert}: {url}"
        );
        for k in ["summary", "description"] {
            assert!(r["annotations"][k].is_string(), "{alert} has no {k}");
        }
        assert!(
            r["labels"]["severity"].is_string(),
            "{alert} has no severity"
        );
    }
    for (title, _) in panel_exprs(&dashboard()) {
        assert!(
            doc.contains(&format!("**{title}**")),
            "docs/monitoring.md does not describe the panel {title:?}"
        );
    }
}

#[test]
fn rules_pass_promtool_check_rules() {
    let promtool = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("promtool"))
            .find(|c| c.is_file())
    });
    let Some(promtool) = promtool else {
        assert!(
            std::env::var("TEKTON_RETRY_SKIP_PROMTOOL").is_ok_and(|v| v == "1"),
            "promtool is needed (Debian package prometheus), or set TEKTON_RETRY_SKIP_PROMTOOL=1 to skip"
        );
        eprintln!("SKIPPED: promtool not found and TEKTON_RETRY_SKIP_PROMTOOL=1");
        return;
    };
    // promtool reads Prometheus rule files: the PrometheusRule's spec is one.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rules.yaml");
    let spec = serde_yaml::to_string(&rule_file()["spec"]).expect("yaml");
    std::fs::write(&file, spec).expect("write");
    let out = std::process::Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "promtool check rules failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("SUCCESS: {} rules found", rules().len())),
        "{stdout}"
    );
}

#[test]
fn monitoring_manifests_render_and_wire_up() {
    let Some(objs) = deploy_support::render_repo("deploy/monitoring") else {
        return;
    };
    let sm = deploy_support::find(&objs, "ServiceMonitor", "tekton-retry");
    let base = deploy_support::render_repo("deploy/base").expect("base renders");
    let svc = deploy_support::find(&base, "Service", "tekton-retry");
    let endpoint = &sm["spec"]["endpoints"][0];
    assert!(svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .any(|p| p["name"] == endpoint["port"]));
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selects the Service"
        );
    }
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(
        endpoint["tlsConfig"]["ca"]["secret"]["name"],
        tekton_retry::rbac::CERT_SECRET
    );
    let cm = deploy_support::find(&objs, "ConfigMap", "tekton-retry-dashboard");
    let json = cm["data"]["tekton-retry-dashboard.json"]
        .as_str()
        .expect("dashboard in the ConfigMap");
    assert_eq!(
        serde_json::from_str::<Value>(json).expect("parses"),
        dashboard()
    );
}

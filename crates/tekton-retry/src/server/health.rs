//! `/healthz`, `/livez` and `/readyz`, answered like kube-apiserver
//! (`staging/src/k8s.io/apiserver/pkg/server/healthz/healthz.go`): plain text, `ok` when every
//! check passes, `[+]name ok` / `[-]name failed: reason withheld` lines with `?verbose` or on
//! failure (HTTP 500), `?exclude=name` to skip a check, `/readyz/<name>` for one check.
//! Health paths need no authentication (kubelet probes have no client certificate).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::authn::AuthState;
use super::routes::HealthKind;

/// The state the checks read. Readiness checks:
/// - `extension-apiserver-authentication`: a valid authentication configuration was loaded once
///   (it stays in use through later API errors, so this never turns false again);
/// - `kubernetes-api`: the API answered a read or watch of that ConfigMap within `max_staleness`
///   (a short API outage leaves every replica ready; one cut off from the API for long leaves
///   the Service endpoints);
/// - `shutdown`: no shutdown has begun.
pub struct Health {
    shutting_down: AtomicBool,
    auth: Arc<AuthState>,
    max_staleness: Duration,
}

impl Health {
    pub fn new(auth: Arc<AuthState>, max_staleness: Duration) -> Self {
        Health {
            shutting_down: AtomicBool::new(false),
            auth,
            max_staleness,
        }
    }

    /// Readiness turns false from now on (shutdown started).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether `/readyz` passes.
    pub fn ready(&self) -> bool {
        self.checks(HealthKind::Readyz).iter().all(|(_, ok)| *ok)
    }

    fn checks(&self, kind: HealthKind) -> Vec<(&'static str, bool)> {
        let mut checks = vec![("ping", true)];
        if kind == HealthKind::Readyz {
            checks.push(("extension-apiserver-authentication", self.auth.loaded()));
            checks.push((
                "kubernetes-api",
                self.auth.confirmed_within(self.max_staleness),
            ));
            checks.push(("shutdown", !self.shutting_down.load(Ordering::SeqCst)));
        }
        checks
    }

    /// HTTP code and plain-text body for a health request.
    pub fn respond(
        &self,
        kind: HealthKind,
        single: Option<&str>,
        query: Option<&str>,
    ) -> (u16, String) {
        let mut verbose = false;
        let mut exclude: Vec<String> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "verbose" => verbose = v != "false",
                "exclude" => exclude.push(v.into_owned()),
                _ => {}
            }
        }
        let all = self.checks(kind);
        if let Some(name) = single {
            return match all.iter().find(|(n, _)| *n == name) {
                Some((_, true)) => (200, "ok".to_string()),
                Some((n, false)) => (500, format!("internal server error: {n} check failed\n")),
                None => (404, format!("no such {} check: {name:?}\n", kind.name())),
            };
        }
        let mut body = String::new();
        let mut failed = false;
        for (name, ok) in &all {
            if exclude.iter().any(|e| e == name) {
                body.push_str(&format!("[+]{name} excluded: ok\n"));
            } else if *ok {
                body.push_str(&format!("[+]{name} ok\n"));
            } else {
                failed = true;
                body.push_str(&format!("[-]{name} failed: reason withheld\n"));
            }
        }
        if failed {
            body.push_str(&format!("{} check failed\n", kind.name()));
            (500, body)
        } else if verbose {
            body.push_str(&format!("{} check passed\n", kind.name()));
            (200, body)
        } else {
            (200, "ok".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::authn::AuthConfig;

    #[test]
    fn readyz_follows_config_and_shutdown() {
        let auth = Arc::new(AuthState::default());
        let h = Health::new(auth.clone(), Duration::from_secs(60));
        assert_eq!(
            h.respond(HealthKind::Livez, None, None),
            (200, "ok".to_string())
        );
        let (code, body) = h.respond(HealthKind::Readyz, None, None);
        assert_eq!(code, 500);
        assert!(
            body.contains("[-]extension-apiserver-authentication failed: reason withheld"),
            "{body}"
        );
        assert!(body.ends_with("readyz check failed\n"));
        auth.set(AuthConfig::default());
        assert!(!h.ready(), "the API was never reached");
        auth.confirm(None);
        assert!(h.ready());
        auth.fail("connection refused".into());
        assert!(
            h.ready(),
            "an API error leaves a loaded configuration ready"
        );
        let strict = Health::new(auth.clone(), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!strict.ready(), "not confirmed within the bound");
        let (code, body) = h.respond(
            HealthKind::Readyz,
            None,
            Some("exclude=kubernetes-api&verbose"),
        );
        assert_eq!(code, 200, "{body}");
        assert!(body.contains("[+]ping ok\n") && body.contains("[+]kubernetes-api excluded: ok\n"));
        assert_eq!(h.respond(HealthKind::Readyz, Some("ping"), None).0, 200);
        assert_eq!(h.respond(HealthKind::Readyz, Some("nope"), None).0, 404);
        h.begin_shutdown();
        let (code, body) = h.respond(HealthKind::Readyz, None, Some("exclude=kubernetes-api"));
        assert_eq!(code, 500);
        assert!(body.contains("[-]shutdown failed"));
        assert_eq!(
            h.respond(HealthKind::Livez, None, None).0,
            200,
            "liveness is unaffected by shutdown"
        );
    }
}

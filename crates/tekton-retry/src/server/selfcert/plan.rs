//! What to write into the certificate Secret next, decided from what it holds now (pure).
//!
//! The rotation is staged so that kube-apiserver never meets a serving certificate it does not
//! trust: a new CA first joins the trusted bundle (and so the APIService `caBundle`) next to the
//! old one; only once the bundle holding it has been in the APIService for the propagation delay
//! is a serving certificate issued from it; an old CA leaves the bundle when it expires (and with
//! it every certificate it signed). knative's certificate reconciler
//! (`knative.dev/pkg/webhook/certificates`) swaps CA and certificate in one write instead.

use chrono::{DateTime, Utc};

use super::material::{self, CertInfo, KeyedCert, MaterialError};

/// The contents of the certificate Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The CA that signs new serving certificates.
    pub ca: KeyedCert,
    /// The serving certificate.
    pub leaf: KeyedCert,
    /// The CAs clients must trust (PEM): the current one first, then older ones not yet expired.
    pub bundle: String,
    /// When the current CA was made (and joined the bundle).
    pub staged_at: Option<DateTime<Utc>>,
}

/// How certificates are made and rotated.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Prefix of the CA's common name.
    pub name: String,
    /// Names the serving certificate is for (DNS names or IP addresses).
    pub dns_names: Vec<String>,
    /// Lifetime of a CA (a serving certificate ends when its CA does).
    pub validity: std::time::Duration,
    /// How long a CA must have been in the APIService `caBundle` before a serving certificate from
    /// it is used.
    pub propagation_delay: std::time::Duration,
}

impl Policy {
    /// A CA with less than this left is replaced: a third of the validity.
    pub fn renew_before(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.validity / 3).unwrap_or(chrono::Duration::zero())
    }
}

/// The next write, if any.
#[derive(Debug)]
pub enum Step {
    Keep,
    Write { next: Stored, why: &'static str },
}

/// Decides the next step. `ca_trusted_at` is when this process saw the APIService accept a
/// `caBundle` holding `current.ca` (None: not yet).
pub fn plan(
    current: Option<&Stored>,
    now: DateTime<Utc>,
    policy: &Policy,
    ca_trusted_at: Option<DateTime<Utc>>,
) -> Result<Step, MaterialError> {
    let Some(cur) = current else {
        return Ok(Step::Write {
            next: fresh(now, policy, &[])?,
            why: "created a CA and a serving certificate",
        });
    };
    let (ca, leaf) = match (
        material::info(&cur.ca.cert, "ca.crt"),
        material::info(&cur.leaf.cert, "tls.crt"),
    ) {
        (Ok(ca), Ok(leaf)) => (ca, leaf),
        _ => {
            return Ok(Step::Write {
                next: fresh(now, policy, &unexpired(&cur.bundle, now))?,
                why: "the Secret held an unreadable certificate: made a new CA",
            })
        }
    };
    // The current CA first, then the others that have not expired.
    let mut bundle = vec![ca.clone()];
    bundle.extend(
        unexpired(&cur.bundle, now)
            .into_iter()
            .filter(|c| c.der != ca.der),
    );
    let renew = policy.renew_before();

    if ca.not_after - now < renew {
        let new_ca = material::new_ca(&policy.name, now, policy.validity)?;
        let new_info = material::info(&new_ca.cert, "new CA")?;
        let mut staged = vec![new_info];
        staged.extend(bundle);
        return Ok(Step::Write {
            next: Stored {
                ca: new_ca,
                leaf: cur.leaf.clone(),
                bundle: join(&staged),
                staged_at: Some(now),
            },
            why: "staged a new CA next to the old one (the serving certificate follows)",
        });
    }

    let names_ok = policy.dns_names.iter().all(|n| leaf.dns_names.contains(n));
    let leaf_ok = material::signed_by(&leaf, &ca) && leaf.not_after - now >= renew && names_ok;
    if !leaf_ok {
        let delay = chrono::Duration::from_std(policy.propagation_delay)
            .unwrap_or(chrono::Duration::zero());
        let since = match (ca_trusted_at, cur.staged_at) {
            (Some(t), Some(s)) => Some(t.max(s)),
            (t, _) => t,
        };
        if since.is_some_and(|t| t + delay <= now) {
            let leaf = material::new_leaf(&cur.ca, &policy.dns_names, now, ca.not_after)?;
            return Ok(Step::Write {
                next: Stored {
                    ca: cur.ca.clone(),
                    leaf,
                    bundle: join(&bundle),
                    staged_at: cur.staged_at,
                },
                why: "issued a serving certificate from the current CA",
            });
        }
    }

    let bundle = join(&bundle);
    if bundle != cur.bundle {
        return Ok(Step::Write {
            next: Stored {
                bundle,
                ..cur.clone()
            },
            why: "dropped expired CAs from the bundle",
        });
    }
    Ok(Step::Keep)
}

fn fresh(now: DateTime<Utc>, policy: &Policy, keep: &[CertInfo]) -> Result<Stored, MaterialError> {
    let ca = material::new_ca(&policy.name, now, policy.validity)?;
    let ca_info = material::info(&ca.cert, "new CA")?;
    let leaf = material::new_leaf(&ca, &policy.dns_names, now, ca_info.not_after)?;
    let mut bundle = vec![ca_info];
    bundle.extend(keep.iter().cloned());
    Ok(Stored {
        ca,
        leaf,
        bundle: join(&bundle),
        staged_at: Some(now),
    })
}

/// The readable certificates of a PEM bundle that are still valid at `now`.
fn unexpired(pem: &str, now: DateTime<Utc>) -> Vec<CertInfo> {
    material::pem_blocks(pem, "ca-bundle.crt")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|der| material::info_der(der, "ca-bundle.crt").ok())
        .filter(|c| c.not_after > now)
        .collect()
}

fn join(certs: &[CertInfo]) -> String {
    certs.iter().map(|c| material::to_pem(&c.der)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy() -> Policy {
        Policy {
            name: "t".into(),
            dns_names: vec!["svc.ns.svc".into()],
            validity: Duration::from_secs(3000),
            propagation_delay: Duration::from_secs(10),
        }
    }

    fn write(step: Step) -> Stored {
        match step {
            Step::Write { next, .. } => next,
            Step::Keep => panic!("expected a write"),
        }
    }

    fn ca_count(s: &Stored) -> usize {
        material::pem_blocks(&s.bundle, "b").expect("bundle").len()
    }

    fn leaf_signed_by_ca(s: &Stored) -> bool {
        material::signed_by(
            &material::info(&s.leaf.cert, "leaf").expect("leaf"),
            &material::info(&s.ca.cert, "ca").expect("ca"),
        )
    }

    /// Whether the plan at `now` leaves `current` as it is.
    fn keeps(
        current: &Stored,
        now: DateTime<Utc>,
        policy: &Policy,
        ca_trusted_at: Option<DateTime<Utc>>,
    ) -> bool {
        matches!(
            plan(Some(current), now, policy, ca_trusted_at).expect("plan"),
            Step::Keep
        )
    }

    #[test]
    fn rotation_stages_the_ca_then_the_leaf_then_drops_the_old_ca() {
        let p = policy();
        let t0 = Utc::now();
        let s0 = write(plan(None, t0, &p, None).expect("plan"));
        assert!(leaf_signed_by_ca(&s0));
        assert_eq!(ca_count(&s0), 1);
        // Nothing to do while the CA has more than a third of its life left.
        let t1 = t0 + chrono::Duration::seconds(1000);
        assert!(keeps(&s0, t1, &p, Some(t0)));

        // Past two thirds: a new CA joins the bundle; the leaf stays (signed by the old CA).
        let t2 = t0 + chrono::Duration::seconds(2001);
        let s1 = write(plan(Some(&s0), t2, &p, Some(t0)).expect("plan"));
        assert_ne!(s1.ca, s0.ca);
        assert_eq!(s1.leaf, s0.leaf);
        assert_eq!(ca_count(&s1), 2);
        let old_ca = material::info(&s0.ca.cert, "old").expect("old").der;
        let in_bundle = |s: &Stored| {
            material::pem_blocks(&s.bundle, "b")
                .expect("b")
                .contains(&old_ca)
        };
        assert!(in_bundle(&s1), "the old CA stays in the bundle");

        // The new leaf waits until the bundle with the new CA was accepted, plus the delay.
        assert!(keeps(&s1, t2, &p, None));
        let t3 = t2 + chrono::Duration::seconds(5);
        assert!(keeps(&s1, t3, &p, Some(t2)));
        let t4 = t2 + chrono::Duration::seconds(11);
        let s2 = write(plan(Some(&s1), t4, &p, Some(t2)).expect("plan"));
        assert!(leaf_signed_by_ca(&s2));
        assert_eq!(s2.ca, s1.ca);
        assert!(in_bundle(&s2), "the old CA stays trusted until it expires");

        // Once the old CA expired it leaves the bundle.
        let t5 = t0 + chrono::Duration::seconds(3001);
        let s3 = write(plan(Some(&s2), t5, &p, Some(t2)).expect("plan"));
        assert_eq!(ca_count(&s3), 1);
        assert!(!in_bundle(&s3));
        assert_eq!(s3.leaf, s2.leaf);
        assert!(keeps(&s3, t5, &p, Some(t2)));
    }

    #[test]
    fn a_leaf_missing_a_name_is_reissued_and_garbage_is_replaced() {
        let mut p = policy();
        let t0 = Utc::now();
        let s0 = write(plan(None, t0, &p, None).expect("plan"));
        p.dns_names.push("other.ns.svc".into());
        // A CA in the bundle for longer than the delay signs a new leaf at once.
        let t1 = t0 + chrono::Duration::seconds(11);
        let s1 = write(plan(Some(&s0), t1, &p, Some(t0)).expect("plan"));
        let names = material::info(&s1.leaf.cert, "leaf")
            .expect("leaf")
            .dns_names;
        assert!(names.contains(&"other.ns.svc".to_string()));

        let mut broken = s1.clone();
        broken.ca.cert = "garbage".into();
        let s2 = write(plan(Some(&broken), t0, &p, Some(t0)).expect("plan"));
        assert!(leaf_signed_by_ca(&s2));
        assert_eq!(ca_count(&s2), 2, "the old bundle's CAs stay trusted");
    }
}

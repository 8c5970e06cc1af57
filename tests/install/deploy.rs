//! The install manifests (`apiservice/`, `deploy/`) and `hack/gen-certs.sh`, checked against the
//! code: rendered with the real `kubectl kustomize` (offline), parsed, and compared with the
//! server's constants and its list of API calls. Rendering tests print SKIPPED and pass when no
//! kubectl is installed; certificate tests do the same without openssl.

use crate::deploy_support;

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine;
use deploy_support::{all, find, generated, render_repo, s};
use serde_json::Value;
use tekton_retry::api::{APISERVICE_NAME, GROUP, RESOURCE, SUBRESOURCE, VERSION};
use tekton_retry::rbac::{server_api_calls, OWN_NAMESPACE_CALLS, SERVER_API_CALLS};

const NAMESPACE: &str = "tekton-retry";
const SERVER_SA: &str = "tekton-retry";
/// The name kube-apiserver dials: `<service>.<namespace>.svc` of the APIService's service reference.
const SERVICE_DNS: &str = "tekton-retry.tekton-retry.svc";

type Perm = (String, String, String);

/// Every (group, resource, verb) a PolicyRule grants.
fn grants(rule: &Value) -> Vec<Perm> {
    let list = |key: &str| rule[key].as_array().expect(key).clone();
    let mut out = Vec::new();
    for g in list("apiGroups") {
        for r in list("resources") {
            for v in list("verbs") {
                out.push((
                    s(&g, "group").into(),
                    s(&r, "resource").into(),
                    s(&v, "verb").into(),
                ));
            }
        }
    }
    out
}

/// (group, resource, verb) for every verb of every rule; panics on anything a rule could grant
/// beyond that (resourceNames, nonResourceURLs).
fn rule_perms(role: &Value) -> BTreeSet<Perm> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(
            rule.get("resourceNames").is_none(),
            "unexpected resourceNames: {rule}"
        );
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "unexpected nonResourceURLs: {rule}"
        );
        out.extend(grants(rule));
    }
    out
}

fn is_server_sa(subject: &Value) -> bool {
    subject["kind"] == "ServiceAccount"
        && subject["name"] == SERVER_SA
        && subject["namespace"] == NAMESPACE
}

fn binds_server_sa(binding: &Value) -> bool {
    binding["subjects"]
        .as_array()
        .expect("subjects")
        .iter()
        .any(is_server_sa)
}

fn deployment(objs: &[Value]) -> &Value {
    find(objs, "Deployment", "tekton-retry")
}

/// The names of the Secrets the server's pods mount as volumes.
fn mounted_secrets(objs: &[Value]) -> Vec<&str> {
    deployment(objs)["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["secret"]["secretName"].as_str())
        .collect()
}

fn container(objs: &[Value]) -> &Value {
    let containers = deployment(objs)["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

/// The container port a Service or probe port (number or name) refers to.
fn container_port(c: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = s(port, "port name");
    c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
        .as_u64()
        .expect("containerPort")
}

/// The value of `--flag=value` in the container args.
fn arg<'a>(c: &'a Value, flag: &str) -> Option<&'a str> {
    c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(flag)?.strip_prefix('='))
}

/// Seconds of a Go-style duration made of whole seconds or minutes (`20s`, `1m`).
fn seconds(d: &str) -> u64 {
    if let Some(n) = d.strip_suffix('s') {
        n.parse().expect("seconds")
    } else if let Some(n) = d.strip_suffix('m') {
        n.parse::<u64>().expect("minutes") * 60
    } else {
        panic!("unsupported duration {d}")
    }
}

/// The labels a selector's matchLabels (or a Service's plain selector) require, all present on `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let wanted = selector.get("matchLabels").unwrap_or(selector);
    let wanted = wanted.as_object().expect("selector labels");
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn apiservice_matches_the_server_constants_and_service() {
    let Some(objs) = render_repo("deploy/base") else {
        return;
    };
    let apisvc = find(&objs, "APIService", APISERVICE_NAME);
    let spec = &apisvc["spec"];
    assert_eq!(spec["group"], GROUP);
    assert_eq!(spec["version"], VERSION);
    assert_eq!(APISERVICE_NAME, format!("{VERSION}.{GROUP}"));
    // CRD groups register at 1000; at >= 1000 `kubectl get pipelineruns` would resolve to us.
    let gpm = spec["groupPriorityMinimum"]
        .as_u64()
        .expect("groupPriorityMinimum");
    assert!(
        (1..1000).contains(&gpm),
        "groupPriorityMinimum {gpm} must be in 1..1000"
    );
    assert!(spec["versionPriority"].as_u64().expect("versionPriority") > 0);
    assert_ne!(spec["insecureSkipTLSVerify"], true);

    // The service reference resolves: Service → pods of the Deployment → container port.
    let svc_ref = &spec["service"];
    assert_eq!(
        format!(
            "{}.{}.svc",
            s(&svc_ref["name"], "name"),
            s(&svc_ref["namespace"], "ns")
        ),
        SERVICE_DNS
    );
    let svc = find(&objs, "Service", s(&svc_ref["name"], "service name"));
    assert_eq!(svc["metadata"]["namespace"], svc_ref["namespace"]);
    let port = svc["spec"]["ports"]
        .as_array()
        .expect("service ports")
        .iter()
        .find(|p| p["port"] == svc_ref["port"])
        .expect("the Service exposes the APIService's port");
    assert_eq!(svc_ref["port"], 443);
    assert_eq!(container_port(container(&objs), &port["targetPort"]), 8443);
    let pod_labels = &deployment(&objs)["spec"]["template"]["metadata"]["labels"];
    assert!(
        selects(&svc["spec"]["selector"], pod_labels),
        "Service selects the server pods"
    );
    assert_eq!(
        deployment(&objs)["metadata"]["namespace"],
        svc_ref["namespace"]
    );
}

#[test]
fn the_apiservice_file_is_the_one_deployed() {
    let Some(alone) = render_repo("apiservice") else {
        return;
    };
    let Some(base) = render_repo("deploy/base") else {
        return;
    };
    let mut a = find(&alone, "APIService", APISERVICE_NAME).clone();
    let mut b = find(&base, "APIService", APISERVICE_NAME).clone();
    // The base only adds its part-of label.
    for o in [&mut a, &mut b] {
        o["metadata"]["labels"]
            .as_object_mut()
            .expect("labels")
            .remove("app.kubernetes.io/part-of");
    }
    assert_eq!(a, b);
}

/// Whether the rendered server archives step logs: `--archive-logs=…` if given, else
/// `TEKTON_RETRY_ARCHIVE_LOGS`, else the default (true), as clap reads them.
fn archives_logs(c: &Value) -> bool {
    let env = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "TEKTON_RETRY_ARCHIVE_LOGS")
        .map(|e| s(&e["value"], "TEKTON_RETRY_ARCHIVE_LOGS value"));
    arg(c, "--archive-logs")
        .or(env)
        .is_none_or(|v| v != "false")
}

#[test]
fn server_clusterrole_is_exactly_the_calls_the_code_makes() {
    let Some(installs) = deploy_support::render_user_installs() else {
        return;
    };
    let mut without_logs = 0;
    for (install, objs) in &installs {
        let archive = archives_logs(container(objs));
        if install.contains("no-log-archive") {
            assert!(
                !archive,
                "{install} runs the server with --archive-logs=false"
            );
            without_logs += 1;
        }
        let role = find(objs, "ClusterRole", "tekton-retry-server");
        let granted = rule_perms(role);
        let used: BTreeSet<Perm> = server_api_calls(archive)
            .flat_map(|c| {
                c.verbs
                    .iter()
                    .map(move |v| (c.group.to_owned(), c.resource.to_owned(), (*v).to_owned()))
            })
            .collect();
        let missing: Vec<_> = used.difference(&granted).collect();
        let extra: Vec<_> = granted.difference(&used).collect();
        assert!(
            missing.is_empty(),
            "{install}: the server calls these but the ClusterRole lacks them: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "{install}: the ClusterRole grants these but the server never calls them: {extra:?}"
        );
        assert_eq!(
            role["rules"].as_array().expect("rules").len(),
            server_api_calls(archive).count(),
            "{install}: one rule per SERVER_API_CALLS entry"
        );
        assert_eq!(
            granted
                .iter()
                .any(|(g, r, _)| g.is_empty() && r == "pods/log"),
            archive,
            "{install}: pods/log exactly when logs are archived"
        );

        // Bound to the ServiceAccount the pods run as, cluster-wide.
        let binding = all(objs, "ClusterRoleBinding")
            .into_iter()
            .find(|b| {
                b["roleRef"]["kind"] == "ClusterRole"
                    && b["roleRef"]["name"] == "tekton-retry-server"
            })
            .expect("a ClusterRoleBinding to tekton-retry-server");
        assert!(binds_server_sa(binding));
        assert_eq!(
            deployment(objs)["spec"]["template"]["spec"]["serviceAccountName"],
            SERVER_SA
        );
        find(objs, "ServiceAccount", SERVER_SA);
    }
    assert_eq!(without_logs, 2, "the overlay and the combined component");
    assert_eq!(
        SERVER_API_CALLS.len(),
        server_api_calls(false).count() + 1,
        "only pods/log depends on --archive-logs"
    );
}

#[test]
fn server_may_delegate_authentication_and_authorization() {
    let Some(objs) = render_repo("deploy/base") else {
        return;
    };
    let delegator = all(&objs, "ClusterRoleBinding")
        .into_iter()
        .find(|b| {
            b["roleRef"]["kind"] == "ClusterRole" && b["roleRef"]["name"] == "system:auth-delegator"
        })
        .expect("a ClusterRoleBinding to system:auth-delegator");
    assert!(binds_server_sa(delegator));
    let reader = all(&objs, "RoleBinding")
        .into_iter()
        .find(|b| {
            b["roleRef"]["kind"] == "Role"
                && b["roleRef"]["name"] == "extension-apiserver-authentication-reader"
        })
        .expect("a RoleBinding to extension-apiserver-authentication-reader");
    assert_eq!(reader["metadata"]["namespace"], "kube-system");
    assert!(binds_server_sa(reader));
}

#[test]
fn server_role_in_its_own_namespace_is_exactly_the_calls_the_code_makes_there() {
    let Some(objs) = render_repo("deploy/base") else {
        return;
    };
    let role = find(&objs, "Role", "tekton-retry-server");
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    let granted = rule_perms(role);
    let used: BTreeSet<Perm> = OWN_NAMESPACE_CALLS
        .iter()
        .flat_map(|c| {
            c.verbs
                .iter()
                .map(move |v| (c.group.to_owned(), c.resource.to_owned(), (*v).to_owned()))
        })
        .collect();
    assert_eq!(granted, used);
    let binding = all(&objs, "RoleBinding")
        .into_iter()
        .find(|b| b["roleRef"]["kind"] == "Role" && b["roleRef"]["name"] == "tekton-retry-server")
        .expect("a RoleBinding to tekton-retry-server");
    assert_eq!(binding["metadata"]["namespace"], NAMESPACE);
    assert!(binds_server_sa(binding));
    // ConfigMaps are the records' only: never granted cluster-wide, so the server cannot read or
    // write a tenant's (or kube-system's) ConfigMaps.
    let cluster_role = find(&objs, "ClusterRole", "tekton-retry-server");
    assert!(
        !rule_perms(cluster_role)
            .iter()
            .any(|(g, r, _)| g.is_empty() && r == "configmaps"),
        "no cluster-wide ConfigMap rights"
    );
}

#[test]
fn server_service_account_has_no_other_bindings() {
    let Some(installs) = deploy_support::render_user_installs() else {
        return;
    };
    for (install, objs) in &installs {
        service_account_bindings_are(install, objs);
    }
    let with_files: Vec<_> = installs
        .iter()
        .filter(|(_, objs)| arg(container(objs), "--tls-cert-file").is_some())
        .collect();
    assert_eq!(
        with_files.len(),
        3,
        "cert-manager, self-signed and the combined install serve certificate files"
    );
    for (install, objs) in with_files {
        for (kind, name) in [
            ("Role", "tekton-retry-certificate"),
            ("ClusterRole", "tekton-retry-apiservice"),
        ] {
            assert!(
                all(objs, kind)
                    .iter()
                    .all(|r| r["metadata"]["name"] != name),
                "{install}: no {kind} {name} without a self-managed certificate"
            );
        }
    }
}

/// The server's ServiceAccount is bound to exactly the roles it needs in `objs`: the rights of
/// the self-managed certificate only where it makes one (no `--tls-cert-file`).
fn service_account_bindings_are(install: &str, objs: &[Value]) {
    let mut allowed = vec![
        ("ClusterRole", "tekton-retry-server"),
        ("ClusterRole", "system:auth-delegator"),
        ("Role", "extension-apiserver-authentication-reader"),
        ("Role", "tekton-retry-server"),
    ];
    if arg(container(objs), "--tls-cert-file").is_none() {
        allowed.extend([
            ("Role", "tekton-retry-certificate"),
            ("ClusterRole", "tekton-retry-apiservice"),
        ]);
    }
    let mut bound: Vec<(String, String)> = ["ClusterRoleBinding", "RoleBinding"]
        .into_iter()
        .flat_map(|k| all(objs, k))
        .filter(|b| binds_server_sa(b))
        .map(|b| {
            (
                s(&b["roleRef"]["kind"], "roleRef.kind").to_owned(),
                s(&b["roleRef"]["name"], "roleRef.name").to_owned(),
            )
        })
        .collect();
    bound.sort();
    let mut want: Vec<(String, String)> = allowed
        .iter()
        .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
        .collect();
    want.sort();
    assert_eq!(bound, want, "{install}");
}

#[test]
fn namespaced_objects_live_in_the_tekton_retry_namespace() {
    let Some(objs) = render_repo("deploy/base") else {
        return;
    };
    find(&objs, "Namespace", NAMESPACE);
    let cluster_scoped = [
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "APIService",
    ];
    for o in &objs {
        let kind = s(&o["kind"], "kind");
        let ns = o["metadata"].get("namespace").and_then(Value::as_str);
        if cluster_scoped.contains(&kind) {
            assert_eq!(ns, None, "{kind} is cluster-scoped");
        } else if kind == "RoleBinding"
            && o["roleRef"]["kind"] == "Role"
            && o["roleRef"]["name"] == "extension-apiserver-authentication-reader"
        {
            assert_eq!(
                ns,
                Some("kube-system"),
                "the authentication reader is in kube-system"
            );
        } else {
            assert_eq!(ns, Some(NAMESPACE), "{kind} {}", o["metadata"]["name"]);
        }
    }
}

#[test]
fn deployment_is_probed_on_real_endpoints_and_locked_down() {
    let Some(objs) = render_repo("deploy/base") else {
        return;
    };
    let dep = deployment(&objs);
    assert_eq!(dep["spec"]["replicas"], 2);
    let pod = &dep["spec"]["template"]["spec"];
    let c = container(&objs);
    assert_eq!(c["args"][0], "serve");

    // The server implements /readyz and /livez over HTTPS on its secure port.
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/livez")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["scheme"], "HTTPS", "{probe}");
        assert_eq!(container_port(c, &get["port"]), 8443, "{probe}");
    }

    // Non-root, read-only, no privileges; the container's settings win over the pod's.
    let csc = &c["securityContext"];
    let psc = &pod["securityContext"];
    let field = |k: &str| {
        csc.get(k)
            .or_else(|| psc.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(field("runAsNonRoot"), true);
    assert!(
        field("runAsUser").as_u64().is_some_and(|u| u != 0),
        "runAsUser is not root"
    );
    assert_eq!(csc["readOnlyRootFilesystem"], true);
    assert_eq!(csc["allowPrivilegeEscalation"], false);
    assert_eq!(csc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(field("seccompProfile")["type"], "RuntimeDefault");

    for kind in ["requests", "limits"] {
        assert!(c["resources"][kind]["memory"].is_string(), "memory {kind}");
    }
    assert!(c["resources"]["requests"]["cpu"].is_string(), "cpu request");

    let spread = pod["topologySpreadConstraints"]
        .as_array()
        .expect("topologySpreadConstraints");
    assert!(spread
        .iter()
        .any(|t| t["topologyKey"] == "kubernetes.io/hostname"
            && selects(
                &t["labelSelector"],
                &dep["spec"]["template"]["metadata"]["labels"]
            )));

    // The kubelet must wait longer than the server keeps answering and then drains.
    let grace = seconds(arg(c, "--shutdown-grace-period").expect("--shutdown-grace-period"));
    let delay = seconds(arg(c, "--shutdown-delay").unwrap_or("5s"));
    let termination = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        termination > delay + grace,
        "terminationGracePeriodSeconds {termination} <= server delay {delay} + grace {grace}"
    );

    // No certificate files: the server makes its own certificate, in the namespace the pod runs
    // in (the downward API), which is where the certificate Role grants its Secret.
    assert!(arg(c, "--tls-cert-file").is_none());
    assert!(c.get("volumeMounts").is_none() && pod.get("volumes").is_none());
    let env = c["env"].as_array().expect("env");
    let ns_env = env
        .iter()
        .find(|e| e["name"] == "TEKTON_RETRY_NAMESPACE")
        .expect("TEKTON_RETRY_NAMESPACE");
    assert_eq!(
        ns_env["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );

    let pdb = find(&objs, "PodDisruptionBudget", "tekton-retry");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert!(selects(
        &pdb["spec"]["selector"],
        &dep["spec"]["template"]["metadata"]["labels"]
    ));

    // Ingress to the server pods: TCP 8443 only.
    let np = find(&objs, "NetworkPolicy", "tekton-retry");
    assert!(selects(
        &np["spec"]["podSelector"],
        &dep["spec"]["template"]["metadata"]["labels"]
    ));
    assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
    let rules = np["spec"]["ingress"].as_array().expect("ingress rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0]["ports"],
        serde_json::json!([{"protocol": "TCP", "port": 8443}])
    );
}

#[test]
fn edit_role_grants_only_retry_and_aggregates_into_admin_and_edit() {
    let Some(objs) = render_repo("deploy/base") else {
        return;
    };
    let edit = find(&objs, "ClusterRole", "tekton-retry-edit");
    assert_aggregates_into(edit, &["admin", "edit"]);
    assert_grants_only(edit, SUBRESOURCE, "create");
    // Reading the history is granted with `view` (and so `edit` and `admin`) of the namespace.
    let view = find(&objs, "ClusterRole", "tekton-retry-view");
    assert_aggregates_into(view, &["admin", "edit", "view"]);
    assert_grants_only(view, "history", "get");
}

/// The ClusterRole `role` is aggregated into each of the built-in roles `into`.
fn assert_aggregates_into(role: &Value, into: &[&str]) {
    let labels = &role["metadata"]["labels"];
    for aggregate in into {
        assert_eq!(
            labels[format!("rbac.authorization.k8s.io/aggregate-to-{aggregate}")],
            "true",
            "{role:#}"
        );
    }
}

/// The ClusterRole `role` grants exactly `verb` on `pipelineruns/<subresource>` of the group.
fn assert_grants_only(role: &Value, subresource: &str, verb: &str) {
    let want: BTreeSet<Perm> = [(
        GROUP.to_owned(),
        format!("{RESOURCE}/{subresource}"),
        verb.to_owned(),
    )]
    .into();
    assert_eq!(rule_perms(role), want);
}

#[test]
fn cert_manager_overlay_injects_the_ca_of_the_serving_certificate() {
    let Some(objs) = render_repo("deploy/overlays/cert-manager") else {
        return;
    };
    let apisvc = find(&objs, "APIService", APISERVICE_NAME);
    let inject = s(
        &apisvc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "inject-ca-from",
    );
    let (ns, name) = inject
        .split_once('/')
        .expect("inject-ca-from is namespace/name");
    assert_eq!(ns, NAMESPACE);
    let serving = find(&objs, "Certificate", name);
    assert_eq!(serving["metadata"]["namespace"], NAMESPACE);
    // The Secret the pods mount, valid for the name kube-apiserver dials, for serving.
    let secret = serving["spec"]["secretName"].as_str().expect("secretName");
    assert!(mounted_secrets(&objs).contains(&secret), "{secret}");
    let dns: Vec<&str> = serving["spec"]["dnsNames"]
        .as_array()
        .expect("dnsNames")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(dns.contains(&SERVICE_DNS), "dnsNames {dns:?}");
    assert!(serving["spec"]["usages"]
        .as_array()
        .expect("usages")
        .contains(&"server auth".into()));
    // Issued by a CA Issuer whose CA is a cert-manager Certificate (not the self-signed Issuer
    // directly: then ca.crt would be the serving certificate itself and rotate with it).
    let issuer = find(
        &objs,
        "Issuer",
        s(&serving["spec"]["issuerRef"]["name"], "issuerRef"),
    );
    let ca_secret = &issuer["spec"]["ca"]["secretName"];
    let ca = all(&objs, "Certificate")
        .into_iter()
        .find(|c| &c["spec"]["secretName"] == ca_secret)
        .expect("a Certificate makes the CA Issuer's secret");
    assert_eq!(ca["spec"]["isCA"], true);
    let root = find(
        &objs,
        "Issuer",
        s(&ca["spec"]["issuerRef"]["name"], "CA issuerRef"),
    );
    assert!(root["spec"]["selfSigned"].is_object());
    // The self-signed path's placeholder must not leak in.
    assert!(apisvc["spec"].get("caBundle").is_none());
}

#[test]
fn self_signed_template_renders_and_refuses_to_apply_unfilled() {
    let Some(objs) = render_repo("deploy/overlays/self-signed") else {
        return;
    };
    let apisvc = find(&objs, "APIService", APISERVICE_NAME);
    let placeholder = s(&apisvc["spec"]["caBundle"], "caBundle");
    // kube-apiserver decodes caBundle as base64: the placeholder must fail there.
    assert!(base64::engine::general_purpose::STANDARD
        .decode(placeholder)
        .is_err());
    assert!(
        all(&objs, "Secret").is_empty(),
        "the template carries no key material"
    );
}

/// x509-parser view of the first certificate in a PEM file, kept with its DER bytes.
fn read_pem(path: &Path) -> x509_parser::pem::Pem {
    let bytes = std::fs::read(path).expect("read PEM");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).expect("PEM");
    pem
}

#[test]
fn gen_certs_produces_a_verifying_chain_for_the_service_name() {
    let Some((_tmp, out)) = generated() else {
        return;
    };
    let ca_pem = read_pem(&out.join("ca.crt"));
    let ca = ca_pem.parse_x509().expect("ca.crt parses");
    let leaf_pem = read_pem(&out.join("tls.crt"));
    let leaf = leaf_pem.parse_x509().expect("tls.crt parses");

    assert!(
        ca.basic_constraints()
            .expect("bc")
            .expect("CA has basicConstraints")
            .value
            .ca
    );
    assert!(
        !leaf
            .basic_constraints()
            .expect("bc")
            .is_some_and(|b| b.value.ca),
        "leaf is not a CA"
    );
    assert!(
        leaf.extended_key_usage()
            .expect("eku")
            .expect("leaf has EKU")
            .value
            .server_auth
    );
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .expect("san")
        .expect("leaf has SANs")
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    for want in [
        "tekton-retry",
        "tekton-retry.tekton-retry",
        SERVICE_DNS,
        "tekton-retry.tekton-retry.svc.cluster.local",
    ] {
        assert!(
            sans.iter().any(|n| n == want),
            "SAN {want} missing from {sans:?}"
        );
    }
    assert_eq!(leaf.issuer(), ca.subject());
    leaf.verify_signature(Some(ca.public_key()))
        .expect("tls.crt is signed by ca.crt");
    ca.verify_signature(None).expect("ca.crt is self-signed");
    let days =
        (leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp()) / 86_400;
    assert!(
        (364..=366).contains(&days),
        "serving certificate valid {days} days, want one year"
    );
}

#[test]
fn gen_certs_overlay_installs_its_secret_and_ca_bundle() {
    let Some((_tmp, out)) = generated() else {
        return;
    };
    let Some(kubectl) = deploy_support::kubectl() else {
        return;
    };
    let objs = deploy_support::render(&kubectl, &out);
    let b64 = base64::engine::general_purpose::STANDARD;
    let read = |f: &str| std::fs::read(out.join(f)).expect("generated file");

    let apisvc = find(&objs, "APIService", APISERVICE_NAME);
    let bundle = b64
        .decode(s(&apisvc["spec"]["caBundle"], "caBundle"))
        .expect("caBundle is base64");
    assert_eq!(bundle, read("ca.crt"));

    let secret = find(&objs, "Secret", "tekton-retry-tls");
    assert_eq!(secret["metadata"]["namespace"], NAMESPACE);
    assert_eq!(secret["type"], "kubernetes.io/tls");
    for f in ["tls.crt", "tls.key", "ca.crt"] {
        let data = b64
            .decode(s(&secret["data"][f], f))
            .expect("secret data is base64");
        assert_eq!(data, read(f), "{f}");
    }
    assert!(
        secret["data"].get("ca.key").is_none(),
        "the CA key stays out of the cluster"
    );
    assert!(mounted_secrets(&objs).contains(&"tekton-retry-tls"));
}

#[test]
fn gen_certs_keeps_valid_certificates_and_force_replaces_them() {
    let Some((_tmp, out)) = generated() else {
        return;
    };
    let snapshot = || {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&out)
            .expect("read out dir")
            .map(|e| {
                let e = e.expect("dir entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect();
        files.sort();
        files
    };
    let first = snapshot();
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ca.crt",
            "ca.key",
            "caBundle-patch.yaml",
            "kustomization.yaml",
            "secret.yaml",
            "tls.crt",
            "tls.key"
        ]
    );
    deploy_support::gen_certs(&out, &[]);
    assert_eq!(snapshot(), first, "a second run changes nothing");
    deploy_support::gen_certs(&out, &["--force"]);
    let forced = snapshot();
    for f in [
        "ca.crt",
        "ca.key",
        "tls.crt",
        "tls.key",
        "secret.yaml",
        "caBundle-patch.yaml",
    ] {
        let get = |s: &[(String, Vec<u8>)]| s.iter().find(|(n, _)| n == f).expect("file").1.clone();
        assert_ne!(get(&forced), get(&first), "--force replaces {f}");
    }
}

#[tokio::test]
async fn tls_handshake_verifies_against_the_generated_ca() {
    let Some((_tmp, out)) = generated() else {
        return;
    };
    let server =
        deploy_support::tls::start_server(&out.join("tls.crt"), &out.join("tls.key")).await;
    let addr = server.addr();
    let ca = out.join("ca.crt");
    let response = deploy_support::tls::get_over_tls(addr, &ca, SERVICE_DNS, "/livez")
        .await
        .expect("handshake as kube-apiserver makes it succeeds");
    assert!(response.starts_with("HTTP/1.1 200"), "response: {response}");

    // The client really verifies: a name not in the certificate, or another CA, is refused.
    let wrong_name =
        deploy_support::tls::get_over_tls(addr, &ca, "tekton-retry.default.svc", "/livez").await;
    assert!(
        wrong_name.is_err(),
        "a name outside the SANs must fail: {wrong_name:?}"
    );
    let Some((_tmp2, other)) = generated() else {
        return;
    };
    let wrong_ca =
        deploy_support::tls::get_over_tls(addr, &other.join("ca.crt"), SERVICE_DNS, "/livez").await;
    assert!(wrong_ca.is_err(), "another CA must fail: {wrong_ca:?}");
}

/// (group, resource, verb, names) of every rule of a Role or ClusterRole.
fn scoped_perms(role: &Value) -> BTreeSet<(String, String, String, Vec<String>)> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let mut names: Vec<String> = rule
            .get("resourceNames")
            .and_then(Value::as_array)
            .map(|n| n.iter().map(|v| s(v, "name").to_owned()).collect())
            .unwrap_or_default();
        names.sort();
        out.extend(
            grants(rule)
                .into_iter()
                .map(|(g, r, v)| (g, r, v, names.clone())),
        );
    }
    out
}

#[test]
fn certificate_rbac_is_exactly_what_the_self_managed_certificate_calls() {
    use tekton_retry::rbac::CERT_API_CALLS;
    let Some(objs) = render_repo("deploy/base") else {
        return;
    };
    let want = |namespaced: bool| -> BTreeSet<(String, String, String, Vec<String>)> {
        CERT_API_CALLS
            .iter()
            .filter(|c| c.namespaced == namespaced)
            .flat_map(|c| {
                let mut names: Vec<String> = c.names.iter().map(|n| (*n).to_owned()).collect();
                names.sort();
                c.verbs.iter().map(move |v| {
                    (
                        c.group.to_owned(),
                        c.resource.to_owned(),
                        (*v).to_owned(),
                        names.clone(),
                    )
                })
            })
            .collect()
    };
    let role = find(&objs, "Role", "tekton-retry-certificate");
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    assert_eq!(scoped_perms(role), want(true));
    let cluster = find(&objs, "ClusterRole", "tekton-retry-apiservice");
    assert_eq!(scoped_perms(cluster), want(false));
    // Only the one Secret and the one APIService may be read or changed.
    for (g, r, v, names) in scoped_perms(role).into_iter().chain(scoped_perms(cluster)) {
        assert!(
            v == "create" || !names.is_empty(),
            "{v} on {g}/{r} must be limited by resourceNames"
        );
    }
    assert!(scoped_perms(cluster)
        .iter()
        .all(|(_, _, _, n)| n == &vec![APISERVICE_NAME.to_owned()]));
    for (kind, name) in [
        ("RoleBinding", "tekton-retry-certificate"),
        ("ClusterRoleBinding", "tekton-retry-apiservice"),
    ] {
        let b = find(&objs, kind, name);
        assert!(binds_server_sa(b), "{kind} {name} binds the server");
        assert_eq!(b["roleRef"]["name"], name);
    }
    // The Secret the Role names is the one serve uses by default.
    assert!(scoped_perms(role).iter().any(
        |(_, r, _, n)| r == "secrets" && n == &vec![tekton_retry::rbac::CERT_SECRET.to_owned()]
    ));
}

#[test]
fn certificate_file_overlays_mount_the_secret_they_make() {
    for overlay in [
        "deploy/overlays/cert-manager",
        "deploy/overlays/self-signed",
    ] {
        let Some(objs) = render_repo(overlay) else {
            return;
        };
        let c = container(&objs);
        let pod = &deployment(&objs)["spec"]["template"]["spec"];
        let cert = arg(c, "--tls-cert-file").expect("--tls-cert-file");
        let key = arg(c, "--tls-private-key-file").expect("--tls-private-key-file");
        let mount = c["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .find(|m| cert.starts_with(s(&m["mountPath"], "mountPath")))
            .expect("the certificate is under a mounted volume");
        assert!(Path::new(key).starts_with(s(&mount["mountPath"], "mountPath")));
        let volume = pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("the mounted volume");
        assert_eq!(
            volume["secret"]["secretName"], "tekton-retry-tls",
            "{overlay}"
        );
        // The rest of the arguments are the base's.
        for flag in ["--log-format", "--shutdown-grace-period"] {
            assert!(arg(c, flag).is_some(), "{overlay} keeps {flag}");
        }
    }
}

fn parse_docs(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn release_yaml_is_the_rendered_base() {
    let Some(kubectl) = deploy_support::kubectl() else {
        return;
    };
    let committed =
        std::fs::read_to_string(deploy_support::repo().join("release.yaml")).expect("release.yaml");
    let rendered = deploy_support::render(&kubectl, &deploy_support::repo().join("deploy/base"));
    assert_eq!(
        parse_docs(&committed),
        rendered,
        "release.yaml is stale: run hack/release.sh"
    );
    // The one-file install is complete: the APIService, the server and what it needs to make
    // its certificate, with no cert-manager object and no key material.
    let objs = parse_docs(&committed);
    find(&objs, "APIService", APISERVICE_NAME);
    find(&objs, "Deployment", "tekton-retry");
    find(&objs, "Role", "tekton-retry-certificate");
    assert!(objs
        .iter()
        .all(|o| !s(&o["apiVersion"], "apiVersion").starts_with("cert-manager.io")));
    assert!(all(&objs, "Secret").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_yaml_passes_kubectl_apply_dry_run() {
    let Some(kubectl) = deploy_support::kubectl() else {
        return;
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emu = tekton_retry_sandbox::emulator::Emulator::start(Default::default())
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        emu.kubeconfig_yaml("admin").expect("kubeconfig"),
    )
    .expect("write");
    let release = deploy_support::repo().join("release.yaml");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(&kubectl)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .arg(format!(
                "--cache-dir={}",
                dir.path().join("cache").display()
            ))
            .args(["apply", "--dry-run=client", "-f"])
            .arg(&release)
            .args(extra)
            .env("HOME", dir.path())
            .output()
            .expect("run kubectl");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // kubectl maps every object through the API server's discovery (the sandbox's emulator here,
    // which does not serve OpenAPI schemas for built-in kinds, so schema validation is off).
    // (Blocking one runtime worker; the emulator answers on the other.)
    let (ok, stdout, stderr) = run(&["--validate=false"]);
    assert!(ok, "kubectl apply --dry-run=client failed: {stderr}");
    for line in [
        "apiservice.apiregistration.k8s.io/v1alpha1.retry.tekton.dev created (dry run)",
        "deployment.apps/tekton-retry created (dry run)",
        "role.rbac.authorization.k8s.io/tekton-retry-certificate created (dry run)",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(
        !emu.store().exists(
            &tekton_retry_sandbox::emulator::Gvr::apiservices(),
            "",
            APISERVICE_NAME
        ),
        "a dry run creates nothing"
    );
    emu.shutdown();
}

//! Discovery, tables, authentication, the policy (403 messages, SubjectAccessReview,
//! SelfSubjectAccessReview, TokenReview) and fault injection, through the real kube-rs client.

use crate::running_emulator::*;
use tekton_retry_test_support::emulator as emulator_support;

use std::time::Duration;

use emulator_support::*;
use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReview};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::{json, Value};
use tekton_retry::api::UserInfo;
use tekton_retry_sandbox::faults::{FaultAction, FaultRule, Trigger};
use tekton_retry_sandbox::policy::{Rule, Subject};

#[tokio::test]
async fn discovery_legacy_and_aggregated_parse_into_real_types() {
    let emu = started().await;
    let c = client(&emu, "viewer");
    let groups: APIGroupList = c.list_api_groups().await.expect("groups");
    let tekton = groups
        .groups
        .iter()
        .find(|g| g.name == "tekton.dev")
        .expect("tekton.dev");
    assert_eq!(
        tekton
            .preferred_version
            .as_ref()
            .map(|v| v.version.as_str()),
        Some("v1")
    );
    assert!(tekton.versions.iter().any(|v| v.version == "v1beta1"));
    let rl: APIResourceList = c
        .list_api_group_resources("tekton.dev/v1")
        .await
        .expect("resources");
    let names: Vec<&str> = rl.resources.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"pipelineruns") && names.contains(&"pipelineruns/status"),
        "{names:?}"
    );
    let core = c.list_core_api_resources("v1").await.expect("core");
    assert!(core.resources.iter().any(|r| r.name == "pods/log"));

    for d in [
        Discovery::new(c.clone())
            .run()
            .await
            .expect("legacy discovery"),
        Discovery::new(c.clone())
            .run_aggregated()
            .await
            .expect("aggregated discovery"),
    ] {
        let (ar, caps) = d
            .groups()
            .find(|g| g.name() == "tekton.dev")
            .and_then(|g| {
                g.recommended_resources()
                    .into_iter()
                    .find(|(r, _)| r.plural == "pipelineruns")
            })
            .expect("pipelineruns discovered");
        assert_eq!(ar.kind, "PipelineRun");
        assert_eq!(caps.scope, Scope::Namespaced);
        assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
        assert!(d.has_group("coordination.k8s.io"));
    }
    let v = c.apiserver_version().await.expect("version");
    assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "36"));
}

#[tokio::test]
async fn table_output_has_tekton_columns() {
    let (emu, c) = with_admin().await;
    let mut body = pipelinerun("x");
    body["status"] = json!({"startTime": "2026-01-01T00:00:00Z",
        "conditions": [{"type": "Succeeded", "status": "False", "reason": "Failed"}]});
    emu.store()
        .create(&tekton_retry_sandbox::emulator::Gvr::pipelineruns(), body)
        .expect("seed");
    let req = http::Request::get("/apis/tekton.dev/v1/namespaces/demo/pipelineruns")
        .header(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .expect("request");
    let t: Value = c.request(req).await.expect("table");
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = names_in(&t["columnDefinitions"]);
    assert_eq!(
        cols,
        ["Name", "Succeeded", "Reason", "StartTime", "CompletionTime"]
    );
    assert_eq!(t["rows"][0]["cells"][0], "x");
    assert_eq!(t["rows"][0]["cells"][1], "False");
    assert_eq!(t["rows"][0]["cells"][2], "Failed");
    assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "x");
}

#[tokio::test]
async fn forbidden_messages_match_kube_apiserver() {
    let (emu, admin) = with_admin().await;
    create_pipelinerun(&prs(&admin, "demo"), "x").await;
    let viewer = client(&emu, "viewer");
    prs(&viewer, "demo").get("x").await.expect("viewer reads");
    let e = api_error(
        prs(&viewer, "demo")
            .delete("x", &DeleteParams::default())
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        r#"pipelineruns.tekton.dev "x" is forbidden: User "viewer" cannot delete resource "pipelineruns" in API group "tekton.dev" in the namespace "demo""#
    );
    let cms: Api<ConfigMap> = Api::namespaced(viewer.clone(), "demo");
    let cm = serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("cm");
    let e = api_error(cms.create(&PostParams::default(), &cm).await);
    assert_eq!(
        e.message,
        r#"configmaps is forbidden: User "viewer" cannot create resource "configmaps" in API group "" in the namespace "demo""#
    );
    // The retry server's service account: its list, nothing more.
    let sa = kube::Client::try_from(emu.server_kube_config().expect("cfg")).expect("client");
    prs(&sa, "demo")
        .get("x")
        .await
        .expect("server may get pipelineruns");
    let e = api_error(cms_of(&sa).list(&ListParams::default()).await);
    assert_eq!(e.code, 403);
}

fn cms_of(c: &kube::Client) -> Api<ConfigMap> {
    Api::namespaced(c.clone(), "demo")
}

#[tokio::test]
async fn bearer_tokens_and_token_review() {
    let emu = started().await;
    let sa = kube::Client::try_from(emu.kube_config_token(emu.server_token()).expect("cfg"))
        .expect("client");
    prs(&sa, "demo")
        .list(&ListParams::default())
        .await
        .expect("token user may list pipelineruns");
    let bogus =
        kube::Client::try_from(emu.kube_config_token("nope").expect("cfg")).expect("client");
    let e = api_error(prs(&bogus, "demo").list(&ListParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));

    emu.policy()
        .add_token("alice-token", UserInfo::new("alice", &["dev"]));
    let reviews: Api<TokenReview> = Api::all(sa.clone());
    let tr: TokenReview =
        serde_json::from_value(json!({"spec": {"token": "alice-token"}})).expect("tr");
    let out = reviews
        .create(&PostParams::default(), &tr)
        .await
        .expect("token review");
    let st = out.status.expect("status");
    assert_eq!(st.authenticated, Some(true));
    let user = st.user.expect("user");
    assert_eq!(user.username.as_deref(), Some("alice"));
    assert_eq!(
        user.groups.expect("groups"),
        ["dev", "system:authenticated"]
    );
    let tr: TokenReview = serde_json::from_value(json!({"spec": {"token": "nope"}})).expect("tr");
    let out = reviews
        .create(&PostParams::default(), &tr)
        .await
        .expect("token review");
    assert_ne!(out.status.and_then(|s| s.authenticated), Some(true));
}

/// Whether the access review `K` (`SelfSubjectAccessReview` or `SubjectAccessReview`) with `spec`,
/// sent by `client`, is allowed.
async fn review_allowed<K>(client: kube::Client, spec: Value) -> bool
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let body: K = serde_json::from_value(json!({"spec": spec})).expect("review");
    let out = Api::<K>::all(client)
        .create(&PostParams::default(), &body)
        .await
        .expect("review");
    serde_json::to_value(&out).expect("json")["status"]["allowed"]
        .as_bool()
        .expect("status.allowed")
}

#[tokio::test]
async fn subject_access_reviews_answer_from_the_policy() {
    let emu = started().await;
    let retry_attrs = json!({"namespace": "demo", "verb": "create", "group": "retry.tekton.dev",
        "resource": "pipelineruns", "subresource": "retry", "name": "x"});
    let ssar = |user: &str| {
        let spec = json!({"resourceAttributes": retry_attrs.clone()});
        review_allowed::<SelfSubjectAccessReview>(client(&emu, user), spec)
    };
    assert!(ssar("admin").await);
    assert!(!ssar("viewer").await);
    // A user added at runtime with a rule for the subresource only in one namespace.
    emu.add_user("alice", &["dev"]);
    emu.policy().bind(
        Subject::Group("dev".into()),
        "retry-in-demo",
        vec![
            Rule::resources(&["retry.tekton.dev"], &["pipelineruns/retry"], &["create"])
                .in_namespaces(&["demo"]),
        ],
    );
    assert!(ssar("alice").await);
    // SubjectAccessReview as the retry server asks it (delegated authorization).
    let sa = kube::Client::try_from(emu.server_kube_config().expect("cfg")).expect("client");
    let sar = |user: &str, groups: Vec<&str>, ns: &str| {
        let mut attrs = retry_attrs.clone();
        attrs["namespace"] = json!(ns);
        let spec = json!({"user": user, "groups": groups, "resourceAttributes": attrs});
        review_allowed::<SubjectAccessReview>(sa.clone(), spec)
    };
    assert!(sar("alice", vec!["dev"], "demo").await);
    assert!(!sar("alice", vec!["dev"], "prod").await);
    assert!(!sar("bob", vec![], "demo").await);
    assert!(sar("root", vec!["system:masters"], "prod").await);
    // Non-resource attributes: discovery is open to authenticated users only.
    let spec = json!({"user": "system:kube-aggregator",
        "nonResourceAttributes": {"path": "/apis/retry.tekton.dev/v1alpha1", "verb": "get"}});
    assert!(
        !review_allowed::<SubjectAccessReview>(sa.clone(), spec).await,
        "no groups: the discovery rule does not apply"
    );
}

#[tokio::test]
async fn faults_fail_the_nth_call_and_requests_are_counted() {
    let (emu, c, api) = with_demo_runs().await;
    for n in ["a", "b", "c"] {
        api.create(&PostParams::default(), &dynamic(pipelinerun(n)))
            .await
            .expect("create");
    }
    emu.faults().add(
        FaultRule::new(
            "delete",
            "pipelineruns",
            FaultAction::Error {
                code: 500,
                retry_after: None,
            },
        )
        .trigger(Trigger::Nth(2)),
    );
    api.delete("a", &DeleteParams::default())
        .await
        .expect("first delete passes");
    let e = api_error(api.delete("b", &DeleteParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    assert!(
        api.get_opt("b").await.expect("get").is_some(),
        "a failed call wrote nothing"
    );
    api.delete("b", &DeleteParams::default())
        .await
        .expect("third passes");
    assert_eq!(emu.faults().count("delete", "pipelineruns"), 3);
    assert_eq!(
        emu.faults()
            .count_named("delete", "pipelineruns", "demo", "c"),
        0
    );
    assert_eq!(
        emu.faults()
            .count_named("delete", "pipelineruns", "demo", "b"),
        2
    );

    emu.faults().clear();
    emu.faults().add(
        FaultRule::new(
            "patch",
            "pipelineruns",
            FaultAction::Error {
                code: 409,
                retry_after: None,
            },
        )
        .named("demo", "c"),
    );
    let e = api_error(
        api.patch(
            "c",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await,
    );
    assert!(
        e.message
            .contains(r#"pipelineruns.tekton.dev "c": the object has been modified"#),
        "{}",
        e.message
    );

    emu.faults().clear();
    emu.faults().add(FaultRule::new(
        "get",
        "pipelineruns",
        FaultAction::Error {
            code: 429,
            retry_after: Some(7),
        },
    ));
    let req = http::Request::get("/apis/tekton.dev/v1/namespaces/demo/pipelineruns/c")
        .body(Vec::new())
        .expect("req");
    let resp = c.send(req.map(Into::into)).await.expect("response");
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );

    emu.faults().clear();
    emu.faults()
        .add(FaultRule::new("get", "pipelineruns", FaultAction::Drop));
    assert!(
        !matches!(api.get("c").await, Ok(_) | Err(kube::Error::Api(_))),
        "a dropped connection is a transport error"
    );

    emu.faults().clear();
    emu.faults().add(FaultRule::new(
        "list",
        "pipelineruns",
        FaultAction::Timeout(Duration::from_millis(50)),
    ));
    let e = api_error(api.list(&ListParams::default()).await);
    assert_eq!((e.code, e.reason.as_str()), (504, "Timeout"));

    emu.faults().clear();
    let id = emu.faults().add(
        FaultRule::new(
            "get",
            "pipelineruns",
            FaultAction::Latency(Duration::from_millis(30)),
        )
        .trigger(Trigger::FirstN(1)),
    );
    api.get("c").await.expect("slow but fine");
    api.get("c").await.expect("fine");
    assert_eq!(emu.faults().matched(id), 2);
}

#[tokio::test]
async fn impersonation_is_authorized_like_kube_apiserver() {
    let (emu, admin) = with_admin().await;
    create_pipelinerun(&prs(&admin, "demo"), "x").await;
    let as_user = |user: &str, imp: &str| {
        let mut cfg = emu.kube_config(user).expect("cfg");
        cfg.default_retry = false;
        cfg.auth_info.impersonate = Some(imp.to_string());
        kube::Client::try_from(cfg).expect("client")
    };
    let admin_as_viewer = as_user("admin", "viewer");
    prs(&admin_as_viewer, "demo")
        .get("x")
        .await
        .expect("viewer may read");
    let e = api_error(
        prs(&admin_as_viewer, "demo")
            .delete("x", &DeleteParams::default())
            .await,
    );
    assert!(
        e.message.contains(r#"User "viewer" cannot delete"#),
        "{}",
        e.message
    );
    let viewer_as_admin = as_user("viewer", "admin");
    let e = api_error(prs(&viewer_as_admin, "demo").get("x").await);
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        r#"users "admin" is forbidden: User "viewer" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
}

#[tokio::test]
async fn the_server_may_watch_the_authentication_configmap_by_name_only() {
    let emu = started().await;
    let sa = kube::Client::try_from(emu.server_kube_config().expect("cfg")).expect("client");
    let cms: Api<ConfigMap> = Api::namespaced(sa, "kube-system");
    let lp = ListParams::default().fields("metadata.name=extension-apiserver-authentication");
    let l = cms
        .list(&lp)
        .await
        .expect("list by name is authorized by name");
    assert_eq!(l.items.len(), 1);
    let mut w = cms
        .watch(
            &kube::api::WatchParams::default()
                .fields("metadata.name=extension-apiserver-authentication")
                .timeout(5),
            "0",
        )
        .await
        .expect("watch by name")
        .boxed();
    use futures::{StreamExt, TryStreamExt};
    let ev = tokio::time::timeout(Duration::from_secs(20), w.try_next())
        .await
        .expect("no hang")
        .expect("ok")
        .expect("event");
    assert!(matches!(ev, kube::api::WatchEvent::Added(_)), "{ev:?}");
    let e = api_error(cms.list(&ListParams::default()).await);
    assert_eq!(
        e.code, 403,
        "listing every ConfigMap in kube-system is not granted"
    );
}

#[tokio::test]
async fn kubeconfig_files_load_in_kube_rs() {
    let emu = started().await;
    for yaml in [
        emu.kubeconfig_yaml("viewer").expect("yaml"),
        emu.server_kubeconfig_yaml().expect("yaml"),
    ] {
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("parses");
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("config");
        let c = kube::Client::try_from(cfg).expect("client");
        prs(&c, "demo")
            .list(&ListParams::default())
            .await
            .expect("both may list pipelineruns");
    }
    let req = http::Request::get("/version")
        .body(Vec::new())
        .expect("req");
    let resp = client(&emu, "admin")
        .send(req.map(Into::into))
        .await
        .expect("resp");
    assert!(
        resp.headers().get("audit-id").is_some(),
        "every answer carries an Audit-Id"
    );
}

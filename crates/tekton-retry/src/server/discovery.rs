//! Discovery documents: `/apis` (legacy `APIGroupList`, or aggregated discovery v2
//! `APIGroupDiscoveryList` when the Accept header asks for it), `/apis/retry.tekton.dev`
//! (`APIGroup`) and `/apis/retry.tekton.dev/v1alpha1` (`APIResourceList`).
//!
//! The resource list carries the subresource `pipelineruns/retry` (verbs `[create]`) and its parent
//! `pipelineruns` with no verbs: kubectl's RESTMapper drops a subresource whose parent is not
//! listed (`staging/src/k8s.io/client-go/restmapper/discovery.go`, `NewDiscoveryRESTMapper` skips
//! names with a `/`), so `kubectl auth can-i … --subresource=retry` would answer "no". The parent
//! has no singular name, short names or categories so that it never shadows Tekton's own
//! `pipelineruns` (the APIService's `groupPriorityMinimum` keeps Tekton first, too).

use serde_json::{json, Value};

use crate::api::{
    API_VERSION, GROUP, HISTORY_KIND, HISTORY_SUBRESOURCE, KIND, RESOURCE, SUBRESOURCE, VERSION,
};

/// Content type of an aggregated discovery v2 answer (`staging/src/k8s.io/apiserver/pkg/endpoints/
/// discovery/aggregated/negotiation.go`).
pub const AGGREGATED_V2_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the Accept header prefers the aggregated v2 document: the first acceptable media
/// range wins, in the client's order (client-go sends v2 first, then v2beta1, then plain JSON).
pub fn wants_aggregated(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let essence = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut g = None;
        let mut v = None;
        let mut as_ = None;
        for p in parts {
            if let Some((k, val)) = p.split_once('=') {
                let val = val.trim().trim_matches('"');
                match k.trim() {
                    "g" => g = Some(val.to_string()),
                    "v" => v = Some(val.to_string()),
                    "as" => as_ = Some(val.to_string()),
                    _ => {}
                }
            }
        }
        let json_like =
            essence == "application/json" || essence == "application/*" || essence == "*/*";
        if !json_like {
            continue;
        }
        if g.is_none() && as_.is_none() {
            return false; // plain JSON (or anything) accepted first: the legacy document.
        }
        if g.as_deref() == Some("apidiscovery.k8s.io")
            && v.as_deref() == Some("v2")
            && as_.as_deref() == Some("APIGroupDiscoveryList")
        {
            return true;
        }
    }
    false
}

fn group_version_for_discovery() -> Value {
    json!({"groupVersion": API_VERSION, "version": VERSION})
}

/// `/apis/retry.tekton.dev`: the `APIGroup`.
pub fn api_group() -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [group_version_for_discovery()],
        "preferredVersion": group_version_for_discovery(),
    })
}

/// `/apis`: the legacy `APIGroupList` with our one group.
pub fn api_group_list() -> Value {
    let mut g = api_group();
    if let Some(o) = g.as_object_mut() {
        o.remove("kind");
        o.remove("apiVersion");
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [g]})
}

/// `/apis/retry.tekton.dev/v1alpha1`: the `APIResourceList`.
pub fn api_resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": API_VERSION,
        "resources": [
            {
                "name": RESOURCE,
                "singularName": "",
                "namespaced": true,
                "kind": KIND,
                "verbs": [],
            },
            {
                "name": format!("{RESOURCE}/{SUBRESOURCE}"),
                "singularName": "",
                "namespaced": true,
                "kind": KIND,
                "verbs": ["create"],
            },
            {
                "name": format!("{RESOURCE}/{HISTORY_SUBRESOURCE}"),
                "singularName": "",
                "namespaced": true,
                "kind": HISTORY_KIND,
                "verbs": ["get"],
            }
        ]
    })
}

/// `/apis` with `Accept: …;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`.
pub fn aggregated_v2() -> Value {
    let gvk = json!({"group": GROUP, "version": VERSION, "kind": KIND});
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [{
            "metadata": {"name": GROUP, "creationTimestamp": null},
            "versions": [{
                "version": VERSION,
                "resources": [{
                    "resource": RESOURCE,
                    "responseKind": gvk,
                    "scope": "Namespaced",
                    "verbs": [],
                    "subresources": [{
                        "subresource": SUBRESOURCE,
                        "responseKind": gvk,
                        "acceptedTypes": [gvk],
                        "verbs": ["create"],
                    }, {
                        "subresource": HISTORY_SUBRESOURCE,
                        "responseKind": {"group": GROUP, "version": VERSION, "kind": HISTORY_KIND},
                        "verbs": ["get"],
                    }],
                }],
                "freshness": "Current",
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroup, APIGroupList, APIResourceList};

    #[test]
    fn documents_parse_into_the_kubernetes_types() {
        let list: APIGroupList = serde_json::from_value(api_group_list()).expect("APIGroupList");
        assert_eq!(list.groups[0].name, GROUP);
        let g: APIGroup = serde_json::from_value(api_group()).expect("APIGroup");
        assert_eq!(
            g.preferred_version.map(|v| v.group_version),
            Some(API_VERSION.to_string())
        );
        let r: APIResourceList =
            serde_json::from_value(api_resource_list()).expect("APIResourceList");
        let sub = r
            .resources
            .iter()
            .find(|x| x.name == "pipelineruns/retry")
            .expect("subresource");
        assert_eq!(sub.verbs, vec!["create"]);
        assert!(sub.namespaced);
        let parent = r
            .resources
            .iter()
            .find(|x| x.name == "pipelineruns")
            .expect("parent");
        assert!(parent.verbs.is_empty());
        assert_eq!(parent.kind, KIND);
        let v2: kube::core::discovery::v2::APIGroupDiscoveryList =
            serde_json::from_value(aggregated_v2()).expect("v2");
        let res = &v2.items[0].versions[0].resources[0];
        assert_eq!(res.subresources[0].verbs, vec!["create"]);
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_aggregated(Some(
            kube::core::discovery::v2::ACCEPT_AGGREGATED_DISCOVERY_V2
        )));
        assert!(wants_aggregated(Some(
            "application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList"
        )));
        assert!(!wants_aggregated(Some("application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")));
        assert!(!wants_aggregated(Some("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")));
        assert!(!wants_aggregated(None));
        assert!(!wants_aggregated(Some("application/json")));
    }
}

//! The public documents (discovery and OpenAPI), each serialized once per process: they never
//! change while it runs, and kube-apiserver's discovery refreshes and availability probes ask for
//! them constantly. A request clones the cached bytes (a reference count).

use std::sync::OnceLock;

use bytes::Bytes;
use http::HeaderValue;
use serde_json::Value;

use super::routes::PublicDoc;
use super::{discovery, openapi};

/// One serialized document with the headers that go with it.
#[derive(Debug)]
pub struct Document {
    pub body: Bytes,
    pub content_type: &'static str,
    /// `ETag` of the OpenAPI documents (clients cache them by it).
    pub etag: Option<HeaderValue>,
    /// `Vary: Accept`: `/apis` answers legacy or aggregated discovery by the Accept header.
    pub vary_accept: bool,
}

impl Document {
    fn json(value: &Value, content_type: &'static str) -> Self {
        Document {
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            content_type,
            etag: None,
            vary_accept: false,
        }
    }

    fn with_etag(mut self, doc: &Value) -> Self {
        self.etag = HeaderValue::from_str(&format!("\"{}\"", openapi::etag(doc))).ok();
        self
    }

    fn varying(mut self) -> Self {
        self.vary_accept = true;
        self
    }
}

/// The document for `doc`; `aggregated`: `/apis` asked for aggregated discovery v2.
pub fn get(doc: PublicDoc, aggregated: bool) -> &'static Document {
    static APIS: OnceLock<Document> = OnceLock::new();
    static APIS_V2: OnceLock<Document> = OnceLock::new();
    static GROUP: OnceLock<Document> = OnceLock::new();
    static GROUP_VERSION: OnceLock<Document> = OnceLock::new();
    static OPENAPI_V2: OnceLock<Document> = OnceLock::new();
    static OPENAPI_V3_INDEX: OnceLock<Document> = OnceLock::new();
    static OPENAPI_V3: OnceLock<Document> = OnceLock::new();
    const JSON: &str = "application/json";
    match doc {
        PublicDoc::Apis if aggregated => APIS_V2.get_or_init(|| {
            Document::json(
                &discovery::aggregated_v2(),
                discovery::AGGREGATED_V2_CONTENT_TYPE,
            )
            .varying()
        }),
        PublicDoc::Apis => {
            APIS.get_or_init(|| Document::json(&discovery::api_group_list(), JSON).varying())
        }
        PublicDoc::Group => GROUP.get_or_init(|| Document::json(&discovery::api_group(), JSON)),
        PublicDoc::GroupVersion => {
            GROUP_VERSION.get_or_init(|| Document::json(&discovery::api_resource_list(), JSON))
        }
        PublicDoc::OpenApiV2 => OPENAPI_V2.get_or_init(|| {
            let doc = openapi::v2_document();
            Document::json(&doc, JSON).with_etag(&doc)
        }),
        PublicDoc::OpenApiV3Index => {
            OPENAPI_V3_INDEX.get_or_init(|| Document::json(&openapi::v3_index(), JSON))
        }
        PublicDoc::OpenApiV3GroupVersion => OPENAPI_V3.get_or_init(|| {
            let doc = openapi::v3_document();
            Document::json(&doc, JSON).with_etag(&doc)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_bytes_are_the_documents() {
        let parse = |d: &Document| -> Value { serde_json::from_slice(&d.body).expect("json") };
        assert_eq!(
            parse(get(PublicDoc::GroupVersion, false)),
            discovery::api_resource_list()
        );
        assert_eq!(
            parse(get(PublicDoc::Apis, true)),
            discovery::aggregated_v2()
        );
        assert_eq!(
            parse(get(PublicDoc::Apis, false)),
            discovery::api_group_list()
        );
        let v3 = get(PublicDoc::OpenApiV3GroupVersion, false);
        assert_eq!(parse(v3), openapi::v3_document());
        let etag = v3.etag.as_ref().expect("an etag");
        assert_eq!(
            etag.to_str().expect("ascii"),
            format!("\"{}\"", openapi::etag(&openapi::v3_document()))
        );
        // The same bytes every time, not a new serialization.
        assert_eq!(
            get(PublicDoc::Group, false).body.as_ptr(),
            get(PublicDoc::Group, false).body.as_ptr()
        );
    }
}

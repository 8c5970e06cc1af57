//! Views of Tekton v1 objects over `serde_json::Value`: nothing unknown is ever dropped.

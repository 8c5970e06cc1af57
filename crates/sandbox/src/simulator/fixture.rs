//! The recorded real-Tekton objects under `tests/fixtures/tekton/`, for the models' unit tests.

use serde_json::Value;

/// The recorded object at `path`, relative to `tests/fixtures/tekton/`.
pub fn load(path: &str) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/tekton");
    let text = std::fs::read_to_string(std::path::Path::new(dir).join(path)).expect(path);
    serde_json::from_str(&text).expect("fixture json")
}

//! The router (`tekton_retry::server::routes::Route::parse` and `dry_run`) on arbitrary paths
//! and queries (`path?query`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        checks::route_parse(s);
    }
});

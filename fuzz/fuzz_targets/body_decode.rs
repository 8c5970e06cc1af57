//! The retry request body decoder (`tekton_retry::server::body`) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::body_decode(data);
});

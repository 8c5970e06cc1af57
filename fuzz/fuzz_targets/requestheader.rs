//! The requestheader parser (`tekton_retry::server::authn::from_request_headers`) on arbitrary
//! header lines: the input is split into lines at `\n`, each line into name and value at the
//! first `:` (a line without one is a name with an empty value).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<(Vec<u8>, Vec<u8>)> = data
        .split(|b| *b == b'\n')
        .map(|line| match line.iter().position(|b| *b == b':') {
            Some(i) => (line[..i].to_vec(), line[i + 1..].trim_ascii().to_vec()),
            None => (line.to_vec(), Vec::new()),
        })
        .collect();
    checks::requestheader(&lines);
});

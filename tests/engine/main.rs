//! Retries through the whole sandbox: the engine, the executor, the recorder, the attempt records, faults, load and soak.

mod engine_no_log_archive;
mod engine_sandbox;
mod engine_tekton_cases;
mod hardening_faults;
mod hardening_load;
mod hardening_soak;
mod recorder_sandbox;
mod records_security;

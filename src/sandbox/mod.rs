//! The sandbox: an in-process cluster for trying tekton-retry and for tests (DESIGN §5).
pub mod simulator;

//! What users install and run: the manifests, the release files, monitoring, and the kubectl plugin.

mod deploy;
mod deploy_support;
mod monitoring;
mod output;
mod plugin_cli;
mod plugin_conventions;
mod plugin_e2e;
mod release;

//! The server over real TLS: routes, authentication, authorization, connections, certificates, readiness, shutdown, the command line and hostile input.

mod hardening_auth;
mod hardening_conn;
mod hardening_hostile;
mod hardening_props;
mod selfcert_sandbox;
mod server_api;
mod server_auth;
mod server_cli;
mod server_kubectl;
mod server_readiness;
mod server_rotation;
mod server_shutdown;

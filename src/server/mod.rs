//! The aggregated API server (`tekton-retry serve`): config → TLS → authn → authz → routes.

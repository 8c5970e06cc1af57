//! What installing Tekton adds to the API server's write path, apart from its controller (the
//! [`crate::simulator`]): the defaulting and validating admission webhook ([`admission`]) and the
//! structural schemas of its CRDs, which decide what pruning drops ([`crd_schema`]).
//!
//! The Kubernetes API [`crate::emulator`] calls these on every write of a Tekton object, as
//! kube-apiserver calls the webhook registered by Tekton's `ValidatingWebhookConfiguration` and
//! `MutatingWebhookConfiguration` and prunes by the CRD's schema; nothing here knows the emulator.

pub mod admission;
pub mod crd_schema;

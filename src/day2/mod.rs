//! Day-2 procedures over the clients (`talos::api`, `kubernetes`): what the
//! seeds' runbooks do by hand with talosctl, as functions the resources
//! call. Facts and upstream sources: `src/talos/sim/README.md` and
//! `docs/guides/day-2.md`.
//!
//! - [`node_upgrade`]: one node's in-place OS upgrade, as `talosctl
//!   upgrade` does it for the node's Talos version, ending only when the
//!   node runs the new version (or failing, naming the step and what the
//!   node showed).
//! - [`kubernetes_upgrade`]: a Kubernetes version upgrade in `talosctl
//!   upgrade-k8s` order, component by component and node by node, each
//!   step waited for, then the bootstrap manifests.

pub mod compat;
pub mod kubernetes_upgrade;
pub mod node_upgrade;

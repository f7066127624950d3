//! Helpers several resources share: attribute and value helpers
//! ([`common`]), plan-time PVE lookups ([`preflight`]), the PVE objects' client, errors and
//! timeouts ([`pve`]), the Talos node
//! arguments, waits and diagnostics ([`talos_node`]) and the Talos value
//! model ([`talos_model`]).

pub mod common;
pub mod etcd_snapshot;
pub mod preflight;
pub mod pve;
pub mod talos_model;
pub mod talos_node;

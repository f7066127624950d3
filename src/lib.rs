//! proxtalos: a Terraform/OpenTofu provider that puts Talos Linux Kubernetes
//! clusters on Proxmox VE.
//!
//! How it fits together (resources call clients; clients call transport;
//! never the other way round):
//!
//! - [`plugin`] is the Terraform side: our own tfplugin6 server (handshake,
//!   TLS, unix socket, Shutdown), the value model and msgpack codec, the schema
//!   model, the resource contracts and the plan pipeline. It knows nothing of
//!   Proxmox or Talos.
//! - [`proxmox`] is the Proxmox VE API client; it knows nothing of Terraform.
//! - [`image_factory`] is the Talos Image Factory's HTTP API client.
//! - [`talos`] holds the Talos machinery (secrets, machine configuration); it
//!   knows nothing of Terraform.
//! - [`resources`] maps Terraform objects onto the clients, one file each.
//! - [`wait`] is the one polling helper (deadline, backoff, last observation,
//!   early end on Terraform's stop request) that every client's waits use.
//! - [`data`] is the configured provider's data (settings, clients): what
//!   resources import; they never import [`provider`].
//! - [`provider`] is the proxtalos provider itself: its configuration schema
//!   and the registry of resources.
//! - `lab` (feature `sim`, never in the provider build) couples fakepve and
//!   the Talos node simulator into a local lab.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod data;
pub mod day2;
pub mod image_factory;
pub mod kubernetes;
#[cfg(feature = "sim")]
pub mod lab;
pub mod plugin;
pub mod provider;
pub mod proxmox;
pub mod resources;
pub mod secret;
pub mod talos;
pub mod wait;

/// The provider version: `PROVIDER_VERSION` at build time (set by the
/// release build), else the crate version.
pub const VERSION: &str = match option_env!("PROVIDER_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

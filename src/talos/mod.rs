//! The Talos side of proxtalos: machine secrets, machine configuration,
//! talosconfig. Knows nothing of Terraform.
//!
//! # Public API
//!
//! - [`VersionContract`]: `"v1.10"`…`"v1.14"`, parsed with `str::parse`.
//! - [`secrets::SecretsBundle`]: `generate(contract, &mut rng, now)`,
//!   `from_yaml(&str)`, `to_yaml()`, `validate()` — the `talosctl gen
//!   secrets` bundle (behaviour.md §9). RNG and clock are injected.
//! - [`client_config::ClientConfiguration`]: `generate(&os_ca, &["os:admin"],
//!   validity, &mut rng, now)`, `expires_at()`, `needs_renewal(now, window)`;
//!   [`client_config::talosconfig`] renders the talosconfig file.
//! - [`config::ConfigInput`] + [`config::generate`]`(&input, &secrets)` →
//!   [`config::MachineConfig`] with `to_yaml()`, `to_redacted_yaml()`,
//!   `apply_patches(&[String])`, `validate()`; `MachineConfig::parse`
//!   reads an existing config.
//! - [`patch::apply_patches`] (strategic merge and RFC 6902 on raw
//!   documents) and [`redact::redact`] for lower-level use.
//! - [`yaml`]: parsing and the yaml.v3-compatible 4-space emitter.
//!
//! - [`api`]: the Talos API client ([`api::NodeClient`], maintenance and
//!   mutual-TLS modes, every call with a deadline) and its waits.
//! - `sim` (feature `sim`, tests and development only): a Talos node
//!   simulator on the same protos.
//!
//! Every layer has its own error enum; no function panics on bad input.

pub mod api;
pub mod client_config;
pub mod config;
pub mod patch;
pub mod pki;
pub mod redact;
pub mod schema;
pub mod schematic;
pub mod secrets;
#[cfg(feature = "sim")]
pub mod sim;
pub mod version;
pub mod yaml;

pub use version::VersionContract;

//! The Talos side of proxtalos: machine secrets, machine configuration,
//! talosconfig. Knows nothing of Terraform.

pub mod pki;
pub mod version;
pub mod yaml;

pub use version::VersionContract;
pub mod client_config;
pub mod secrets;

//! The Talos side of proxtalos: machine secrets, machine configuration,
//! talosconfig. Knows nothing of Terraform.

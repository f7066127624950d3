terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {}

data "proxtalos_client_configuration" "this" {
  cluster_name         = "homelab"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  endpoints            = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
  nodes                = ["10.0.0.11"]
}

output "talosconfig" {
  value     = data.proxtalos_client_configuration.this.talos_config
  sensitive = true
}

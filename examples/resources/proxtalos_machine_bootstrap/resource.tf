terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {}

variable "controlplane_config" {
  type      = string
  sensitive = true
}

resource "proxtalos_machine_configuration_apply" "cp1" {
  node                  = "10.0.0.11"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = var.controlplane_config
}

# Once per cluster, on one control plane. Safe to re-run: a cluster that is
# already bootstrapped counts as done.
resource "proxtalos_machine_bootstrap" "this" {
  node                 = "10.0.0.11"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_configuration_apply.cp1]

  timeouts {
    create = "10m"
  }
}

terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {}

data "proxtalos_machine_configuration" "controlplane" {
  cluster_name       = "homelab"
  cluster_endpoint   = "https://10.0.0.11:6443"
  machine_type       = "controlplane"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = proxtalos_machine_secrets.this.talos_version
  kubernetes_version = "1.33.1"
  install_disk       = "/dev/sda"
}

resource "proxtalos_machine_configuration_apply" "cp1" {
  node                  = "10.0.0.11"
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.controlplane.machine_configuration
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

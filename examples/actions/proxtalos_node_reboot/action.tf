terraform {
  required_version = ">= 1.14"
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {
  talos_version = "v1.13"
}

resource "proxtalos_cluster" "this" {
  cluster_name         = "homelab"
  cluster_endpoint     = "https://10.0.0.11:6443"
  machine_secrets      = proxtalos_machine_secrets.this.machine_secrets
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  talos_version        = "v1.13.9"
  kubernetes_version   = "1.34.1"

  control_plane {
    name    = "cp-1"
    address = "10.0.0.11"
  }
}

# terraform apply -invoke=action.proxtalos_node_reboot.cp_1
action "proxtalos_node_reboot" "cp_1" {
  config {
    node                 = "10.0.0.11"
    client_configuration = proxtalos_machine_secrets.this.client_configuration
    mode                 = "default"
    timeout              = "15m"
  }
}

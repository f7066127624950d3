terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

# The installer image the nodes install from. null: the version of the ISO
# they booted. Set e.g. "ghcr.io/siderolabs/installer:v1.14.2" on a running
# cluster and apply: every node is upgraded in place, one at a time (see
# `talos_version` and docs/guides/day-2.md).
variable "installer" {
  type    = string
  default = null
}

locals {
  control_planes = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
  workers        = ["10.0.0.21", "10.0.0.22"]
}

resource "proxtalos_machine_secrets" "this" {}

data "proxtalos_machine_configuration" "controlplane" {
  cluster_name       = "homelab"
  cluster_endpoint   = "https://10.0.0.10:6443"
  machine_type       = "controlplane"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = proxtalos_machine_secrets.this.talos_version
  kubernetes_version = "1.33.1"
  install_disk       = "/dev/sda"
  install_image      = var.installer
}

data "proxtalos_machine_configuration" "worker" {
  cluster_name       = "homelab"
  cluster_endpoint   = "https://10.0.0.10:6443"
  machine_type       = "worker"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = proxtalos_machine_secrets.this.talos_version
  kubernetes_version = "1.33.1"
  install_disk       = "/dev/sda"
  install_image      = var.installer
}

# Nodes booted from the Talos ISO wait in maintenance mode. Each apply dials
# its node directly, installs, waits for the reboot and for mutual TLS, and
# from then on reads the active configuration back on every refresh.
resource "proxtalos_machine_configuration_apply" "controlplane" {
  for_each              = toset(local.control_planes)
  node                  = each.key
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.controlplane.machine_configuration
  apply_mode            = "no_reboot"

  # Destroy wipes the configuration and brings the node back to maintenance mode.
  on_destroy {
    reset    = true
    graceful = false
    reboot   = true
  }

  timeouts {
    create = "20m"
  }
}

# Workers need a running control plane (trustd) to get their certificate.
# With Terraform >= 1.11 the configuration can stay out of state:
# machine_configuration_wo = ephemeral.proxtalos_machine_configuration.worker.machine_configuration
# `endpoint`: a control plane, which also gives the Kubernetes credentials
# to drain a worker before an in-place upgrade reboots it.
resource "proxtalos_machine_configuration_apply" "worker" {
  for_each              = toset(local.workers)
  node                  = each.key
  endpoint              = local.control_planes[0]
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.worker.machine_configuration
  depends_on            = [proxtalos_machine_configuration_apply.controlplane]

  upgrade {
    drain_timeout = "10m"
  }
}

output "controlplane_config" {
  value = proxtalos_machine_configuration_apply.controlplane["10.0.0.11"].machine_configuration_redacted
}

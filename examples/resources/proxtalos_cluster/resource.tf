terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

# Change and apply to roll the cluster forward one node at a time: control
# planes first, then workers, each drained, upgraded, rebooted and checked
# before the next (docs/guides/day-2.md).
variable "talos_version" {
  type    = string
  default = "v1.14.0"
}

variable "kubernetes_version" {
  type    = string
  default = "1.33.1"
}

resource "proxtalos_machine_secrets" "this" {
  talos_version = "v1.14"
}

resource "proxtalos_cluster" "this" {
  cluster_name         = "homelab"
  cluster_endpoint     = "https://10.0.0.10:6443"
  machine_secrets      = proxtalos_machine_secrets.this.machine_secrets
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  talos_version        = var.talos_version
  kubernetes_version   = var.kubernetes_version

  # Every node: nodes booted from the Talos ISO wait in maintenance mode.
  config_patches = [
    yamlencode({ machine = { time = { servers = ["pool.ntp.org"] } } }),
  ]

  # The endpoint is a VIP the control planes hold in turn (Talos v1.12+;
  # ens18 is a Proxmox VM's net0): it stays up while any one of them
  # reboots, and the health gate checks the API on it after every node.
  control_plane_patches = [
    yamlencode({ apiVersion = "v1alpha1", kind = "Layer2VIPConfig", name = "10.0.0.10", link = "ens18" }),
  ]

  control_plane {
    name    = "cp-1"
    address = "10.0.0.11"
  }
  control_plane {
    name    = "cp-2"
    address = "10.0.0.12"
  }
  control_plane {
    name    = "cp-3"
    address = "10.0.0.13"
  }
  worker {
    name    = "worker-1"
    address = "10.0.0.21"
  }
  worker {
    name    = "worker-2"
    address = "10.0.0.22"
  }

  rollout {
    worker_parallelism = 1
    health_timeout     = "10m"
    drain_timeout      = "5m"
  }

  # Destroy resets every node (they power off); without this block destroy
  # only forgets the cluster.
  on_destroy {
    reset = true
  }
}

output "nodes" {
  value = proxtalos_cluster.this.nodes
}

output "rollout_steps" {
  value = proxtalos_cluster.this.rollout_steps
}

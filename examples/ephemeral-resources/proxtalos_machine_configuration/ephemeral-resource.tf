terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {}

# Rendered on every run and never stored: hand it to a write-only attribute.
ephemeral "proxtalos_machine_configuration" "worker" {
  cluster_name       = "homelab"
  cluster_endpoint   = "https://10.0.0.10:6443"
  machine_type       = "worker"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = proxtalos_machine_secrets.this.talos_version
  kubernetes_version = "1.33.1"
  install_disk       = "/dev/sda"

  # Talos v1.14+ keeps node labels in the KubeNodeConfig document (`labels`; it refuses
  # machine.nodeLabels next to it); before v1.14, patch machine.nodeLabels.
  config_patches = [
    yamlencode({ apiVersion = "v1alpha1", kind = "KubeNodeConfig", labels = { role = "worker" } }),
  ]
}

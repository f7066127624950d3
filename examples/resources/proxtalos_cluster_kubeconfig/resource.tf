terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {}

# The admin kubeconfig from a control plane; a plan made within 30 days of
# the client certificate's expiry fetches a new one.
resource "proxtalos_cluster_kubeconfig" "this" {
  node                       = "10.0.0.11"
  client_configuration       = proxtalos_machine_secrets.this.client_configuration
  certificate_renewal_window = "720h"
}

output "kubeconfig" {
  value     = proxtalos_cluster_kubeconfig.this.kubeconfig_raw
  sensitive = true
}

output "kubeconfig_expires_at" {
  value = proxtalos_cluster_kubeconfig.this.expires_at
}

# Not applied by the tests: it reads a bootstrapped cluster made with this
# example's own secrets, which only a whole cluster configuration can make;
# tests/quickstart.rs (in the lab) and tests/acc_talos_cluster.rs apply the same block.

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

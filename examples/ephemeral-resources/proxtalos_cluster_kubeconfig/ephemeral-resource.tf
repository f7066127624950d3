# Not applied by the tests: it reads a bootstrapped cluster made with this
# example's own secrets, which only a whole cluster configuration can make;
# tests/acc_talos_cluster.rs opens the same block on a simulated cluster.

terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {}

# Fetched on every run and never stored: feed it to other providers.
ephemeral "proxtalos_cluster_kubeconfig" "this" {
  node                 = "10.0.0.11"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  timeout              = "5m"
}

# e.g. in a `provider "kubernetes"` block: host, cluster_ca_certificate,
# client_certificate and client_key from these.
locals {
  kubernetes = ephemeral.proxtalos_cluster_kubeconfig.this.kubernetes_client_configuration
}

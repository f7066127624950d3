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

# Waits (up to timeouts.read) until every node answers, etcd has one member
# per control plane and the services of each role run. On failure the error
# names the stage and the node.
data "proxtalos_cluster_health" "this" {
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  control_plane_nodes  = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
  worker_nodes         = ["10.0.0.21", "10.0.0.22"]

  timeouts {
    read = "15m"
  }
}

output "healthy_stages" {
  value = data.proxtalos_cluster_health.this.stages
}

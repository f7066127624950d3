# Not applied by the tests: it reads a bootstrapped cluster made with this
# example's own secrets, which only a whole cluster configuration can make;
# tests/it/quickstart.rs (in the lab) and tests/it/acc_kube_health.rs apply the same block.

terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {}

resource "proxtalos_cluster_kubeconfig" "this" {
  node                 = "10.0.0.11"
  client_configuration = proxtalos_machine_secrets.this.client_configuration
}

# Waits (up to timeouts.read) until every node answers, etcd has one member
# per control plane and the services of each role run, then (kubernetes =
# true) until the Kubernetes API shows every node registered and Ready at
# kubernetes_version, the control-plane pods, kube-proxy and CoreDNS ready
# and no node cordoned, as `talosctl health` checks. On failure the error
# names the stage and the node or check.
data "proxtalos_cluster_health" "this" {
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  control_plane_nodes  = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
  worker_nodes         = ["10.0.0.21", "10.0.0.22"]
  kubernetes           = true
  kubeconfig           = proxtalos_cluster_kubeconfig.this.kubeconfig_raw
  kubernetes_version   = "1.33.1"

  timeouts {
    read = "15m"
  }
}

output "healthy_stages" {
  value = data.proxtalos_cluster_health.this.stages
}

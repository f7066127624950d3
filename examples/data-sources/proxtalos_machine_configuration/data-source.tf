terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

resource "proxtalos_machine_secrets" "this" {}

data "proxtalos_machine_configuration" "controlplane" {
  cluster_name       = "homelab"
  cluster_endpoint   = "https://10.0.0.10:6443"
  machine_type       = "controlplane"
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = proxtalos_machine_secrets.this.talos_version
  kubernetes_version = "1.33.1"

  install_disk    = "/dev/sda"
  extra_cert_sans = ["10.0.0.10", "k8s.example.com"]
  cni             = "none"
  sysctls         = { "vm.max_map_count" = "262144" }
  registry_mirrors = {
    "docker.io" = ["https://mirror.example.com"]
  }

  # From Talos v1.12 on, DNS servers go in a ResolverConfig document (the
  # v1alpha1 `machine.network.nameservers` is deprecated, and Talos refuses
  # it next to the ResolverConfig the v1.14 contract generates).
  config_patches = [
    yamlencode({
      apiVersion  = "v1alpha1"
      kind        = "ResolverConfig"
      nameservers = [{ address = "10.0.0.1" }]
    }),
  ]
}

# Not sensitive: every change shows line by line in the plan.
output "controlplane_config" {
  value = data.proxtalos_machine_configuration.controlplane.machine_configuration_redacted
}

terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

variable "secrets_yaml" {
  description = "secrets.yaml kept in a secret store (e.g. read with an ephemeral Vault secret)."
  type        = string
  sensitive   = true
  ephemeral   = true
}

# Reads the bundle from the secret store on every run; nothing secret is
# written to plan or state. Without secrets_yaml a new bundle is generated
# on every run.
ephemeral "proxtalos_machine_secrets" "this" {
  secrets_yaml = var.secrets_yaml
}

ephemeral "proxtalos_machine_configuration" "worker" {
  cluster_name       = "homelab"
  cluster_endpoint   = "https://10.0.0.10:6443"
  machine_type       = "worker"
  machine_secrets    = ephemeral.proxtalos_machine_secrets.this.machine_secrets
  talos_version      = ephemeral.proxtalos_machine_secrets.this.talos_version
  kubernetes_version = "1.33.1"
}

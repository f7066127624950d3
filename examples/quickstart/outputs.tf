output "control_plane_addresses" {
  description = "Control-plane node addresses."
  value       = [for k, n in local.nodes : n.ip if n.type == "controlplane"]
}

output "worker_addresses" {
  description = "Worker node addresses."
  value       = [for k, n in local.nodes : n.ip if n.type == "worker"]
}

output "vm_ids" {
  description = "VMID of each node's VM."
  value       = { for k, vm in proxtalos_vm.node : k => vm.vm_id }
}

output "kubernetes_endpoint" {
  description = "Kubernetes API URL."
  value       = local.cluster_endpoint
}

output "health" {
  description = "Health stages that passed."
  value       = data.proxtalos_cluster_health.this.stages
}

# Write them to files with mode 0600:
#   (umask 077; terraform output -raw talosconfig > talosconfig)
#   (umask 077; terraform output -raw kubeconfig > kubeconfig)
output "talosconfig" {
  description = "talosconfig for talosctl (TALOSCONFIG=...)."
  value       = data.proxtalos_client_configuration.this.talos_config
  sensitive   = true
}

output "kubeconfig" {
  description = "Admin kubeconfig (KUBECONFIG=...)."
  value       = proxtalos_cluster_kubeconfig.this.kubeconfig_raw
  sensitive   = true
}

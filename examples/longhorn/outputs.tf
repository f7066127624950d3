output "control_plane_addresses" {
  description = "Control-plane node addresses."
  value       = values(local.control_planes)
}

output "worker_addresses" {
  description = "Worker node addresses."
  value       = values(local.workers)
}

output "vm_ids" {
  description = "VMID of each node's VM."
  value       = { for k, vm in proxtalos_vm.node : k => vm.vm_id }
}

output "kubernetes_endpoint" {
  description = "Kubernetes API URL."
  value       = local.cluster_endpoint
}

output "nodes" {
  description = "Per node: role, address, the Talos version it runs, its kubelet version and configuration hash."
  value       = proxtalos_cluster.this.nodes
}

output "rollout_steps" {
  description = "The steps of the latest rollout, in order."
  value       = proxtalos_cluster.this.rollout_steps
}

# Write them to files with mode 0600:
#   (umask 077; terraform output -raw talosconfig > talosconfig)
#   (umask 077; terraform output -raw kubeconfig > kubeconfig)
output "talosconfig" {
  description = "talosconfig for talosctl (TALOSCONFIG=...)."
  value       = proxtalos_cluster.this.talosconfig
  sensitive   = true
}

output "kubeconfig" {
  description = "Admin kubeconfig (KUBECONFIG=...)."
  value       = proxtalos_cluster.this.kubeconfig
  sensitive   = true
}

output "schematic_id" {
  description = "The Image Factory schematic of the nodes (iscsi-tools, util-linux-tools)."
  value       = proxtalos_image_factory_schematic.longhorn.id
}

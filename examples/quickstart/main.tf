# A Talos Linux Kubernetes cluster on Proxmox VE: 3 control planes and 2
# workers booting the Talos ISO, with static addresses through cloud-init.
# Everything site-specific is a variable (variables.tf); the same file runs
# against a real Proxmox and against the project's lab (scripts/quickstart.sh).

terraform {
  required_version = ">= 1.11"
  required_providers {
    proxtalos = {
      source = "proxtalos/proxtalos"
    }
  }
}

provider "proxtalos" {
  proxmox {
    endpoint       = var.proxmox_endpoint
    api_token      = var.proxmox_api_token
    insecure       = var.proxmox_insecure
    ca_certificate = var.proxmox_ca_certificate_file == null ? null : file(var.proxmox_ca_certificate_file)
  }
}

locals {
  prefix = split("/", var.network_cidr)[1]
  # Each node's address comes from its own fixed `host` (variables.tf), never
  # from its position: adding or removing a node touches only that node.
  nodes = {
    for name, n in var.nodes : name => merge(n, { ip = cidrhost(var.network_cidr, var.first_host + n.host) })
  }
  control_planes   = [for k, n in local.nodes : n.ip if n.type == "controlplane"]
  workers          = [for k, n in local.nodes : n.ip if n.type == "worker"]
  cluster_endpoint = coalesce(var.cluster_endpoint, "https://${local.control_planes[0]}:6443")
  talos_contract   = regex("^v[0-9]+\\.[0-9]+", var.talos_version)
}

# ---- Proxmox: the Talos ISO and the VMs --------------------------------------

# PVE downloads the nocloud ISO from the Image Factory itself.
resource "proxtalos_image" "talos" {
  node          = var.proxmox_node
  storage       = var.iso_storage
  content       = "iso"
  schematic_id  = var.schematic_id
  talos_version = var.talos_version
  platform      = "nocloud"
}

resource "proxtalos_vm" "node" {
  for_each = local.nodes

  # One PVE node, or (with `proxmox_nodes`) the one `placement` chooses at
  # create and keeps: control planes apart, workers apart.
  node = length(var.proxmox_nodes) > 0 ? null : var.proxmox_node
  dynamic "placement" {
    for_each = length(var.proxmox_nodes) > 0 ? [each.value.type] : []
    content {
      nodes      = var.proxmox_nodes
      spread_tag = placement.value
    }
  }

  name        = "${var.cluster_name}-${each.key}"
  description = "Talos ${each.value.type} of ${var.cluster_name} (managed by Terraform)"
  tags        = ["talos", var.cluster_name, each.value.type]

  cores  = each.value.type == "controlplane" ? var.control_plane.cores : var.worker.cores
  memory = each.value.type == "controlplane" ? var.control_plane.memory : var.worker.memory

  disks = [{
    interface = "scsi0"
    storage   = var.vm_storage
    size      = each.value.type == "controlplane" ? var.control_plane.disk_gb : var.worker.disk_gb
    ssd       = true
    discard   = true
    iothread  = true
  }]

  network_devices = [{ bridge = var.bridge, vlan_id = var.vlan_id }]

  cdrom {
    file = proxtalos_image.talos.id
  }

  cloud_init {
    storage     = var.vm_storage
    dns_servers = var.dns_servers
    ip_configs = [{
      ipv4         = "${each.value.ip}/${local.prefix}"
      ipv4_gateway = var.gateway
    }]
  }

  on_boot = true
  started = true
}

# ---- Talos: secrets, configurations, apply, bootstrap --------------------------

resource "proxtalos_machine_secrets" "this" {
  talos_version = local.talos_contract
}

data "proxtalos_machine_configuration" "node" {
  for_each = local.nodes

  cluster_name       = var.cluster_name
  cluster_endpoint   = local.cluster_endpoint
  machine_type       = each.value.type
  machine_secrets    = proxtalos_machine_secrets.this.machine_secrets
  talos_version      = local.talos_contract
  kubernetes_version = var.kubernetes_version
  install_disk       = var.install_disk

  config_patches = [
    # Per node: its VM's name as the host name.
    yamlencode({
      apiVersion = "v1alpha1"
      kind       = "HostnameConfig"
      auto       = "off"
      hostname   = "${var.cluster_name}-${each.key}"
    }),
  ]
}

resource "proxtalos_machine_configuration_apply" "node" {
  for_each = local.nodes

  # The VM's address: known at plan from its static cloud-init address, and
  # kept on unrelated VM changes (tags, memory, a new ISO). This also orders
  # each apply after its own VM.
  node                  = proxtalos_vm.node[each.key].ipv4_addresses[0]
  client_configuration  = proxtalos_machine_secrets.this.client_configuration
  machine_configuration = data.proxtalos_machine_configuration.node[each.key].machine_configuration
}

resource "proxtalos_machine_bootstrap" "this" {
  node                 = local.control_planes[0]
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_configuration_apply.node]
}

resource "proxtalos_cluster_kubeconfig" "this" {
  node                 = local.control_planes[0]
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  depends_on           = [proxtalos_machine_bootstrap.this]
}

data "proxtalos_cluster_health" "this" {
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  control_plane_nodes  = local.control_planes
  worker_nodes         = local.workers
  depends_on           = [proxtalos_machine_bootstrap.this, proxtalos_machine_configuration_apply.node]
}

data "proxtalos_client_configuration" "this" {
  cluster_name         = var.cluster_name
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  endpoints            = local.control_planes
  nodes                = local.control_planes
}

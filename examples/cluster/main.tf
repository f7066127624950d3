# The quickstart's cluster (3 control planes, 2 workers on Proxmox VE) with
# its Talos layer in one `proxtalos_cluster`: change `talos_version`,
# `kubernetes_version`, `control_plane_count` or `worker_count` and apply,
# and the cluster is taken there one safe step at a time (control planes
# first, a health gate after every node, a failed node rolled back).
# Everything site-specific is a variable (variables.tf); the same file runs
# against a real Proxmox and against the project's lab
# (scripts/quickstart.sh --example cluster).

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
  # Each node's address is fixed by its name: control planes at first_host +
  # 0 … 9, workers from first_host + 10. A count change adds or removes only
  # the last nodes and moves no other.
  control_planes = {
    for i in range(var.control_plane_count) : "cp-${i + 1}" => cidrhost(var.network_cidr, var.first_host + i)
  }
  workers = {
    for i in range(var.worker_count) : "worker-${i + 1}" => cidrhost(var.network_cidr, var.first_host + 10 + i)
  }
  nodes = merge(
    { for k, ip in local.control_planes : k => { ip = ip, type = "controlplane" } },
    { for k, ip in local.workers : k => { ip = ip, type = "worker" } },
  )
  # The control planes' shared VIP: its holder answers on it, and a
  # holder that reboots hands it over first. Talos v1.12+ takes a
  # Layer2VIPConfig document, older releases the interface's `vip`.
  vip = var.vip_address == null ? cidrhost(var.network_cidr, var.first_host - 1) : var.vip_address
  vip_patch = local.vip == "" ? [] : [
    tonumber(split(".", var.talos_version)[1]) >= 12
    ? yamlencode({ apiVersion = "v1alpha1", kind = "Layer2VIPConfig", name = local.vip, link = var.vip_link })
    : yamlencode({ machine = { network = { interfaces = [{ interface = var.vip_link, vip = { ip = local.vip } }] } } })
  ]
  cluster_endpoint = coalesce(
    var.cluster_endpoint,
    "https://${local.vip == "" ? local.control_planes["cp-1"] : local.vip}:6443",
  )
}

# ---- Proxmox: the Talos ISO and the VMs --------------------------------------

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

  node        = var.proxmox_node
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

  # A VM whose node leaves the cluster (a lower count) is destroyed only
  # after proxtalos_cluster took the node out (drained, left etcd, reset):
  # without this, Terraform destroys removed VMs before it updates what
  # depends on them, and two control planes gone at once lose etcd quorum.
  lifecycle {
    create_before_destroy = true
  }
}

# ---- Talos: the whole cluster --------------------------------------------------

resource "proxtalos_machine_secrets" "this" {
  talos_version = regex("^v[0-9]+\\.[0-9]+", var.talos_version)

  # The secrets outlive version changes: their contract is the first one.
  lifecycle {
    ignore_changes = [talos_version]
  }
}

resource "proxtalos_cluster" "this" {
  cluster_name         = var.cluster_name
  cluster_endpoint     = local.cluster_endpoint
  machine_secrets      = proxtalos_machine_secrets.this.machine_secrets
  client_configuration = proxtalos_machine_secrets.this.client_configuration
  talos_version        = var.talos_version
  schematic_id         = var.schematic_id
  kubernetes_version   = var.kubernetes_version

  # The VIP on the control planes only (Talos refuses an interface VIP on
  # a worker).
  control_plane_patches = local.vip_patch

  dynamic "control_plane" {
    for_each = local.control_planes
    content {
      name = "${var.cluster_name}-${control_plane.key}"
      # The VM's address (its static cloud-init one): orders each node
      # after its VM, and stays known on unrelated VM changes.
      address      = proxtalos_vm.node[control_plane.key].ipv4_addresses[0]
      install_disk = var.install_disk
    }
  }

  dynamic "worker" {
    for_each = local.workers
    content {
      name         = "${var.cluster_name}-${worker.key}"
      address      = proxtalos_vm.node[worker.key].ipv4_addresses[0]
      install_disk = var.install_disk
    }
  }

  rollout {
    health_timeout = "10m"
    drain_timeout  = "5m"
  }
}

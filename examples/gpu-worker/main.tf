# GPU workers for Talos on Proxmox VE: the cluster example's 3 control planes
# and 2 workers, the first `gpu_worker_count` workers with a GPU passed
# through from PVE (a resource mapping, so an API token can do it) and what a
# Talos node needs to use it
# (https://www.talos.dev/latest/talos-guides/configuration/nvidia-gpu-proprietary/):
#
# - the driver as system extensions, through an Image Factory schematic whose
#   id flows to the ISO and the installer (NVIDIA: nonfree-kmod-nvidia and
#   nvidia-container-toolkit; AMD: amdgpu; Intel: i915);
# - a q35/OVMF VM with the device (`pcie`), its memory not ballooned (a
#   passed-through device pins it);
# - on the GPU workers, the kernel modules (NVIDIA: nvidia, nvidia_uvm,
#   nvidia_drm, nvidia_modeset) and the sysctl NVIDIA's guide asks for;
# - the `nvidia` RuntimeClass, deployed with the cluster.
#
# Then install NVIDIA's device plugin (docs/guides/gpu-workers.md). The same
# file runs against a real Proxmox and the lab
# (scripts/quickstart.sh --example gpu-worker).

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
  control_planes = {
    for i in range(var.control_plane_count) : "cp-${i + 1}" => cidrhost(var.network_cidr, var.first_host + i)
  }
  workers = {
    for i in range(var.worker_count) : "worker-${i + 1}" => cidrhost(var.network_cidr, var.first_host + 10 + i)
  }
  gpu_workers = toset([for i in range(min(var.gpu_worker_count, var.worker_count)) : "worker-${i + 1}"])
  nodes = merge(
    { for k, ip in local.control_planes : k => { ip = ip, type = "controlplane" } },
    { for k, ip in local.workers : k => { ip = ip, type = "worker" } },
  )
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

  # Per vendor: the extensions, and what a GPU worker loads.
  vendor = {
    nvidia = {
      extensions = ["siderolabs/nonfree-kmod-nvidia-production", "siderolabs/nvidia-container-toolkit-production"]
      patch = yamlencode({
        machine = {
          kernel  = { modules = [{ name = "nvidia" }, { name = "nvidia_uvm" }, { name = "nvidia_drm" }, { name = "nvidia_modeset" }] }
          sysctls = { "net.core.bpf_jit_harden" = "1" }
        }
      })
    }
    amd = {
      extensions = ["siderolabs/amdgpu", "siderolabs/amd-ucode"]
      patch      = null
    }
    intel = {
      extensions = ["siderolabs/i915", "siderolabs/intel-ucode"]
      patch      = null
    }
  }[var.gpu_vendor]

  # The RuntimeClass that NVIDIA's device plugin and GPU pods name.
  runtime_class_patch = var.gpu_vendor != "nvidia" ? [] : [yamlencode({
    cluster = {
      inlineManifests = [{
        name     = "nvidia-runtime-class"
        contents = yamlencode({ apiVersion = "node.k8s.io/v1", kind = "RuntimeClass", metadata = { name = "nvidia" }, handler = "nvidia" })
      }]
    }
  })]
}

# ---- Image Factory: the driver --------------------------------------------------

# One schematic for every node: the installer is the cluster's, so upgrades
# keep the driver; on nodes without a GPU the modules are not loaded.
resource "proxtalos_image_factory_schematic" "gpu" {
  schematic = yamlencode({
    customization = { systemExtensions = { officialExtensions = local.vendor.extensions } }
  })
  talos_version = var.talos_version
}

# ---- Proxmox: the ISO of that schematic and the VMs ------------------------------

resource "proxtalos_image" "talos" {
  node          = var.proxmox_node
  storage       = var.iso_storage
  content       = "iso"
  schematic_id  = proxtalos_image_factory_schematic.gpu.id
  talos_version = var.talos_version
  factory_url   = proxtalos_image_factory_schematic.gpu.factory_url
  platform      = "nocloud"
}

resource "proxtalos_vm" "node" {
  for_each = local.nodes

  node        = var.proxmox_node
  name        = "${var.cluster_name}-${each.key}"
  description = "Talos ${each.value.type} of ${var.cluster_name} (managed by Terraform)"
  tags        = concat(["talos", var.cluster_name, each.value.type], contains(local.gpu_workers, each.key) ? ["gpu"] : [])

  cores    = each.value.type == "controlplane" ? var.control_plane.cores : var.worker.cores
  memory   = each.value.type == "controlplane" ? var.control_plane.memory : var.worker.memory
  cpu_type = contains(local.gpu_workers, each.key) ? "host" : "x86-64-v2-AES"

  # UEFI on q35 for the GPU workers (the usual way for a modern GPU's ROM).
  machine          = "q35"
  bios             = contains(local.gpu_workers, each.key) ? "ovmf" : "seabios"
  efi_disk_storage = contains(local.gpu_workers, each.key) ? var.vm_storage : null
  memory_floating  = contains(local.gpu_workers, each.key) ? 0 : null
  pci_devices = contains(local.gpu_workers, each.key) ? [{
    mapping = var.gpu_mapping
    pcie    = true
  }] : null

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

  lifecycle {
    create_before_destroy = true
  }
}

# ---- Talos: the whole cluster --------------------------------------------------

resource "proxtalos_machine_secrets" "this" {
  talos_version = regex("^v[0-9]+\\.[0-9]+", var.talos_version)

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
  schematic_id         = proxtalos_image_factory_schematic.gpu.id
  kubernetes_version   = var.kubernetes_version

  control_plane_patches = concat(local.vip_patch, local.runtime_class_patch)

  dynamic "control_plane" {
    for_each = local.control_planes
    content {
      name         = "${var.cluster_name}-${control_plane.key}"
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
      # The GPU workers load the driver.
      config_patches = contains(local.gpu_workers, worker.key) && local.vendor.patch != null ? [local.vendor.patch] : []
    }
  }

  rollout {
    health_timeout = "10m"
    drain_timeout  = "5m"
  }
}

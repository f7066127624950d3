# Longhorn on Talos on Proxmox VE: the cluster example's 3 control planes and
# 2 workers, with what Longhorn asks of a Talos node
# (https://longhorn.io/docs/latest/advanced-resources/os-distro-specific/talos-linux-support/):
#
# - the iscsi-tools and util-linux-tools system extensions, through an Image
#   Factory schematic whose id flows to the ISO and to the installer, so an
#   upgrade keeps them;
# - a data disk per worker (scsi1, left out of backups and replication: Longhorn
#   replicates itself), formatted and mounted by Talos as the user volume
#   `longhorn` (UserVolumeConfig, Talos v1.10+) at /var/mnt/longhorn;
# - that path bind-mounted into the kubelet with rshared propagation;
# - optionally the kernel modules and huge pages of the V2 data engine.
#
# Then install Longhorn itself (Helm) with defaultDataPath=/var/mnt/longhorn
# and its namespace labelled for privileged pods (docs/guides/longhorn.md).
# The same file runs against a real Proxmox and the lab
# (scripts/quickstart.sh --example longhorn).

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

  # Every worker: the data disk as a Talos user volume, mounted at
  # /var/mnt/longhorn, and that path in the kubelet's mount namespace.
  longhorn_patches = concat(
    [
      yamlencode({
        apiVersion = "v1alpha1"
        kind       = "UserVolumeConfig"
        name       = "longhorn"
        provisioning = {
          # The one disk that is not the system disk: scsi1. A fixed
          # minimum, then the whole disk (grow): a larger disk changes the
          # VM only, never the Talos configuration.
          diskSelector = { match = "!system_disk" }
          minSize      = "10GiB"
          grow         = true
        }
        filesystem = { type = "xfs" }
      }),
      yamlencode({
        machine = {
          kubelet = {
            extraMounts = [{
              destination = "/var/mnt/longhorn"
              type        = "bind"
              source      = "/var/mnt/longhorn"
              options     = ["bind", "rshared", "rw"]
            }]
          }
        }
      }),
    ],
    var.longhorn_v2_data_engine ? [yamlencode({
      machine = {
        kernel  = { modules = [{ name = "nvme_tcp" }, { name = "vfio_pci" }, { name = "uio_pci_generic" }] }
        sysctls = { "vm.nr_hugepages" = "1024" }
      }
    })] : [],
  )
}

# ---- Image Factory: the extensions ---------------------------------------------

resource "proxtalos_image_factory_schematic" "longhorn" {
  schematic = yamlencode({
    customization = { systemExtensions = { officialExtensions = var.extensions } }
  })
  talos_version = var.talos_version
}

# ---- Proxmox: the ISO of that schematic and the VMs ------------------------------

resource "proxtalos_image" "talos" {
  node          = var.proxmox_node
  storage       = var.iso_storage
  content       = "iso"
  schematic_id  = proxtalos_image_factory_schematic.longhorn.id
  talos_version = var.talos_version
  factory_url   = proxtalos_image_factory_schematic.longhorn.factory_url
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

  disks = concat(
    [{
      interface = "scsi0"
      storage   = var.vm_storage
      size      = each.value.type == "controlplane" ? var.control_plane.disk_gb : var.worker.disk_gb
      ssd       = true
      discard   = true
      iothread  = true
      backup    = true
      replicate = true
    }],
    # Longhorn's disk: grown in place when longhorn_disk_gb grows, never
    # touched by an unrelated change; vzdump and replication skip it.
    each.value.type == "worker" ? [{
      interface = "scsi1"
      storage   = var.vm_storage
      size      = var.longhorn_disk_gb
      ssd       = true
      discard   = true
      iothread  = true
      backup    = false
      replicate = false
    }] : [],
  )

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
  # The installer of the same schematic: upgrades keep the extensions.
  schematic_id       = proxtalos_image_factory_schematic.longhorn.id
  kubernetes_version = var.kubernetes_version

  control_plane_patches = local.vip_patch
  worker_patches        = local.longhorn_patches

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
    }
  }

  rollout {
    health_timeout = "10m"
    drain_timeout  = "5m"
  }
}

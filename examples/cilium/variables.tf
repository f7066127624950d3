# ---- Proxmox VE connection -------------------------------------------------
# Leave these null to use the environment instead: PROXMOX_VE_ENDPOINT,
# PROXMOX_VE_API_TOKEN (or PROXMOX_VE_USERNAME/PROXMOX_VE_PASSWORD) and
# PROXMOX_VE_INSECURE.

variable "proxmox_endpoint" {
  description = "Proxmox VE API URL, e.g. https://pve.example.com:8006/ (null: PROXMOX_VE_ENDPOINT)."
  type        = string
  default     = null
}

variable "proxmox_api_token" {
  description = "API token USER@REALM!TOKENID=SECRET (null: PROXMOX_VE_API_TOKEN)."
  type        = string
  default     = null
  sensitive   = true
}

variable "proxmox_ca_certificate_file" {
  description = "PEM file of the CA that signed the PVE certificate (null: the system roots)."
  type        = string
  default     = null
}

variable "proxmox_insecure" {
  description = "Skip TLS verification of the PVE API (prefer proxmox_ca_certificate_file). Null: PROXMOX_VE_INSECURE."
  type        = bool
  default     = null
}

# ---- Where the VMs go ------------------------------------------------------

variable "proxmox_node" {
  description = "PVE node that runs the VMs and downloads the Talos ISO."
  type        = string
  default     = "pve1"
}

variable "iso_storage" {
  description = "File storage with the `iso` content type, for the Talos ISO."
  type        = string
  default     = "local"
}

variable "vm_storage" {
  description = "Storage for the VM disks and the cloud-init drives."
  type        = string
  default     = "local-lvm"
}

variable "bridge" {
  description = "Network bridge of the VMs' NIC."
  type        = string
  default     = "vmbr0"
}

variable "vlan_id" {
  description = "VLAN tag of the NIC (null: untagged)."
  type        = number
  default     = null
}

# ---- Addresses -------------------------------------------------------------

variable "network_cidr" {
  description = "Network the nodes' static addresses are taken from, e.g. 10.0.0.0/24."
  type        = string
  default     = "10.0.0.0/24"

  validation {
    condition     = can(cidrhost(var.network_cidr, 0))
    error_message = "network_cidr must be an IPv4 network such as 10.0.0.0/24."
  }
}

variable "first_host" {
  description = "Host number in network_cidr where the nodes' addresses start: control planes at first_host + 0 … 9, workers from first_host + 10 on."
  type        = number
  default     = 11

  validation {
    condition     = var.first_host >= 1 && can(cidrhost(var.network_cidr, var.first_host + 10 + var.worker_count))
    error_message = "Every node's address must lie in network_cidr: host numbers first_host … first_host + 10 + worker_count."
  }
}

variable "control_plane_count" {
  description = "How many control planes (cp-1, cp-2, …). Their addresses are host numbers first_host + 0 … 9 of network_cidr, one per node whatever the count: scaling adds or removes only the last ones. Keep it odd (1, 3, 5) for etcd."
  type        = number
  default     = 3

  validation {
    condition     = var.control_plane_count >= 1 && var.control_plane_count <= 10 && floor(var.control_plane_count) == var.control_plane_count
    error_message = "control_plane_count must be a whole number from 1 to 10."
  }
}

variable "worker_count" {
  description = "How many workers (worker-1, worker-2, …), at host numbers first_host + 10 and up of network_cidr."
  type        = number
  default     = 2

  validation {
    condition     = var.worker_count >= 0 && floor(var.worker_count) == var.worker_count
    error_message = "worker_count must be a whole number >= 0."
  }
}

variable "gateway" {
  description = "Default gateway of the nodes (null: none)."
  type        = string
  default     = null
}

variable "dns_servers" {
  description = "Name servers the nodes get through cloud-init."
  type        = list(string)
  default     = ["1.1.1.1", "9.9.9.9"]
}

# ---- Cluster ---------------------------------------------------------------

variable "cluster_name" {
  description = "Cluster name (talosconfig context and cluster.clusterName)."
  type        = string
  default     = "quickstart"
}

variable "cluster_endpoint" {
  description = "Kubernetes API URL, e.g. https://k8s.example.net:6443 (a load balancer). Null: the control planes' shared VIP (vip_address), else the first control plane's address."
  type        = string
  default     = null
}

variable "vip_address" {
  description = "Shared IP the control planes hold in turn (Talos's Layer 2 VIP), so that the endpoint survives the reboot of any control plane. Null: host number first_host - 1 of network_cidr. \"\": no VIP. It must be a free address in the nodes' layer 2 network."
  type        = string
  default     = null

  validation {
    condition     = var.vip_address == null || var.vip_address == "" || can(cidrhost("${coalesce(var.vip_address, "0.0.0.0")}/32", 0))
    error_message = "vip_address must be an IPv4 address such as 10.0.0.10, or \"\" for no VIP."
  }
}

variable "vip_link" {
  description = "The control planes' link the VIP goes on. Proxmox puts a VM's net0 (virtio) at PCI slot 0x12, which Talos (predictable interface names) calls ens18."
  type        = string
  default     = "ens18"
}

variable "talos_version" {
  description = "Talos version every node runs, and of the ISO new VMs boot. Change it and apply to upgrade the cluster in place, one node at a time (docs/guides/day-2.md)."
  type        = string
  default     = "v1.13.9"

  validation {
    condition     = can(regex("^v1\\.1[0-9]\\.[0-9]+$", var.talos_version))
    error_message = "talos_version must be vX.Y.Z with Talos v1.10 or later, e.g. v1.13.9."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes version, e.g. 1.34.1."
  type        = string
  default     = "1.34.1"
}

variable "schematic_id" {
  description = "Talos Image Factory schematic (default: no system extensions)."
  type        = string
  default     = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
}

variable "install_disk" {
  description = "Disk Talos installs to inside the VMs."
  type        = string
  default     = "/dev/sda"
}

# ---- VM sizes --------------------------------------------------------------

variable "control_plane" {
  description = "Control-plane VM size."
  type        = object({ cores = number, memory = number, disk_gb = number })
  default     = { cores = 2, memory = 4096, disk_gb = 20 }
}

variable "worker" {
  description = "Worker VM size."
  type        = object({ cores = number, memory = number, disk_gb = number })
  default     = { cores = 2, memory = 4096, disk_gb = 20 }
}

variable "cilium_version" {
  description = "The Cilium release the bootstrap Job installs (cilium install --version). It matters at bootstrap only: upgrade a running Cilium with cilium upgrade or Helm (docs/guides/cilium.md)."
  type        = string
  default     = "1.18.4"
}

variable "cilium_cli_image" {
  description = "The image with the cilium CLI that runs the install Job once, at bootstrap (Talos's Cilium guide uses quay.io/cilium/cilium-cli-ci:latest; pin a tag or a digest in production)."
  type        = string
  default     = "quay.io/cilium/cilium-cli-ci:latest"
}

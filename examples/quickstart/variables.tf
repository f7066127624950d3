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

variable "proxmox_nodes" {
  description = "PVE nodes to spread the VMs over (control planes on different nodes while they have room, workers likewise), chosen at create and then kept; empty: every VM on proxmox_node. With several nodes, iso_storage must be shared (NFS, CephFS): a VM may start on any of them."
  type        = list(string)
  default     = []
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
  description = "Host number in network_cidr where the nodes' addresses start: a node's address is host number first_host + its `host` (see `nodes`)."
  type        = number
  default     = 11

  validation {
    condition     = var.first_host >= 1 && alltrue([for n in values(var.nodes) : can(cidrhost(var.network_cidr, var.first_host + n.host))])
    error_message = "Every node's address must lie in network_cidr: host numbers first_host + host of each node in nodes."
  }
}

variable "nodes" {
  description = "The cluster's nodes by name (the VM is <cluster_name>-<name>): `type` is controlplane or worker, and `host` the node's own, fixed place in the address range (address = host number first_host + host of network_cidr). Give a new node a new host; removing a node moves no other."
  type        = map(object({ type = string, host = number }))
  default = {
    "cp-1"     = { type = "controlplane", host = 0 }
    "cp-2"     = { type = "controlplane", host = 1 }
    "cp-3"     = { type = "controlplane", host = 2 }
    "worker-1" = { type = "worker", host = 3 }
    "worker-2" = { type = "worker", host = 4 }
  }

  validation {
    condition     = alltrue([for n in values(var.nodes) : contains(["controlplane", "worker"], n.type) && n.host >= 0 && floor(n.host) == n.host])
    error_message = "Each node needs type = \"controlplane\" or \"worker\" and a whole host number >= 0."
  }
  validation {
    condition     = length(distinct([for n in values(var.nodes) : n.host])) == length(var.nodes)
    error_message = "Two nodes share a host number: each node needs its own host."
  }
  validation {
    condition     = length([for n in values(var.nodes) : n if n.type == "controlplane"]) >= 1
    error_message = "At least one node must be a controlplane."
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
  description = "Kubernetes API URL, e.g. https://10.0.0.10:6443 (a VIP or load balancer). Null: the first control plane's address."
  type        = string
  default     = null
}

variable "talos_version" {
  description = "Talos version of the ISO and the configurations (v1.12 or later: the per-node patch is a HostnameConfig document)."
  type        = string
  default     = "v1.13.9"

  validation {
    condition     = can(regex("^v1\\.(1[2-9])\\.[0-9]+$", var.talos_version))
    error_message = "talos_version must be vX.Y.Z with Talos v1.12 or later, e.g. v1.13.9."
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

# Cilium as the CNI, with kube-proxy replaced, on Talos on Proxmox VE: the
# cluster example's 3 control planes and 2 workers with what Cilium's and
# Talos's guides ask for
# (https://www.talos.dev/latest/kubernetes-guides/network/deploying-cilium/,
# https://docs.cilium.io/en/stable/installation/k8s-install-helm/):
#
# - no CNI from Talos (`cluster.network.cni.name: none`) and no kube-proxy
#   (`cluster.proxy.disabled: true`);
# - KubePrism on (localhost:7445 on every node: the API server for Cilium
#   before any Service works);
# - Cilium installed once at bootstrap by an inline manifest: a Job on a
#   control plane that runs `cilium install` with the values Talos needs
#   (IPAM from Kubernetes, kube-proxy replacement, Talos's cgroup mount,
#   no SYS_MODULE, the API at localhost:7445).
#
# Later Cilium upgrades are Cilium's (Helm or `cilium upgrade`); see
# docs/guides/cilium.md. The same file runs against a real Proxmox and the
# lab (scripts/quickstart.sh --example cilium).

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

  # Every node: no Talos CNI, no kube-proxy, KubePrism on.
  cilium_patch = yamlencode({
    cluster = {
      network = { cni = { name = "none" } }
      proxy   = { disabled = true }
    }
    machine = {
      features = { kubePrism = { enabled = true, port = 7445 } }
    }
  })

  # The values Cilium needs on Talos.
  cilium_values = [
    "ipam.mode=kubernetes",
    "kubeProxyReplacement=true",
    "securityContext.capabilities.ciliumAgent={CHOWN,KILL,NET_ADMIN,NET_RAW,IPC_LOCK,SYS_ADMIN,SYS_RESOURCE,DAC_OVERRIDE,FOWNER,SETGID,SETUID}",
    "securityContext.capabilities.cleanCiliumState={NET_ADMIN,SYS_ADMIN,SYS_RESOURCE}",
    "cgroup.autoMount.enabled=false",
    "cgroup.hostRoot=/sys/fs/cgroup",
    "k8sServiceHost=localhost",
    "k8sServicePort=7445",
  ]

  # The install Job, as bootstrap manifests (applied by the control planes,
  # kept in sync by Talos): it runs on the host network of a control plane,
  # before any CNI, tolerating the not-ready taints.
  cilium_install = join("---\n", [
    yamlencode({
      apiVersion = "v1", kind = "ServiceAccount"
      metadata   = { name = "cilium-install", namespace = "kube-system" }
    }),
    yamlencode({
      apiVersion = "rbac.authorization.k8s.io/v1", kind = "ClusterRoleBinding"
      metadata   = { name = "cilium-install" }
      roleRef    = { apiGroup = "rbac.authorization.k8s.io", kind = "ClusterRole", name = "cluster-admin" }
      subjects   = [{ kind = "ServiceAccount", name = "cilium-install", namespace = "kube-system" }]
    }),
    yamlencode({
      apiVersion = "batch/v1", kind = "Job"
      metadata   = { name = "cilium-install", namespace = "kube-system" }
      spec = {
        backoffLimit = 10
        template = {
          metadata = { labels = { app = "cilium-install" } }
          spec = {
            restartPolicy      = "OnFailure"
            serviceAccountName = "cilium-install"
            hostNetwork        = true
            tolerations = [
              { operator = "Exists" },
              { effect = "NoSchedule", operator = "Exists" },
              { effect = "NoExecute", operator = "Exists" },
              { effect = "PreferNoSchedule", operator = "Exists" },
              { key = "node-role.kubernetes.io/control-plane", operator = "Exists", effect = "NoSchedule" },
            ]
            affinity = {
              nodeAffinity = {
                requiredDuringSchedulingIgnoredDuringExecution = {
                  nodeSelectorTerms = [{ matchExpressions = [{ key = "node-role.kubernetes.io/control-plane", operator = "Exists" }] }]
                }
              }
            }
            containers = [{
              name  = "cilium-install"
              image = var.cilium_cli_image
              env = [
                { name = "KUBERNETES_SERVICE_HOST", valueFrom = { fieldRef = { apiVersion = "v1", fieldPath = "status.podIP" } } },
                { name = "KUBERNETES_SERVICE_PORT", value = "6443" },
              ]
              command = concat(
                ["cilium", "install", "--version", var.cilium_version],
                flatten([for v in local.cilium_values : ["--set", v]]),
              )
            }]
          }
        }
      }
    }),
  ])
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
  schematic_id         = var.schematic_id
  kubernetes_version   = var.kubernetes_version

  config_patches = [local.cilium_patch]
  control_plane_patches = concat(local.vip_patch, [yamlencode({
    cluster = { inlineManifests = [{ name = "cilium-install", contents = local.cilium_install }] }
  })])

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

# A Talos control-plane node: UEFI, booting the Talos nocloud ISO, with a
# static address from cloud-init so it comes up where the cluster expects it.
resource "proxtalos_vm" "talos_cp" {
  node        = "pve1"
  name        = "talos-cp-1"
  description = "Talos control plane (managed by Terraform)"
  tags        = ["talos", "control-plane"]

  cores    = 2
  cpu_type = "host"
  memory   = 4096

  machine          = "q35"
  bios             = "ovmf"
  efi_disk_storage = "local-lvm"
  scsi_hardware    = "virtio-scsi-single"

  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 20, ssd = true, discard = true, iothread = true },
  ]

  network_devices = [
    { bridge = "vmbr0", model = "virtio" },
  ]

  cdrom {
    interface = "ide2"
    file      = "local:iso/talos-nocloud-amd64.iso"
  }

  cloud_init {
    storage     = "local-lvm"
    interface   = "ide0"
    dns_servers = ["1.1.1.1", "9.9.9.9"]
    ip_configs = [
      { ipv4 = "10.0.0.11/24", ipv4_gateway = "10.0.0.1" },
    ]
  }

  # The guest agent needs the siderolabs/qemu-guest-agent extension in the
  # Talos image; without it, leave it off (addresses come from cloud-init).
  agent          = false
  serial_console = true
  on_boot        = true
  started        = true

  timeouts {
    create = "20m"
    delete = "10m"
  }
}

# A GPU worker: the GPU passed through by a PCI resource mapping `gpu0`
# that maps a device on pve1 (made in Datacenter → Resource Mappings, or
# with proxtalos_pci_mapping; the plan checks it), which an API token may use
# with Mapping.Use; a raw host device (`device = "0000:01:00.0"`) needs
# root@pam. Its memory is pinned, so no balloon.
resource "proxtalos_vm" "talos_gpu_worker" {
  node             = "pve1"
  name             = "talos-gpu-1"
  tags             = ["talos", "worker", "gpu"]
  cores            = 8
  cpu_type         = "host"
  memory           = 16384
  memory_floating  = 0
  machine          = "q35"
  bios             = "ovmf"
  efi_disk_storage = "local-lvm"
  # TPM 2.0 state, for Talos's TPM-sealed disk encryption.
  tpm_state_storage = "local-lvm"

  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 50, ssd = true, discard = true, iothread = true },
  ]
  network_devices = [
    { bridge = "vmbr0", model = "virtio" },
  ]
  pci_devices = [
    { mapping = "gpu0", pcie = true },
  ]
}

output "talos_cp_address" {
  value = proxtalos_vm.talos_cp.ipv4_addresses[0]
}

# A GPU (with its audio function) mapped on the node that has it, and a
# worker that passes it through by the mapping: an API token with
# `Mapping.Use` on /mapping/pci/rtx3090 may do that, where a raw address needs
# root@pam's password. The VM names the mapping's `id`, so it is planned
# after the mapping exists.
resource "proxtalos_pci_mapping" "gpu" {
  name        = "rtx3090"
  description = "NVIDIA RTX 3090"
  map = [
    { node = "pve1", path = "0000:01:00.0;0000:01:00.1", device_id = "10de:2204", iommu_group = 12 },
  ]
}

resource "proxtalos_vm" "gpu_worker" {
  node             = "pve1"
  name             = "talos-gpu-1"
  memory           = 16384
  machine          = "q35"
  bios             = "ovmf"
  efi_disk_storage = "local-lvm"
  started          = false
  disks            = [{ interface = "scsi0", storage = "local-lvm", size = 50 }]
  pci_devices = [
    { mapping = proxtalos_pci_mapping.gpu.id, pcie = true },
  ]
}

# The Talos nocloud disk image from the Image Factory, downloaded by PVE as
# `import` content (PVE 8.4+; add `import` to the storage's content types),
# then imported as a VM's boot disk.
resource "proxtalos_image" "talos" {
  node          = "pve1"
  storage       = "local"
  content       = "import"
  schematic_id  = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
  talos_version = "v1.11.2"
  platform      = "nocloud"
  arch          = "amd64"
}

# The ISO variant, for a CD-ROM boot.
resource "proxtalos_image" "talos_iso" {
  node    = "pve1"
  storage = "local"
  content = "iso"
  url     = "https://factory.talos.dev/image/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba/v1.11.2/nocloud-amd64.iso"
}

resource "proxtalos_vm" "talos_worker" {
  node = "pve1"
  name = "talos-worker-1"
  disks = [
    { interface = "scsi0", storage = "local-lvm", import_from = proxtalos_image.talos.id },
  ]
  network_devices = [{ bridge = "vmbr0" }]
}

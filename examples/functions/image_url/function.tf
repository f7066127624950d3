terraform {
  required_version = ">= 1.8"
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

locals {
  schematic_id = provider::proxtalos::schematic_id(yamlencode({}))
}

# The ISO a Proxmox VM boots, and the disk image it could import instead.
output "iso" {
  value = provider::proxtalos::image_url(local.schematic_id, "v1.13.9", "nocloud", "amd64", false, "iso")
}

output "qcow2" {
  value = provider::proxtalos::image_url(local.schematic_id, "v1.13.9", "nocloud", "amd64", false, "qcow2")
}

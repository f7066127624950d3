terraform {
  required_version = ">= 1.8"
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

locals {
  schematic_id = provider::proxtalos::schematic_id(yamlencode({
    customization = { systemExtensions = { officialExtensions = ["siderolabs/qemu-guest-agent"] } }
  }))
}

# The installer a machine configuration's machine.install.image names.
output "installer" {
  value = provider::proxtalos::installer_image(local.schematic_id, "v1.13.9", false)
}

output "secureboot_installer" {
  value = provider::proxtalos::installer_image(local.schematic_id, "v1.13.9", true)
}

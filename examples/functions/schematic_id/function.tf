terraform {
  required_version = ">= 1.8"
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

# The id the Image Factory gives this schematic, without asking it: the
# same document (however it is written) always has the same id.
locals {
  schematic = yamlencode({
    customization = {
      extraKernelArgs = ["net.ifnames=0"]
      systemExtensions = {
        officialExtensions = ["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"]
      }
    }
  })
}

output "schematic_id" {
  value = provider::proxtalos::schematic_id(local.schematic)
}

# The schematic without customizations, the examples' default.
output "empty_schematic_id" {
  value = provider::proxtalos::schematic_id(yamlencode({}))
}

# Adopt the Talos VMs of a homelab made by hand (or by another provider):
#
#   terraform query                                    # what would be adopted
#   terraform query -generate-config-out=adopt.tf      # resource + import blocks
#   terraform apply                                    # imports them, changes nothing
#
# The provider block (with the `proxmox` settings) lives in a .tf file beside
# this .tfquery.hcl file.
list "proxtalos_vm" "talos" {
  provider         = proxtalos
  include_resource = true

  config {
    node       = "pve1"
    tags       = ["talos"]
    name_regex = "^talos-"
  }
}

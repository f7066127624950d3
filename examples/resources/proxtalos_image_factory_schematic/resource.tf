# The extensions Longhorn needs, as an Image Factory schematic: the id is
# computed locally (the plan shows it), registered with the factory on
# create, and every official extension is checked against the factory's
# list for `talos_version` at plan time.
resource "proxtalos_image_factory_schematic" "longhorn" {
  schematic = yamlencode({
    customization = {
      systemExtensions = {
        officialExtensions = [
          "siderolabs/iscsi-tools",
          "siderolabs/util-linux-tools",
          "siderolabs/qemu-guest-agent",
        ]
      }
    }
  })
  talos_version = "v1.11.5"
}

# The boot ISO of that schematic, downloaded by PVE from the same factory.
resource "proxtalos_image" "longhorn_iso" {
  node          = "pve1"
  storage       = "local"
  content       = "iso"
  schematic_id  = proxtalos_image_factory_schematic.longhorn.id
  talos_version = proxtalos_image_factory_schematic.longhorn.talos_version
  factory_url   = proxtalos_image_factory_schematic.longhorn.factory_url
}

# What `machine.install.image` names, so an upgrade installs the same
# extensions: factory.talos.dev/installer/<id>:v1.11.5.
output "installer_image" {
  value = proxtalos_image_factory_schematic.longhorn.installer_image
}

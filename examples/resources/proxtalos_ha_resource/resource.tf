# A control plane the HA manager restarts on another node if its node
# fails (its disks on shared storage in a real cluster). From now on the
# manager owns the VM's power: keep `started` and `state` in agreement.
resource "proxtalos_vm" "talos_cp" {
  node   = "pve1"
  name   = "talos-cp-1"
  memory = 4096
  disks  = [{ interface = "scsi0", storage = "local-lvm", size = 10 }]
}

resource "proxtalos_ha_resource" "talos_cp" {
  vm_id        = proxtalos_vm.talos_cp.vm_id
  state        = "started"
  max_relocate = 2
  comment      = "Talos control plane"
}

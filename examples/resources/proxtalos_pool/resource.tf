# One pool for the cluster's VMs, so that PVE permissions (`/pool/talos`)
# and a backup job can name the whole cluster.
resource "proxtalos_pool" "talos" {
  pool_id = "talos"
  comment = "Talos cluster"
}

resource "proxtalos_vm" "talos_cp" {
  node    = "pve1"
  name    = "talos-cp-1"
  pool    = proxtalos_pool.talos.pool_id
  memory  = 4096
  started = false
  disks   = [{ interface = "scsi0", storage = "local-lvm", size = 10 }]
}

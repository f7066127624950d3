terraform {
  required_version = ">= 1.14"
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

resource "proxtalos_vm" "worker" {
  node    = "pve1"
  name    = "talos-worker-1"
  memory  = 4096
  started = true

  disks = [
    { interface = "scsi0", storage = "local-lvm", size = 20 },
  ]
}

# Restart a worker's VM the hard way when its guest no longer answers:
#
# terraform apply -invoke=action.proxtalos_vm_power.reset_worker
action "proxtalos_vm_power" "reset_worker" {
  config {
    node      = proxtalos_vm.worker.node
    vm_id     = proxtalos_vm.worker.vm_id
    operation = "reset"
  }
}

# A clean shutdown that powers the VM off if the guest has not gone down
# within two minutes.
#
# terraform apply -invoke=action.proxtalos_vm_power.shutdown_worker
action "proxtalos_vm_power" "shutdown_worker" {
  config {
    node       = proxtalos_vm.worker.node
    vm_id      = proxtalos_vm.worker.vm_id
    operation  = "shutdown"
    timeout    = "2m"
    force_stop = true
  }
}

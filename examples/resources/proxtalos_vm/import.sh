# A VM is imported by its node and VMID.
terraform import proxtalos_vm.talos_cp pve1/100

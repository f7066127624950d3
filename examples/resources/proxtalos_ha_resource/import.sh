# An HA resource is imported by its VM's VMID (or `vm:100`).
terraform import proxtalos_ha_resource.talos_cp 100

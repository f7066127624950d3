# An image is imported by its node and volume id.
terraform import proxtalos_image.talos pve1/local:import/talos-v1.11.2-nocloud-amd64-37656798.qcow2

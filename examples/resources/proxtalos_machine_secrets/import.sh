# Adopt a cluster made with talosctl: the import id is the path to the
# secrets.yaml written by `talosctl gen secrets` (or the YAML itself).
# Leave talos_version unset in the resource block so the plan stays empty.
terraform import proxtalos_machine_secrets.this ./secrets.yaml

# Terraform >= 1.5 can do the same with an import block:
#
# import {
#   to = proxtalos_machine_secrets.this
#   id = "./secrets.yaml"
# }

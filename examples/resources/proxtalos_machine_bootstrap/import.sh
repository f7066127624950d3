# Mark an existing, already bootstrapped cluster as bootstrapped: the import
# id is the control-plane node address.
terraform import proxtalos_machine_bootstrap.this 10.0.0.11

# Terraform >= 1.5:
#
# import {
#   to = proxtalos_machine_bootstrap.this
#   id = "10.0.0.11"
# }

terraform {
  required_providers {
    proxtalos = { source = "proxtalos/proxtalos" }
  }
}

provider "proxtalos" {}

# The cluster's secrets bundle and an os:admin client certificate, generated
# locally. The certificate is re-issued by any plan made within 30 days of
# its expiry.
resource "proxtalos_machine_secrets" "this" {
  talos_version = "v1.13"

  client_certificate_ttl            = "8760h"
  client_certificate_renewal_window = "720h"
}

output "client_certificate_expires_at" {
  value = proxtalos_machine_secrets.this.client_certificate_expires_at
}

terraform {
  required_providers {
    proxtalos = {
      source = "proxtalos/proxtalos"
    }
  }
}

# Proxmox settings can also come from the environment variables
# PROXMOX_VE_ENDPOINT, PROXMOX_VE_API_TOKEN (or PROXMOX_VE_USERNAME and
# PROXMOX_VE_PASSWORD) and PROXMOX_VE_INSECURE, as with bpg/proxmox.
provider "proxtalos" {
  proxmox {
    endpoint       = "https://pve.example.com:8006/"
    api_token      = var.proxmox_api_token
    ca_certificate = file("pve-root-ca.pem")
  }
}

variable "proxmox_api_token" {
  type      = string
  sensitive = true
}

# A PCI mapping is imported by its name.
terraform import proxtalos_pci_mapping.gpu rtx3090

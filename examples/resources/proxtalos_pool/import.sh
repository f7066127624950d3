# A pool is imported by its id.
terraform import proxtalos_pool.talos talos

//! Resources, data sources and ephemeral resources: one file each, or a
//! folder for one that needs several (`vm/{mod,model,plan,schema,validate}.rs`,
//! `machine_configuration_apply/{mod,schema,tests}.rs`, ...). Helpers more
//! than one of them uses live in [`shared`]. Each holds the schema, the
//! model mapping, the CRUD calls into the clients and unit tests for that
//! mapping.

use std::sync::Arc;

use crate::data::ProxtalosData;
use crate::plugin::{DataSource, EphemeralResource, Resource};

pub mod actions;
pub mod client_configuration;
pub mod cluster;
pub mod cluster_health;
pub mod cluster_kubeconfig;
pub mod functions;
pub mod ha_resource;
pub mod image;
pub mod image_factory_schematic;
pub mod machine_bootstrap;
pub mod machine_configuration;
pub mod machine_configuration_apply;
pub mod machine_configuration_ephemeral;
pub mod machine_secrets;
pub mod machine_secrets_ephemeral;
pub mod pci_mapping;
pub mod pool;
pub mod shared;
pub mod vm;

/// Every managed resource type.
pub fn resources() -> Vec<Arc<dyn Resource<ProxtalosData>>> {
    vec![
        Arc::new(machine_secrets::MachineSecrets::default()),
        Arc::new(machine_configuration_apply::MachineConfigurationApply),
        Arc::new(machine_bootstrap::MachineBootstrap),
        Arc::new(cluster_kubeconfig::ClusterKubeconfig::default()),
        Arc::new(vm::VmResource),
        Arc::new(image::ImageResource),
        Arc::new(image_factory_schematic::ImageFactorySchematic),
        Arc::new(cluster::Cluster),
        Arc::new(pool::PoolResource),
        Arc::new(pci_mapping::PciMappingResource),
        Arc::new(ha_resource::HaResourceResource),
    ]
}

/// Every data source type.
pub fn data_sources() -> Vec<Arc<dyn DataSource<ProxtalosData>>> {
    vec![
        Arc::new(machine_configuration::MachineConfiguration),
        Arc::new(client_configuration::ClientConfigurationData),
        Arc::new(cluster_health::ClusterHealth),
    ]
}

/// Every ephemeral resource type.
pub fn ephemeral_resources() -> Vec<Arc<dyn EphemeralResource<ProxtalosData>>> {
    vec![
        Arc::new(machine_secrets_ephemeral::MachineSecretsEphemeral::default()),
        Arc::new(machine_configuration_ephemeral::MachineConfigurationEphemeral),
        Arc::new(cluster_kubeconfig::ClusterKubeconfigEphemeral),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn vm_schema_is_consistent() {
        let s = super::vm::schema::schema();
        assert!(s.check().is_empty(), "{:?}", s.check());
    }
}

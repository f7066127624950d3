//! Resources, data sources and ephemeral resources, one file each (a
//! larger one split into `<name>_*.rs` files). Each holds the schema, the
//! model mapping, the CRUD calls into the clients and unit tests for that
//! mapping.

use std::sync::Arc;

use crate::data::ProxtalosData;
use crate::plugin::{DataSource, EphemeralResource, Resource};

pub mod client_configuration;
pub mod cluster_health;
pub mod cluster_kubeconfig;
pub mod common;
pub mod image;
pub mod machine_bootstrap;
pub mod machine_configuration;
pub mod machine_configuration_apply;
pub mod machine_configuration_ephemeral;
pub mod machine_secrets;
pub mod machine_secrets_ephemeral;
pub mod preflight;
pub mod talos_model;
pub mod talos_node;
pub mod vm;
pub mod vm_model;
pub mod vm_plan;
pub mod vm_schema;
pub mod vm_validate;

/// Every managed resource type.
pub fn resources() -> Vec<Arc<dyn Resource<ProxtalosData>>> {
    vec![
        Arc::new(machine_secrets::MachineSecrets::default()),
        Arc::new(machine_configuration_apply::MachineConfigurationApply),
        Arc::new(machine_bootstrap::MachineBootstrap),
        Arc::new(cluster_kubeconfig::ClusterKubeconfig::default()),
        Arc::new(vm::VmResource),
        Arc::new(image::ImageResource),
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
        let s = super::vm_schema::schema();
        assert!(s.check().is_empty(), "{:?}", s.check());
    }
}

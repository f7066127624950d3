//! Resources, data sources and ephemeral resources, one file each (a
//! larger one split into `<name>_*.rs` files). Each holds the schema, the
//! model mapping, the CRUD calls into the clients and unit tests for that
//! mapping.

use std::sync::Arc;

use crate::plugin::{DataSource, EphemeralResource, Resource};
use crate::provider::ProxtalosData;

pub mod image;
pub mod vm;
pub mod vm_model;
pub mod vm_schema;
pub mod vm_validate;

/// Every managed resource type.
pub fn resources() -> Vec<Arc<dyn Resource<ProxtalosData>>> {
    vec![Arc::new(vm::VmResource), Arc::new(image::ImageResource)]
}

/// Every data source type.
pub fn data_sources() -> Vec<Arc<dyn DataSource<ProxtalosData>>> {
    Vec::new()
}

/// Every ephemeral resource type.
pub fn ephemeral_resources() -> Vec<Arc<dyn EphemeralResource<ProxtalosData>>> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn vm_schema_is_consistent() {
        let s = super::vm_schema::schema();
        assert!(s.check().is_empty(), "{:?}", s.check());
    }
}

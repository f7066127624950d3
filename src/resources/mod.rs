//! Resources, data sources and ephemeral resources, one file each.
//! Each file holds the schema, the model mapping, the CRUD calls into the
//! clients and unit tests for that mapping.

use std::sync::Arc;

use crate::plugin::{DataSource, EphemeralResource, Resource};
use crate::provider::ProxtalosData;

/// Every managed resource type.
pub fn resources() -> Vec<Arc<dyn Resource<ProxtalosData>>> {
    Vec::new()
}

/// Every data source type.
pub fn data_sources() -> Vec<Arc<dyn DataSource<ProxtalosData>>> {
    Vec::new()
}

/// Every ephemeral resource type.
pub fn ephemeral_resources() -> Vec<Arc<dyn EphemeralResource<ProxtalosData>>> {
    Vec::new()
}

//! Actions (protocol 6.10): the runbook steps `terraform apply
//! -invoke=action.<type>.<name>` runs. Each reports progress while it
//! runs and ends on Ctrl-C.

use std::sync::Arc;

use crate::data::ProxtalosData;
use crate::plugin::Action;

pub mod etcd_snapshot;

/// Every action type.
pub fn all() -> Vec<Arc<dyn Action<ProxtalosData>>> {
    vec![Arc::new(etcd_snapshot::EtcdSnapshot)]
}

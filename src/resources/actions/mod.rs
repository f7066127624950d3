//! Actions (protocol 6.10): the runbook steps `terraform apply
//! -invoke=action.<type>.<name>` runs. Each reports progress while it
//! runs and ends on Ctrl-C.

use std::sync::Arc;

use crate::data::ProxtalosData;
use crate::plugin::Action;

pub mod etcd_snapshot;
mod node;
pub mod node_reboot;
pub mod node_rollback;
pub mod vm_power;

/// Every action type.
pub fn all() -> Vec<Arc<dyn Action<ProxtalosData>>> {
    vec![
        Arc::new(etcd_snapshot::EtcdSnapshot),
        Arc::new(node_reboot::NodeReboot),
        Arc::new(node_rollback::NodeRollback),
        Arc::new(vm_power::VmPower),
    ]
}

//! What the v1alpha1 document refuses on a worker beyond its schema
//! (siderolabs/talos `pkg/machinery/config/types/v1alpha1/
//! v1alpha1_validation.go`, `case machine.TypeWorker`): a shared IP on an
//! interface or one of its VLANs ("virtual (shared) IP is not allowed on
//! non-controlplane nodes"). The v1.12+ `Layer2VIPConfig` document is only
//! advised against on workers upstream, not refused, so it passes.

use serde_yaml_ng::Value;

/// Talos's message for a worker's interface VIP.
pub(super) const WORKER_VIP: &str = "virtual (shared) IP is not allowed on non-controlplane nodes";

/// The path of the first interface (or VLAN) VIP of a worker's v1alpha1
/// document, if any.
pub(super) fn worker_vip(docs: &[Value]) -> Option<(usize, String)> {
    let (index, legacy) =
        docs.iter().enumerate().find(|(_, d)| d.get("version").and_then(Value::as_str) == Some("v1alpha1"))?;
    let machine = legacy.get("machine")?;
    if machine.get("type").and_then(Value::as_str) != Some("worker") {
        return None;
    }
    let interfaces = machine.get("network")?.get("interfaces")?.as_sequence()?;
    for (i, d) in interfaces.iter().enumerate() {
        if d.get("vip").is_some_and(|v| !v.is_null()) {
            return Some((index, format!("/machine/network/interfaces/{i}/vip")));
        }
        for (j, v) in d.get("vlans").and_then(Value::as_sequence).into_iter().flatten().enumerate() {
            if v.get("vip").is_some_and(|v| !v.is_null()) {
                return Some((index, format!("/machine/network/interfaces/{i}/vlans/{j}/vip")));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<Value> {
        crate::talos::yaml::parse_documents(text).unwrap()
    }

    #[test]
    fn a_workers_interface_or_vlan_vip_is_refused_a_control_planes_is_not() {
        let iface = "version: v1alpha1\nmachine:\n  type: {t}\n  network:\n    interfaces:\n      - interface: ens18\n        vip:\n          ip: 10.0.0.10\n";
        let worker = iface.replace("{t}", "worker");
        assert_eq!(worker_vip(&docs(&worker)), Some((0, "/machine/network/interfaces/0/vip".to_string())));
        assert_eq!(worker_vip(&docs(&iface.replace("{t}", "controlplane"))), None);
        let vlan = "version: v1alpha1\nmachine:\n  type: worker\n  network:\n    interfaces:\n      - interface: ens18\n        vlans:\n          - vlanId: 5\n            vip:\n              ip: 10.0.5.10\n";
        assert_eq!(worker_vip(&docs(vlan)), Some((0, "/machine/network/interfaces/0/vlans/0/vip".to_string())));
        let layer2 = "version: v1alpha1\nmachine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 10.0.0.10\nlink: ens18\n";
        assert_eq!(worker_vip(&docs(layer2)), None, "advised against upstream, not refused");
    }
}

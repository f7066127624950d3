//! Plan-time values of `proxtalos_vm`'s computed addresses.
//!
//! The framework marks every computed attribute unknown when anything in a
//! resource changes. For a VM's addresses that is wrong and harmful: a Talos
//! node's `node = proxtalos_vm.x.ipv4_addresses[0]` then becomes unknown on
//! a tag change, which replaces (and with `on_destroy` resets) the node. So
//! the addresses are planned from what decides them:
//!
//! - static cloud-init addresses are known from the configuration;
//! - without the guest agent the addresses *are* the static ones (or none);
//! - with the agent, the reported addresses keep their state value unless
//!   something that can change them changes (the NICs, cloud-init, the agent
//!   setting, the power state);
//! - MAC addresses keep their state value unless the NICs change, and are
//!   known wherever each NIC's MAC is.

use crate::plugin::Value;

use super::model::VmSpec;

/// Attributes whose change can change what the guest agent reports.
const ADDRESS_INPUTS: &[&str] = &["network_devices", "cloud_init", "agent", "started", "clone"];

/// Sets `mac_addresses`, `ipv4_addresses` and `ipv6_addresses` in `plan`
/// (a create when `prior` is null) to the values apply will produce, or
/// leaves them unknown where they cannot be known yet.
pub fn plan_addresses(prior: &Value, plan: &mut Value) {
    let agent = plan.attr("agent").as_bool();
    let nics_same = !prior.is_null() && prior.attr("network_devices").semantically_equal(plan.attr("network_devices"));
    let inputs_same = !prior.is_null() && ADDRESS_INPUTS.iter().all(|k| prior.attr(k).semantically_equal(plan.attr(k)));

    let macs = if nics_same { prior.attr("mac_addresses").clone() } else { planned_macs(plan) };
    plan.set_attr("mac_addresses", macs);

    let (v4, v6) = if inputs_same {
        (prior.attr("ipv4_addresses").clone(), prior.attr("ipv6_addresses").clone())
    } else if agent == Some(false) && plan.attr("cloud_init").is_fully_known() {
        let (v4, v6) = VmSpec::from_value(plan).static_addresses();
        (strings(v4), strings(v6))
    } else {
        (Value::Unknown, Value::Unknown)
    };
    plan.set_attr("ipv4_addresses", v4);
    plan.set_attr("ipv6_addresses", v6);
}

/// Each NIC's MAC when every one of them is known (given, or kept from
/// state); unknown while PVE has yet to generate one.
fn planned_macs(plan: &Value) -> Value {
    let nics = plan.attr("network_devices");
    if nics.is_null() {
        return Value::List(Vec::new());
    }
    let macs: Option<Vec<Value>> = nics.as_elements().and_then(|n| {
        n.iter().map(|n| n.attr("mac_address").as_str().map(|m| Value::string(m.to_ascii_uppercase()))).collect()
    });
    macs.map_or(Value::Unknown, Value::List)
}

fn strings(v: Vec<String>) -> Value {
    Value::List(v.into_iter().map(Value::string).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn nic(mac: Value) -> Value {
        Value::object([("bridge", Value::string("vmbr0")), ("mac_address", mac)])
    }

    fn ci(ipv4: Value) -> Value {
        Value::object([
            ("storage", Value::string("local-lvm")),
            ("ip_configs", Value::List(vec![Value::object([("ipv4", ipv4), ("ipv6", Value::Null)])])),
        ])
    }

    fn vm(agent: bool, mac: Value, ipv4: Value) -> Value {
        Value::object([
            ("agent", Value::Bool(agent)),
            ("started", Value::Bool(true)),
            ("tags", Value::List(vec![Value::string("talos")])),
            ("network_devices", Value::List(vec![nic(mac)])),
            ("cloud_init", ci(ipv4)),
            ("clone", Value::Null),
            ("mac_addresses", Value::Unknown),
            ("ipv4_addresses", Value::Unknown),
            ("ipv6_addresses", Value::Unknown),
        ])
    }

    fn state(agent: bool) -> Value {
        let mut s = vm(agent, Value::string("BC:24:11:00:00:01"), Value::string("10.0.0.11/24"));
        s.set_attr("mac_addresses", Value::List(vec![Value::string("BC:24:11:00:00:01")]));
        s.set_attr("ipv4_addresses", Value::List(vec![Value::string("10.0.0.11")]));
        s.set_attr("ipv6_addresses", Value::List(vec![]));
        s
    }

    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::string(*s)).collect())
    }

    #[test]
    fn create_without_agent_knows_the_static_addresses() {
        let mut plan = vm(false, Value::Unknown, Value::string("10.0.0.11/24"));
        plan_addresses(&Value::Null, &mut plan);
        assert_eq!(plan.attr("ipv4_addresses"), &list(&["10.0.0.11"]));
        assert_eq!(plan.attr("ipv6_addresses"), &list(&[]));
        assert!(plan.attr("mac_addresses").is_unknown(), "PVE generates the MAC");
    }

    #[test]
    fn create_without_cloud_init_or_agent_has_no_addresses() {
        let mut plan = vm(false, Value::string("bc:24:11:00:00:09"), Value::Null);
        plan.set_attr("cloud_init", Value::Null);
        plan_addresses(&Value::Null, &mut plan);
        assert_eq!(plan.attr("ipv4_addresses"), &list(&[]));
        assert_eq!(plan.attr("mac_addresses"), &list(&["BC:24:11:00:00:09"]));
    }

    #[test]
    fn create_with_agent_waits_for_it() {
        let mut plan = vm(true, Value::Unknown, Value::string("10.0.0.11/24"));
        plan_addresses(&Value::Null, &mut plan);
        assert!(plan.attr("ipv4_addresses").is_unknown());
    }

    #[test]
    fn unrelated_change_keeps_every_address() {
        for agent in [false, true] {
            let prior = state(agent);
            let mut plan = prior.clone();
            plan.set_attr("tags", list(&["talos", "new"]));
            for k in ["mac_addresses", "ipv4_addresses", "ipv6_addresses"] {
                plan.set_attr(k, Value::Unknown);
            }
            plan_addresses(&prior, &mut plan);
            for k in ["mac_addresses", "ipv4_addresses", "ipv6_addresses"] {
                assert_eq!(plan.attr(k), prior.attr(k), "{k} with agent={agent}");
            }
        }
    }

    #[test]
    fn new_static_address_is_known_without_agent_and_unknown_with_it() {
        for (agent, known) in [(false, true), (true, false)] {
            let prior = state(agent);
            let mut plan = vm(agent, Value::string("BC:24:11:00:00:01"), Value::string("10.0.0.21/24"));
            plan_addresses(&prior, &mut plan);
            assert_eq!(plan.attr("ipv4_addresses") == &list(&["10.0.0.21"]), known, "agent={agent}");
            assert_eq!(plan.attr("ipv4_addresses").is_unknown(), !known);
            assert_eq!(plan.attr("mac_addresses"), prior.attr("mac_addresses"), "NICs unchanged");
        }
    }

    #[test]
    fn an_unknown_address_in_config_stays_unknown() {
        let prior = state(false);
        let mut plan = vm(false, Value::string("BC:24:11:00:00:01"), Value::Unknown);
        plan_addresses(&prior, &mut plan);
        assert!(plan.attr("ipv4_addresses").is_unknown());
    }

    #[test]
    fn a_new_nic_without_mac_makes_the_macs_unknown() {
        let prior = state(false);
        let mut plan = prior.clone();
        plan.set_attr(
            "network_devices",
            Value::List(vec![nic(Value::string("BC:24:11:00:00:01")), nic(Value::Unknown)]),
        );
        plan_addresses(&prior, &mut plan);
        assert!(plan.attr("mac_addresses").is_unknown());
        assert_eq!(plan.attr("ipv4_addresses"), &list(&["10.0.0.11"]), "no agent: the static address");
    }
}

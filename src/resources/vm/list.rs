//! `list "proxtalos_vm"`: the QEMU VMs of a Proxmox VE cluster, for
//! `terraform query` (Terraform ≥ 1.14) and, with
//! `-generate-config-out=FILE`, for adopting VMs made by hand or by another
//! provider: one `GET /cluster/resources?type=vm` (one call however large
//! the cluster), filtered here; each result is the VM's identity (node and
//! VMID). With `include_resource = true` each VM is also read as an import
//! reads it (two calls per VM), which config generation needs.

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::{
    Attribute, AttributePath, Diagnostics, ListItem, ListRequest, ListResource, ListSink, Schema, Type, Value,
};
use crate::proxmox::cluster::{self, VmResource as Listed};

use super::validate::{check_node, check_vmid};

/// The list resource type.
pub struct VmList;

fn schema() -> Schema {
    Schema::new(
        "The QEMU VMs of the Proxmox VE cluster, for `terraform query` (Terraform 1.14 and later). With \
`terraform query -generate-config-out=adopt.tf` each VM found becomes a `proxtalos_vm` resource and an `import` \
block, so VMs made by hand or by another provider are adopted with an empty plan. Every filter is optional; they \
combine (a VM must match all). Templates are left out unless `include_templates` is true; containers are never \
listed.",
        vec![
            Attribute::string("node").optional().description("Only VMs on this PVE node (`pve1`)."),
            Attribute::new("tags", Type::Set(Box::new(Type::String))).optional().description(
                "Only VMs that have every one of these tags (compared as PVE stores them, in lower case).",
            ),
            Attribute::string("name_regex").optional().description(
                "Only VMs whose name matches this regular expression (Rust `regex` syntax, unanchored: \
`^talos-` for names that start with `talos-`).",
            ),
            Attribute::number("vm_id_min").optional().description("Only VMIDs from this one up."),
            Attribute::number("vm_id_max").optional().description("Only VMIDs up to this one."),
            Attribute::bool("include_templates").optional().description("List templates too. Not set: `false`."),
        ],
    )
}

/// The filters of a `config` block.
#[derive(Debug, Default)]
struct Filter {
    node: Option<String>,
    tags: Vec<String>,
    name: Option<regex_lite::Regex>,
    min: Option<i64>,
    max: Option<i64>,
    templates: bool,
}

impl Filter {
    fn from_config(config: &Value) -> Result<Filter, (AttributePath, String)> {
        let name = match config.attr("name_regex").as_str() {
            Some(r) => Some(
                regex_lite::Regex::new(r).map_err(|e| (AttributePath::attr("name_regex"), format!("{r:?}: {e}")))?,
            ),
            None => None,
        };
        Ok(Filter {
            node: config.attr("node").as_str().map(str::to_string),
            tags: crate::proxmox::propstring::normalize_tags(
                crate::resources::shared::common::strings(config.attr("tags")).iter().map(String::as_str),
            ),
            name,
            min: config.attr("vm_id_min").as_i64(),
            max: config.attr("vm_id_max").as_i64(),
            templates: config.attr("include_templates").as_bool().unwrap_or(false),
        })
    }

    fn matches(&self, vm: &Listed) -> bool {
        let id = i64::from(vm.vmid);
        vm.kind == "qemu"
            && (self.templates || !vm.is_template())
            && self.node.as_ref().is_none_or(|n| *n == vm.node)
            && self.min.is_none_or(|m| id >= m)
            && self.max.is_none_or(|m| id <= m)
            && {
                let have = vm.tag_list();
                self.tags.iter().all(|t| have.contains(t))
            }
            && self.name.as_ref().is_none_or(|r| r.is_match(vm.name.as_deref().unwrap_or("")))
    }
}

#[async_trait]
impl ListResource<ProxtalosData> for VmList {
    fn type_name(&self) -> &'static str {
        "proxtalos_vm"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn validate_config(&self, config: &Value, diags: &mut Diagnostics) {
        if let Err((path, why)) = Filter::from_config(config) {
            diags.error_at(path, "Invalid regular expression", why);
        }
        check_node(config, "node", diags);
        check_vmid(config, "vm_id_min", diags);
        check_vmid(config, "vm_id_max", diags);
        if let (Some(lo), Some(hi)) = (config.attr("vm_id_min").as_i64(), config.attr("vm_id_max").as_i64())
            && lo > hi
        {
            diags.error_at(
                AttributePath::attr("vm_id_max"),
                "Empty VMID range",
                format!("`vm_id_max` ({hi}) is below `vm_id_min` ({lo}): nothing can match."),
            );
        }
    }

    async fn list(&self, data: &ProxtalosData, req: &ListRequest, out: &ListSink, diags: &mut Diagnostics) {
        let filter = match Filter::from_config(&req.config) {
            Ok(f) => f,
            Err((path, why)) => return diags.error_at(path, "Invalid regular expression", why),
        };
        let client = match data.pve() {
            Ok(c) => c.stopping_on(&req.stop),
            Err(e) => return diags.error("Proxmox not configured", e.to_string()),
        };
        let listed: Vec<Listed> = match client.execute(&cluster::vm_resources()).await {
            Ok(v) => match serde_json::from_value(v) {
                Ok(l) => l,
                Err(e) => return diags.error("Cannot list the VMs", format!("GET /cluster/resources: {e}")),
            },
            Err(e) => return diags.error("Cannot list the VMs", crate::plugin::diag::error_chain(&e)),
        };
        let mut found: Vec<&Listed> = listed.iter().filter(|vm| filter.matches(vm)).collect();
        found.sort_by_key(|vm| vm.vmid);
        for vm in found.into_iter().take(req.limit) {
            let mut item = ListItem {
                identity: super::identity(&vm.node, i64::from(vm.vmid)),
                display_name: match &vm.name {
                    Some(n) => format!("{n} ({}/{})", vm.node, vm.vmid),
                    None => format!("VM {} ({})", vm.vmid, vm.node),
                },
                object: None,
                diags: Diagnostics::new(),
            };
            if req.include_resource {
                match super::imported_state(&client, &vm.node, vm.vmid, vm.pool.clone().filter(|p| !p.is_empty())).await
                {
                    Ok(Some(state)) => item.object = Some(state),
                    // Gone between the listing and the read.
                    Ok(None) => continue,
                    Err(e) if e.is_stopped() => {
                        return diags.error("Listing stopped", crate::plugin::diag::error_chain(&e));
                    }
                    Err(e) => item.diags.warning(
                        format!("Cannot read VM {} on {}", vm.vmid, vm.node),
                        crate::plugin::diag::error_chain(&e),
                    ),
                }
            }
            if !out.send(item).await {
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vm(vmid: u32, node: &str, name: &str, tags: &str, template: bool) -> Listed {
        serde_json::from_value(serde_json::json!({
            "vmid": vmid, "node": node, "name": name, "type": "qemu", "tags": tags,
            "template": if template { 1 } else { 0 }, "status": "running",
        }))
        .unwrap()
    }

    #[test]
    fn filters_combine() {
        let config = Value::object([
            ("node", Value::string("pve1")),
            ("tags", Value::Set(vec![Value::string("talos")])),
            ("name_regex", Value::string("^talos-")),
            ("vm_id_min", Value::int(100)),
            ("vm_id_max", Value::int(199)),
            ("include_templates", Value::Null),
        ]);
        let f = Filter::from_config(&config).unwrap();
        assert!(f.matches(&vm(101, "pve1", "talos-cp-1", "talos;control-plane", false)));
        assert!(!f.matches(&vm(101, "pve2", "talos-cp-1", "talos", false)), "node");
        assert!(!f.matches(&vm(101, "pve1", "talos-cp-1", "k8s", false)), "tags");
        assert!(!f.matches(&vm(101, "pve1", "my-talos", "talos", false)), "name");
        assert!(!f.matches(&vm(200, "pve1", "talos-cp-1", "talos", false)), "range");
        assert!(!f.matches(&vm(150, "pve1", "talos-tpl", "talos", true)), "template");
        let mut lxc = vm(150, "pve1", "talos-ct", "talos", false);
        lxc.kind = "lxc".into();
        assert!(!f.matches(&lxc), "containers are not VMs");
        assert!(Filter::default().matches(&vm(5000, "x", "", "", false)));
        let upper = Value::object([("tags", Value::Set(vec![Value::string("Talos")]))]);
        assert!(
            Filter::from_config(&upper).unwrap().matches(&vm(1, "n", "", "talos;worker", false)),
            "as PVE compares"
        );
    }

    #[test]
    fn bad_input_names_the_attribute() {
        let mut d = Diagnostics::new();
        let config = Value::object([
            ("name_regex", Value::string("talos-(")),
            ("vm_id_min", Value::int(300)),
            ("vm_id_max", Value::int(200)),
            ("node", Value::string("pve 1")),
        ]);
        VmList.validate_config(&config, &mut d);
        let paths: Vec<String> = d.into_iter().filter_map(|d| d.path.map(|p| format!("{p:?}"))).collect();
        for want in ["name_regex", "vm_id_max", "node"] {
            assert!(paths.iter().any(|p| p.contains(want)), "{want}: {paths:?}");
        }
    }
}

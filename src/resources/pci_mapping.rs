//! `proxtalos_pci_mapping` (resource): a cluster resource mapping of a PCI
//! device (`/cluster/mapping/pci`), so that a GPU worker names its GPU once
//! (`proxtalos_vm` `pci_devices = [{ mapping = ... }]`) and an API token
//! can pass it through with `Mapping.Use` (a raw device needs root@pam with
//! a password). One `map` entry per node that has the device. The name is
//! the mapping (a new name is a new mapping); everything else changes in
//! place, with PVE's digest, and is read back for drift. Import by name.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{
    ApplyResponse, Attribute, AttributePath, Context, CreateRequest, DeleteRequest, Diagnostics, IdentityAttribute,
    IdentitySchema, ImportRequest, ImportResponse, ModifyPlanRequest, ModifyPlanResponse, Nesting, ReadRequest,
    ReadResponse, Resource, Schema, Type, UpdateRequest, ValidateRequest, Value,
};
use crate::proxmox::mapping::{self, MapEntry, PciMapping};
use crate::proxmox::{Client, Error};
use crate::resources::shared::common::null_object;
use crate::resources::shared::pve::{client, err, timed};

/// Default time for each operation (each is one or two API calls).
const TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// The resource.
#[derive(Debug, Default)]
pub struct PciMappingResource;

fn p(name: &str) -> AttributePath {
    AttributePath::attr(name)
}

fn schema() -> Schema {
    Schema::new(
        "A PCI resource mapping (Datacenter → Resource Mappings): one name for a device, such as a GPU, on every \
node that has one. A VM passes it through with `pci_devices = [{ mapping = proxtalos_pci_mapping.gpu.id }]` \
(`id`, not the literal name, so the VM's plan waits for the mapping), which an API token may do with `Mapping.Use` \
on `/mapping/pci/<name>`; a raw device needs root@pam with a password. Needs `Mapping.Modify` on `/mapping/pci`.",
        vec![
            Attribute::string("name").required().requires_replace().description(
                "The mapping's id: a letter, then letters, digits, `_` and `-`. A new name is a new mapping.",
            ),
            Attribute::string("id").computed().use_state_for_unknown().description(
                "The name, known once the mapping exists (and unknown again in a plan that changes which nodes the \
map covers): reference it from `proxtalos_vm` so the VM is planned, and its node checked, after the mapping.",
            ),
            Attribute::string("description").optional().description("PVE's comment on the mapping. In place."),
            Attribute::nested(
                "map",
                Nesting::List,
                vec![
                    Attribute::string("node").required().description("The PVE node that has the device."),
                    Attribute::string("path").required().description(
                        "The device's address on that node, `0000:01:00.0` (`lspci -D`), or several joined by `;` \
(all functions of a GPU with its audio device: `0000:01:00.0;0000:01:00.1`).",
                    ),
                    Attribute::string("device_id")
                        .required()
                        .description("`vendor:device` (`lspci -n`), e.g. `10de:2204`; PVE checks it on start."),
                    Attribute::string("subsystem_id").optional().description("`vendor:device` of the subsystem."),
                    Attribute::number("iommu_group")
                        .optional()
                        .description("The IOMMU group PVE expects the device in (it warns when it moved)."),
                ],
            )
            .required()
            .description(
                "The device on each node, in order. Several entries for one node pool identical devices: PVE gives \
each VM a free one. In place.",
            ),
            Attribute::bool("mdev")
                .optional()
                .default(false)
                .description("VMs use mediated devices (vGPU types) of it. In place."),
            Attribute::bool("live_migration_capable").optional().default(false).description(
                "VMs using it may live-migrate (PVE 8.3+; the device and its driver must support it). In place.",
            ),
        ],
    )
    .blocks(vec![timeouts::block(&[
        (Operation::Create, TIMEOUT),
        (Operation::Read, TIMEOUT),
        (Operation::Update, TIMEOUT),
        (Operation::Delete, TIMEOUT),
    ])])
}

fn identity(name: &str) -> Value {
    Value::object([("name", Value::string(name))])
}

/// The mapping the configuration or state describes.
fn from_value(v: &Value) -> PciMapping {
    let s = |x: &Value| x.as_str().map(str::to_string);
    PciMapping {
        id: v.attr("name").as_str().unwrap_or_default().to_string(),
        description: s(v.attr("description")).filter(|d| !d.is_empty()),
        map: v
            .attr("map")
            .as_elements()
            .unwrap_or_default()
            .iter()
            .map(|e| MapEntry {
                node: s(e.attr("node")).unwrap_or_default(),
                path: s(e.attr("path")).unwrap_or_default(),
                id: s(e.attr("device_id")).unwrap_or_default(),
                subsystem_id: s(e.attr("subsystem_id")),
                iommu_group: e.attr("iommu_group").as_i64(),
            })
            .collect(),
        mdev: v.attr("mdev").as_bool() == Some(true),
        live_migration_capable: v.attr("live_migration_capable").as_bool() == Some(true),
    }
}

/// Writes what PVE holds into `state`; an empty description and none are
/// one to PVE, so the configuration's choice between them is kept.
fn write(m: &PciMapping, state: &mut Value) {
    state.set_attr("name", Value::string(&m.id));
    state.set_attr("id", Value::string(&m.id));
    crate::resources::shared::pve::set_text(state, "description", m.description.as_deref());
    let entry = |e: &MapEntry| {
        Value::object([
            ("node", Value::string(&e.node)),
            ("path", Value::string(&e.path)),
            ("device_id", Value::string(&e.id)),
            ("subsystem_id", e.subsystem_id.clone().map(Value::string).unwrap_or(Value::Null)),
            ("iommu_group", e.iommu_group.map(Value::int).unwrap_or(Value::Null)),
        ])
    };
    state.set_attr("map", Value::List(m.map.iter().map(entry).collect()));
    state.set_attr("mdev", Value::Bool(m.mdev));
    state.set_attr("live_migration_capable", Value::Bool(m.live_migration_capable));
}

/// The mapping and its digest, or `None` when PVE has none of that name
/// (the listing decides: PVE's words for a missing one are not an API
/// contract).
async fn fetch(c: &Client, name: &str) -> Result<Option<(PciMapping, Option<String>)>, Error> {
    let list = c.execute(&mapping::list()).await?;
    if mapping::entries_of(&list, name).is_none() {
        return Ok(None);
    }
    let one = c.execute(&mapping::get(name)).await?;
    let digest = one["digest"].as_str().map(str::to_string);
    Ok(Some((PciMapping::from_json(name, &one), digest)))
}

#[async_trait]
impl Resource<ProxtalosData> for PciMappingResource {
    fn type_name(&self) -> &'static str {
        "proxtalos_pci_mapping"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema {
            version: 0,
            attributes: vec![IdentityAttribute::required("name", Type::String, "The mapping's name.")],
        })
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        let c = &req.config;
        timeouts::validate(c, diags);
        if let Some(why) = c.attr("name").as_str().and_then(mapping::id_problem) {
            diags.error_at(p("name"), "Invalid mapping name", format!("{why}: PVE would refuse it."));
        }
        for (i, e) in c.attr("map").as_elements().unwrap_or_default().iter().enumerate() {
            let at = |k: &str| p("map").and_index(i as i64).and_attr(k);
            if let Some(n) = e.attr("node").as_str()
                && !crate::resources::vm::validate::valid_node(n)
            {
                diags.error_at(at("node"), "Invalid node", format!("{n:?} is not a PVE node name."));
            }
            if let Some(path) = e.attr("path").as_str()
                && !mapping::valid_path(path)
            {
                diags.error_at(
                    at("path"),
                    "Invalid device path",
                    format!(
                        "{path:?} is not a PCI address as PVE takes it: `0000:01:00.0` (domain, bus, device, \
function, lower-case hex, as `lspci -D` prints it), several joined by `;`."
                    ),
                );
            }
            for k in ["device_id", "subsystem_id"] {
                if let Some(id) = e.attr(k).as_str()
                    && !mapping::valid_device_id(id)
                {
                    diags.error_at(
                        at(k),
                        "Invalid PCI id",
                        format!("{id:?} is not `vendor:device` in hex (`10de:2204`, as `lspci -n` prints it)."),
                    );
                }
            }
        }
    }

    async fn modify_plan(&self, ctx: &Context<ProxtalosData>, req: &ModifyPlanRequest, resp: &mut ModifyPlanResponse) {
        if resp.plan.is_null() {
            return;
        }
        // `id` stays known unless the nodes the map covers change: a VM that
        // references it is then checked (and planned) after this apply, so
        // adding a node and moving a VM there is one apply.
        if let Some(name) = resp.plan.attr("name").as_str().map(str::to_string)
            && !req.prior.is_null()
        {
            let nodes = |v: &Value| -> Option<std::collections::BTreeSet<String>> {
                v.attr("map")
                    .as_elements()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| e.attr("node").as_str().map(str::to_string))
                    .collect()
            };
            let same = nodes(&req.prior).is_some_and(|a| nodes(&resp.plan) == Some(a));
            resp.plan.set_attr("id", if same { Value::string(name) } else { Value::Unknown });
        }
        // Nodes new to the map exist: a typo is a plan error on its entry.
        let Ok(c) = ctx.data.pve() else { return };
        let prior: Vec<String> = from_value(&req.prior).map.into_iter().map(|e| e.node).collect();
        for (i, e) in resp.plan.attr("map").as_elements().unwrap_or_default().to_vec().iter().enumerate() {
            let Some(node) = e.attr("node").as_str() else { continue };
            if prior.iter().any(|n| n == node) {
                continue;
            }
            if let Some(why) = crate::resources::shared::preflight::node_problem(&ctx.data, &c, node).await {
                resp.diags.error_at(p("map").and_index(i as i64).and_attr("node"), "Unknown Proxmox node", why);
            }
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        resp.state = Value::Null;
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let m = from_value(&req.planned);
        match timed(&req.planned, Operation::Create, TIMEOUT, "create the mapping", c.execute(&mapping::create(&m)))
            .await
        {
            Ok(_) => {}
            Err(e) if e.to_string().contains("already defined") => {
                return resp.diags.error(
                    "The PCI mapping already exists",
                    format!(
                        "{}. To manage it here: `terraform import proxtalos_pci_mapping.<name> {}`.",
                        crate::plugin::diag::error_chain(&e),
                        m.id
                    ),
                );
            }
            Err(e) => return err(&mut resp.diags, "Cannot create the PCI mapping", &e),
        }
        let mut state = req.planned.clone();
        state.set_attr("id", Value::string(&m.id));
        resp.identity = Some(identity(&m.id));
        resp.state = state;
    }

    async fn read(&self, ctx: &Context<ProxtalosData>, req: ReadRequest, resp: &mut ReadResponse) {
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some(name) = req.state.attr("name").as_str().map(str::to_string) else {
            return resp.diags.error("Incomplete state", "The state has no name.");
        };
        match timed(&req.state, Operation::Read, TIMEOUT, "read the mapping", fetch(&c, &name)).await {
            Ok(Some((m, _))) => {
                let mut state = req.state.clone();
                write(&m, &mut state);
                resp.identity = Some(identity(&name));
                resp.state = state;
            }
            Ok(None) => resp.state = Value::Null,
            Err(e) => err(&mut resp.diags, "Cannot read the PCI mapping", &e),
        }
    }

    async fn update(&self, ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        resp.state = req.prior.clone();
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let m = from_value(&req.planned);
        resp.identity = Some(identity(&m.id));
        let put = async {
            let (current, digest) = fetch(&c, &m.id).await?.unwrap_or_else(|| (m.clone(), None));
            c.execute(&mapping::update(&m, &current, digest.as_deref())).await
        };
        if let Err(e) = timed(&req.planned, Operation::Update, TIMEOUT, "change the mapping", put).await {
            return err(&mut resp.diags, "Cannot change the PCI mapping", &e);
        }
        let mut state = req.planned.clone();
        state.set_attr("id", Value::string(&m.id));
        resp.state = state;
    }

    async fn delete(&self, ctx: &Context<ProxtalosData>, req: DeleteRequest, diags: &mut Diagnostics) {
        let Some(c) = client(ctx, diags) else { return };
        let Some(name) = req.prior.attr("name").as_str().map(str::to_string) else { return };
        if let Err(e) =
            timed(&req.prior, Operation::Delete, TIMEOUT, "delete the mapping", c.execute(&mapping::delete(&name)))
                .await
        {
            // Already gone is done.
            if matches!(fetch(&c, &name).await, Ok(None)) {
                return;
            }
            err(diags, "Cannot delete the PCI mapping", &e);
        }
    }

    async fn import(&self, ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        let name = match &req.identity {
            Some(i) => i.attr("name").as_str().unwrap_or_default().to_string(),
            None => req.id.trim().to_string(),
        };
        if let Some(why) = mapping::id_problem(&name) {
            return resp.diags.error("Invalid import id", format!("The import id is a mapping name: {why}."));
        }
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        match fetch(&c, &name).await {
            Ok(Some((m, _))) => {
                let mut state = null_object(&schema().value_type());
                write(&m, &mut state);
                resp.identity = Some(identity(&name));
                resp.state = state;
            }
            Ok(None) => resp.diags.error("Cannot import", format!("PVE has no PCI mapping {name:?}.")),
            Err(e) => err(&mut resp.diags, "Cannot import", &e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_consistent() {
        assert!(schema().check().is_empty(), "{:?}", schema().check());
    }

    #[test]
    fn state_round_trips_through_the_api_form() {
        let m = PciMapping {
            id: "gpu0".into(),
            description: None,
            map: vec![MapEntry {
                node: "pve1".into(),
                path: "0000:01:00.0;0000:01:00.1".into(),
                id: "10de:2204".into(),
                subsystem_id: Some("1458:403b".into()),
                iommu_group: None,
            }],
            mdev: false,
            live_migration_capable: true,
        };
        let mut state = null_object(&schema().value_type());
        state.set_attr("description", Value::string(""));
        write(&m, &mut state);
        assert_eq!(state.attr("description").as_str(), Some(""), "empty and none are one");
        assert_eq!(from_value(&state), m);
    }

    #[test]
    fn bad_input_names_the_entry() {
        let mut c = null_object(&schema().value_type());
        c.set_attr("name", Value::string("0gpu"));
        c.set_attr(
            "map",
            Value::List(vec![Value::object([
                ("node", Value::string("pve1")),
                ("path", Value::string("01:00.0")),
                ("device_id", Value::string("10de-2204")),
                ("subsystem_id", Value::Null),
                ("iommu_group", Value::Null),
            ])]),
        );
        let mut d = Diagnostics::new();
        PciMappingResource.validate_config(&ValidateRequest { config: c }, &mut d);
        assert_eq!(crate::resources::shared::pve::paths(&d), ["name", "map[0].path", "map[0].device_id"]);
    }
}

//! `proxtalos_ha_resource` (resource): a VM under PVE's HA manager
//! (`/cluster/ha/resources`), so that a control plane on shared storage is
//! restarted on another node when its node fails. The VM is the resource
//! (a new `vm_id` is a new one); the state and the restart policy change in
//! place, with PVE's digest, and are read back for drift. Create and update
//! end once the manager has carried the state out (the VM running for
//! `started`, stopped for `stopped` and `disabled`), within the timeouts.
//! Destroy hands the VM back, as it is, to `proxtalos_vm`. Import by VMID.

use std::time::Duration;

use async_trait::async_trait;

use crate::data::ProxtalosData;
use crate::plugin::timeouts::{self, Operation};
use crate::plugin::{
    ApplyResponse, Attribute, AttributePath, Context, CreateRequest, DeleteRequest, Diagnostics, IdentityAttribute,
    IdentitySchema, ImportRequest, ImportResponse, ReadRequest, ReadResponse, Resource, Schema, Type, UpdateRequest,
    ValidateRequest, Value,
};
use crate::proxmox::ha::{self, HaResource};
use crate::proxmox::{Client, Error};
use crate::resources::shared::common::null_object;
use crate::resources::shared::pve::{client, err};

/// Default time for an operation, the manager's carrying out included.
const TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The resource.
#[derive(Debug, Default)]
pub struct HaResourceResource;

fn p(name: &str) -> AttributePath {
    AttributePath::attr(name)
}

fn schema() -> Schema {
    Schema::new(
        "A VM under Proxmox VE's HA manager: restarted, or moved to another node, when it or its node fails (its \
disks must be on shared storage). From then on the manager owns the VM's power: a start or stop through \
`proxtalos_vm` (`started`) becomes a request to the manager and changes this resource's `state` too, so keep the \
two in agreement. A VM replaced under a fixed `vm_id` leaves the manager with the old VM: give this resource \
`lifecycle { replace_triggered_by = [proxtalos_vm.<name>] }`. Needs `Sys.Console` on `/`.",
        vec![
            Attribute::number("vm_id")
                .required()
                .requires_replace()
                .description("The VM (e.g. `proxtalos_vm.cp.vm_id`). Another VM is another resource."),
            Attribute::string("state").optional().default("started").description(
                "What the manager keeps the VM in: `started` (`enabled` is PVE's alias), `stopped`, `disabled` \
(stopped, and not recovered) or `ignored` (left alone). In place; apply waits until the VM is so.",
            ),
            Attribute::number("max_restart")
                .optional()
                .default(1)
                .description("Restarts on its node after a failure before the manager moves it. In place."),
            Attribute::number("max_relocate")
                .optional()
                .default(1)
                .description("Moves to other nodes before the manager gives up. In place."),
            Attribute::bool("failback").optional().default(true).description(
                "Back to its preferred node when that node returns (PVE 9; sent only when off). In place.",
            ),
            Attribute::string("comment").optional().description("PVE's comment on the resource. In place."),
        ],
    )
    .blocks(vec![timeouts::block(&[
        (Operation::Create, TIMEOUT),
        (Operation::Update, TIMEOUT),
        (Operation::Delete, TIMEOUT),
    ])])
}

fn identity(vmid: u32) -> Value {
    Value::object([("vm_id", Value::int(i64::from(vmid)))])
}

fn vmid_of(v: &Value) -> Option<u32> {
    v.attr("vm_id").as_i64().and_then(|i| u32::try_from(i).ok())
}

/// The resource the configuration or state describes.
fn from_value(v: &Value) -> Option<HaResource> {
    Some(HaResource {
        vmid: vmid_of(v)?,
        state: v.attr("state").as_str().unwrap_or("started").to_string(),
        max_restart: v.attr("max_restart").as_i64().unwrap_or(1),
        max_relocate: v.attr("max_relocate").as_i64().unwrap_or(1),
        failback: v.attr("failback").as_bool() != Some(false),
        comment: v.attr("comment").as_str().filter(|c| !c.is_empty()).map(str::to_string),
    })
}

/// Writes what PVE holds into `state`, keeping the configuration's way of
/// saying the same thing (`enabled` for `started`, an empty comment).
fn write(r: &HaResource, state: &mut Value) {
    state.set_attr("vm_id", Value::int(i64::from(r.vmid)));
    let same_state = state.attr("state").as_str() == Some("enabled") && r.state == "started";
    if !same_state {
        state.set_attr("state", Value::string(&r.state));
    }
    state.set_attr("max_restart", Value::int(r.max_restart));
    state.set_attr("max_relocate", Value::int(r.max_relocate));
    state.set_attr("failback", Value::Bool(r.failback));
    crate::resources::shared::pve::set_text(state, "comment", r.comment.as_deref());
}

/// The VM's resource and the config's digest; `None` when it has none.
async fn fetch(c: &Client, vmid: u32) -> Result<Option<(HaResource, Option<String>)>, Error> {
    Ok(ha::find(&c.execute(&ha::list()).await?, vmid))
}

/// Waits until the manager has carried `state` out on the VM.
async fn carried_out(c: &Client, vmid: u32, state: &str, timeout: Duration) -> Result<(), Error> {
    let Some(run) = ha::runs_in(state) else { return Ok(()) };
    let Some(node) = crate::resources::shared::preflight::vm_node(c, vmid).await else {
        return Err(Error::Settings(format!("VM {vmid} is not in the cluster listing")));
    };
    c.vm_status_becomes(&node, vmid, if run { "running" } else { "stopped" }, timeout).await
}

#[async_trait]
impl Resource<ProxtalosData> for HaResourceResource {
    fn type_name(&self) -> &'static str {
        "proxtalos_ha_resource"
    }

    fn schema(&self) -> Schema {
        schema()
    }

    fn identity_schema(&self) -> Option<IdentitySchema> {
        Some(IdentitySchema {
            version: 0,
            attributes: vec![IdentityAttribute::required("vm_id", Type::Number, "The VM's VMID.")],
        })
    }

    fn validate_config(&self, req: &ValidateRequest, diags: &mut Diagnostics) {
        let c = &req.config;
        timeouts::validate(c, diags);
        crate::resources::vm::validate::check_vmid(c, "vm_id", diags);
        if let Some(s) = c.attr("state").as_str()
            && !ha::STATES.contains(&s)
        {
            diags.error_at(
                p("state"),
                "Invalid HA state",
                format!("{s:?} is not an HA state; PVE takes {}.", ha::STATES.join(", ")),
            );
        }
        for k in ["max_restart", "max_relocate"] {
            if let Some(n) = c.attr(k).as_i64()
                && n < 0
            {
                diags.error_at(p(k), "Invalid count", format!("`{k}` is 0 or more; got {n}."));
            }
        }
    }

    async fn create(&self, ctx: &Context<ProxtalosData>, req: CreateRequest, resp: &mut ApplyResponse) {
        resp.state = Value::Null;
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some(r) = from_value(&req.planned) else {
            return resp.diags.error("Missing VMID", "`vm_id` is known at apply.");
        };
        if let Err(e) = c.execute(&ha::create(&r)).await {
            if e.to_string().contains("already defined") {
                return resp.diags.error(
                    "The VM is already an HA resource",
                    format!(
                        "{}. To manage it here: `terraform import proxtalos_ha_resource.<name> {}`.",
                        crate::plugin::diag::error_chain(&e),
                        r.vmid
                    ),
                );
            }
            return err(&mut resp.diags, "Cannot make the VM an HA resource", &e);
        }
        // It exists from here on: recorded even if the wait below fails.
        resp.identity = Some(identity(r.vmid));
        resp.state = req.planned.clone();
        let limit = timeouts::get(&req.planned, Operation::Create, TIMEOUT);
        if let Err(e) = carried_out(&c, r.vmid, &r.state, limit).await {
            err(&mut resp.diags, "The HA manager did not carry the state out", &e);
        }
    }

    async fn read(&self, ctx: &Context<ProxtalosData>, req: ReadRequest, resp: &mut ReadResponse) {
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some(vmid) = vmid_of(&req.state) else {
            return resp.diags.error("Incomplete state", "The state has no vm_id.");
        };
        match fetch(&c, vmid).await {
            Ok(Some((r, _))) => {
                let mut state = req.state.clone();
                write(&r, &mut state);
                resp.identity = Some(identity(vmid));
                resp.state = state;
            }
            Ok(None) => resp.state = Value::Null,
            Err(e) => err(&mut resp.diags, "Cannot read the HA resource", &e),
        }
    }

    async fn update(&self, ctx: &Context<ProxtalosData>, req: UpdateRequest, resp: &mut ApplyResponse) {
        resp.state = req.prior.clone();
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        let Some(r) = from_value(&req.planned) else { return };
        resp.identity = Some(identity(r.vmid));
        let (current, digest) = match fetch(&c, r.vmid).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                resp.state = Value::Null;
                return resp.diags.error(
                    "The HA resource is gone",
                    format!("VM {} is no longer an HA resource: the next apply makes it one again.", r.vmid),
                );
            }
            Err(e) => return err(&mut resp.diags, "Cannot read the HA resource", &e),
        };
        if let Err(e) = c.execute(&ha::update(&r, &current, digest.as_deref())).await {
            return err(&mut resp.diags, "Cannot change the HA resource", &e);
        }
        resp.state = req.planned.clone();
        let limit = timeouts::get(&req.planned, Operation::Update, TIMEOUT);
        if let Err(e) = carried_out(&c, r.vmid, &r.state, limit).await {
            err(&mut resp.diags, "The HA manager did not carry the state out", &e);
        }
    }

    async fn delete(&self, ctx: &Context<ProxtalosData>, req: DeleteRequest, diags: &mut Diagnostics) {
        let Some(c) = client(ctx, diags) else { return };
        let Some(vmid) = vmid_of(&req.prior) else { return };
        if let Err(e) = c.execute(&ha::delete(vmid)).await {
            if matches!(fetch(&c, vmid).await, Ok(None)) {
                return;
            }
            err(diags, "Cannot remove the VM from the HA manager", &e);
        }
    }

    async fn import(&self, ctx: &Context<ProxtalosData>, req: ImportRequest, resp: &mut ImportResponse) {
        let vmid = match &req.identity {
            Some(i) => i.attr("vm_id").as_i64().and_then(|v| u32::try_from(v).ok()),
            None => req.id.trim().trim_start_matches("vm:").parse().ok(),
        };
        let Some(vmid) = vmid.filter(|v| crate::resources::vm::validate::valid_vmid(i64::from(*v))) else {
            return resp.diags.error(
                "Invalid import id",
                format!("The import id is the VM's VMID (`100`, or `vm:100`); got {:?}.", req.id),
            );
        };
        let Some(c) = client(ctx, &mut resp.diags) else { return };
        match fetch(&c, vmid).await {
            Ok(Some((r, _))) => {
                let mut state = null_object(&schema().value_type());
                write(&r, &mut state);
                resp.identity = Some(identity(vmid));
                resp.state = state;
            }
            Ok(None) => resp.diags.error("Cannot import", format!("VM {vmid} is not an HA resource.")),
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
    fn state_keeps_the_configurations_words() {
        let mut s = null_object(&schema().value_type());
        s.set_attr("state", Value::string("enabled"));
        s.set_attr("comment", Value::string(""));
        let r = HaResource {
            vmid: 100,
            state: "started".into(),
            max_restart: 2,
            max_relocate: 1,
            failback: true,
            comment: None,
        };
        write(&r, &mut s);
        assert_eq!((s.attr("state").as_str(), s.attr("comment").as_str()), (Some("enabled"), Some("")));
        assert_eq!(from_value(&s).map(|x| x.max_restart), Some(2));
        write(&HaResource { state: "stopped".into(), ..r }, &mut s);
        assert_eq!(s.attr("state").as_str(), Some("stopped"));
    }

    #[test]
    fn bad_input_names_the_attribute() {
        let mut c = null_object(&schema().value_type());
        c.set_attr("vm_id", Value::int(5));
        c.set_attr("state", Value::string("running"));
        c.set_attr("max_restart", Value::int(-1));
        let mut d = Diagnostics::new();
        HaResourceResource.validate_config(&ValidateRequest { config: c }, &mut d);
        assert_eq!(crate::resources::shared::pve::paths(&d), ["vm_id", "state", "max_restart"]);
    }
}
